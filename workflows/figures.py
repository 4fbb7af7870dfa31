"""Figures the workflows write and log to MLflow (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def roc_figure(labels: np.ndarray, scores: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """ROC curves of several scorers on the same labelled pairs, AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(labels, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path, dpi=120)


def poincare_disk(points: np.ndarray, labels: np.ndarray, depth: np.ndarray, title: str, path: Path,
                  max_labels: int = 60) -> Path:  # fmt: skip
    """2-d points in the unit disk, coloured by depth; the shallowest nodes labelled."""
    if points.shape[1] != 2:
        raise ValueError(f"a disk plot needs 2-d points, got {points.shape[1]}-d")
    fig, ax = plt.subplots(figsize=(9, 9))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="grey", linewidth=1))
    dots = ax.scatter(points[:, 0], points[:, 1], c=depth, cmap="viridis", s=6, alpha=0.8)
    for i in np.argsort(depth, kind="stable")[:max_labels]:
        ax.annotate(str(labels[i]).split(",")[0], points[i], fontsize=6, alpha=0.9)
    fig.colorbar(dots, ax=ax, shrink=0.7, label="depth")
    ax.set(xlim=(-1.02, 1.02), ylim=(-1.02, 1.02), aspect="equal", title=title)
    ax.axis("off")
    return _save(fig, path, dpi=130)


def specificity_by_depth(norms: np.ndarray, depth: np.ndarray, title: str, path: Path) -> Path:
    """The spread of norms (specificity) at each depth of a hierarchy, as box plots."""
    levels = np.unique(depth)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([norms[depth == d] for d in levels], positions=levels, widths=0.6, showfliers=False)
    counts = [int(np.sum(depth == d)) for d in levels]
    ax.set_xticks(levels, [f"{d}\n({n})" for d, n in zip(levels, counts, strict=True)], fontsize=7)
    ax.set(xlabel="depth (nodes)", ylabel="norm: distance from the origin", title=title)
    return _save(fig, path, dpi=120)


def _save(fig, path: Path, dpi: int) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
