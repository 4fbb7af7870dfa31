"""Figures the workflows write and log to MLflow (matplotlib, no display needed)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.backend_bases import FigureCanvasBase
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score, roc_curve, silhouette_score

from sessions import storage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def roc_figure(labels: np.ndarray, scores: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """ROC curves of several scorers on the same labelled pairs, AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(labels, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return save_figure(fig, path, dpi=120)


def poincare_disk(points: np.ndarray, labels: np.ndarray, depth: np.ndarray, title: str, path: Path,
                  max_labels: int = 60, curvature: float = 1.0) -> Path:  # fmt: skip
    """Points of a Poincaré ball of `curvature` (n, d) drawn in the unit disk
    (`disk_points`: 2-d points as they are, more dimensions around the shallowest
    node, said under the title), coloured by depth; up to `max_labels` nodes
    labelled, the shallowest first, none overlapping another (`non_overlapping_labels`)."""
    flat = disk_points(points, curvature, centre=int(np.argmin(depth)))  # beyond 2-d, the root at the centre
    if points.shape[1] > 2:
        title = f"{title}\n{points.shape[1]}-d ball drawn around its root: exact distances from it, directions by PCA"
    fig, ax = plt.subplots(figsize=(9, 9))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="grey", linewidth=1))
    dots = ax.scatter(flat[:, 0], flat[:, 1], c=depth, cmap="viridis", s=6, alpha=0.8)
    fig.colorbar(dots, ax=ax, shrink=0.7, label="depth")
    ax.set(xlim=(-1.02, 1.02), ylim=(-1.02, 1.02), aspect="equal", title=title)
    ax.axis("off")
    fig.tight_layout()  # the layout `save_figure` keeps: label extents are measured in it
    texts = np.array([str(t).split(",")[0] for t in labels])
    non_overlapping_labels(ax, flat, texts, np.argsort(depth, kind="stable"), max_labels)
    return save_figure(fig, path, dpi=130)


def disk_points(points: np.ndarray, curvature: float = 1.0, centre: int | None = None) -> np.ndarray:
    """Points of the Poincaré ball of curvature c (n, d) as points of the unit disk (n, 2).

    The ball is scaled onto the unit ball (x √c). 2-d points are then the picture.
    More dimensions are drawn from the point `centre` (the root; None: the point
    nearest the origin), in the spirit of principal geodesic analysis (Fletcher et al.
    2004) linearised there:

    1. a Möbius translation, an isometry of the ball, takes the centre to the origin;
    2. each point is taken to the tangent space there (log map);
    3. its direction is that of its tangent vector projected on the plane of the two
       principal axes of all tangent vectors (PCA about their mean);
    4. its distance from the centre is its own, exactly (exp map of the full length).

    So depth reads outward from the root as in the ball; when every point lies on one
    hyperbolic plane through the centre the drawing is an isometry of it; otherwise
    the angles between points are a shadow of the ball's (a hierarchy needs more than
    two dimensions to keep its ranks: the drawing's own reconstruction MAP is far below
    the model's). A point whose tangent vector has no part in that plane is drawn
    along the first axis, at its distance.

    ValueError for anything but finite (n >= 1, d >= 2) points inside the ball, a
    curvature that is not positive, or a centre that is not a row.
    """
    import geoopt
    import torch

    x = np.asarray(points, dtype=np.float64)
    if curvature <= 0 or x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2 or not np.isfinite(x).all():
        raise ValueError(f"a disk needs finite (n, d >= 2) points and a curvature > 0, got {np.shape(points)}, "
                         f"curvature {curvature}")  # fmt: skip
    x = x * np.sqrt(curvature)  # onto the unit ball
    if (np.linalg.norm(x, axis=1) >= 1).any():
        raise ValueError(f"points outside the Poincaré ball of curvature {curvature}")
    if centre is not None and not 0 <= centre < len(x):
        raise ValueError(f"centre {centre} is not one of the {len(x)} points")
    if x.shape[1] == 2:
        return x
    ball, y = geoopt.PoincareBall(c=1.0), torch.from_numpy(x)
    c = y[np.argmin(np.linalg.norm(x, axis=1)) if centre is None else centre]
    moved = ball.mobius_add(-c.expand_as(y), y, project=False)  # the centre at the origin
    tangent = ball.logmap0(moved).numpy()
    _, _, axes = np.linalg.svd(tangent - tangent.mean(axis=0), full_matrices=False)
    flat = tangent @ axes[:2].T if len(axes) >= 2 else np.zeros((len(x), 2))  # (n, 2)
    length = np.linalg.norm(flat, axis=1, keepdims=True)
    direction = np.where(length > 0, flat / np.maximum(length, 1e-300), np.array([1.0, 0.0]))
    return np.linalg.norm(moved.numpy(), axis=1, keepdims=True) * direction  # the whole distance from the centre


def non_overlapping_labels(ax: Axes, xy: np.ndarray, texts: np.ndarray, order: np.ndarray, most: int) -> list:
    """Label the points `xy` (n, 2) with `texts` (n,) in `order`, keeping a label only
    when its box overlaps no label kept before it and its text is not shown already;
    at most `most`. Returns the matplotlib `Text`s kept, in order. Greedy, as map
    labelling does: the first in `order` always wins. A label that would cross the axes'
    edge (into a colour bar, say) is not kept either."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    kept, boxes, shown = [], [], set()
    for i in order:
        if len(kept) >= most:
            break
        if texts[i] in shown:
            continue
        label = ax.annotate(texts[i], xy[i], xytext=(2, 2), textcoords="offset points", fontsize=6, alpha=0.9)
        box = label.get_window_extent(renderer).expanded(1.05, 1.1)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        if not inside or any(box.overlaps(other) for other in boxes):
            label.remove()
            continue
        kept.append(label)
        boxes.append(box)
        shown.add(texts[i])
    return kept


def specificity_by_depth(norms: np.ndarray, depth: np.ndarray, title: str, path: Path) -> Path:
    """The spread of norms (specificity) at each depth of a hierarchy, as box plots."""
    levels = np.unique(depth)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([norms[depth == d] for d in levels], positions=levels, widths=0.6, showfliers=False)
    counts = [int(np.sum(depth == d)) for d in levels]
    ax.set_xticks(levels, [f"{d}\n({n})" for d, n in zip(levels, counts, strict=True)], fontsize=7)
    ax.set(xlabel="depth (nodes)", ylabel="norm: distance from the origin", title=title)
    return save_figure(fig, path, dpi=120)


def session_statistics(sessions: pl.DataFrame, title: str, path: Path) -> Path:
    """Queries per session and the gaps between a user's consecutive queries (inside a
    session and across a boundary), from a `segment` output's sessions."""
    lengths = sessions.group_by("session_id").len()["len"].to_numpy()
    gaps = (
        sessions.sort("user_id", "ts", "row_id")
        .with_columns(
            gap=(pl.col("ts").diff().dt.total_seconds()).over("user_id"),
            same=(pl.col("session_id") == pl.col("session_id").shift()).over("user_id"),
        )
        .filter(pl.col("gap").is_not_null())
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    top = int(np.percentile(lengths, 99.5)) + 1 if lengths.size else 1
    left.hist(np.minimum(lengths, top), bins=np.arange(1, top + 2) - 0.5, color="tab:blue")
    median = np.median(lengths) if lengths.size else 0
    left.set(yscale="log", xlabel=f"queries per session (last bin: {top} or more)", ylabel="sessions",
             title=f"{lengths.size:,} sessions, median {median:g} queries")  # fmt: skip
    bins = np.logspace(0, 7, 57)  # 1 s to ~4 months
    for same, label, colour in ((True, "inside a session", "tab:green"), (False, "between sessions", "tab:red")):
        g = gaps.filter(pl.col("same") == same)["gap"].to_numpy()
        right.hist(np.clip(g, 1, None), bins=bins, alpha=0.6, label=f"{label} ({g.size:,})", color=colour)
    for seconds, name in ((60, "1 min"), (1800, "30 min"), (86400, "1 day")):
        right.axvline(seconds, color="grey", linestyle=":", linewidth=1)
        right.annotate(name, (seconds, 1), xycoords=("data", "axes fraction"), fontsize=7, ha="left", va="top")
    right.set(xscale="log", xlabel="gap to the user's previous query (s; the first bin: 1 s or less)", ylabel="queries")
    right.legend(fontsize="small")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=120)


def segmentation_bars(scores: pl.DataFrame, title: str, path: str | Path, metric: str = "f1") -> Path:
    """`metric` of every system against every gold level (`sessions.metrics.compare`'s
    rows), as bars: a panel per gold level. Against gold sessions, each system's
    sessions; against gold missions, each system's sessions as they are and, where it
    links them into missions, its missions (`<system> + linking`, hatched), so that
    what the linking adds is seen apart from the segmentation. A system keeps its colour
    in every panel."""
    golds = scores["gold"].unique(maintain_order=True).to_list()
    systems = scores["system"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(golds), figsize=(6 * len(golds), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, gold in zip(axes[0], golds, strict=True):
        rows = scores.filter(pl.col("gold") == gold)
        bars = []  # (label, value, colour index, linked)
        for i, system in enumerate(systems):
            mine = rows.filter(pl.col("system") == system)
            bars.append((system, float(mine.filter(pl.col("level") == "sessions")[metric][0]), i, False))
            linked = mine.filter(pl.col("level") == "missions")
            if gold == "missions" and linked.height:
                bars.append((f"{system} + linking", float(linked[metric][0]), i, True))
        drawn = ax.bar(range(len(bars)), [b[1] for b in bars], color=[colours(b[2] % 10) for b in bars],
                       hatch=["//" if b[3] else "" for b in bars], edgecolor="white")  # fmt: skip
        ax.bar_label(drawn, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=35, ha="right", fontsize=8)
        note = ": sessions, and linked into missions" if gold == "missions" else ""
        ax.set(ylim=(0, 1.05), ylabel=f"{metric} (pair counting)", title=f"against gold {gold}{note}")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=120)


def embedding_projection(
    embeddings: Mapping[str, np.ndarray], groups: np.ndarray, title: str, path: Path
) -> tuple[Path, dict[str, float]]:
    """Side by side, a 2-d PCA of each set of embeddings of the same texts, coloured
    by group (a mission, say); with the silhouette (cosine) of the groups in each."""
    fig, axes = plt.subplots(1, len(embeddings), figsize=(5.5 * len(embeddings), 5), squeeze=False)
    codes = np.unique(groups, return_inverse=True)[1]
    silhouettes = {}
    for ax, (name, vectors) in zip(axes[0], embeddings.items(), strict=True):
        xy = PCA(n_components=2, random_state=0).fit_transform(vectors)
        silhouettes[name] = float(silhouette_score(vectors, codes, metric="cosine"))
        ax.scatter(xy[:, 0], xy[:, 1], c=codes, cmap="tab20", s=14, alpha=0.85)
        ax.set(title=f"{name}: silhouette {silhouettes[name]:.3f}", xticks=[], yticks=[])
    fig.suptitle(title)
    return save_figure(fig, path, dpi=120), silhouettes


def figure_format(location: str | Path, what: str = "figure") -> str:
    """The image format a figure is written in, named by the suffix of `location` (a path
    or a URI): `png`, `svg`, `pdf`, ... as matplotlib writes them. ValueError in one line,
    naming `what`, for a suffix it does not write or none (a figure is never written
    under another name than the one given: matplotlib adds `.png` to a bare name)."""
    _, dot, suffix = storage.name(location).rpartition(".")
    suffix = suffix.lower() if dot else ""
    formats = writable_formats()
    if suffix not in formats:
        if suffix == "pgf":
            said = f"its suffix .pgf needs {matplotlib.rcParams['pgf.texsystem']} (TeX), which is not installed"
        elif suffix:
            said = f"its suffix .{suffix} is not an image format"
        else:
            said = "it has no suffix to name its format"
        raise ValueError(f"{what} {location}: {said}; end it with {', '.join('.' + f for f in sorted(formats))}")
    return suffix


def writable_formats() -> list[str]:
    """The formats (suffixes, lower case) matplotlib writes a figure in on this machine:
    every one its canvas offers but `pgf` where the TeX program that it needs to set the
    figure's text (`rcParams["pgf.texsystem"]`, xelatex by default) is not installed
    (`--figure f.pgf` was taken, and failed after the work, in matplotlib's words)."""
    formats = FigureCanvasBase.get_supported_filetypes()  # (no figure made, none of the caller's closed)
    return [f for f in formats if f != "pgf" or shutil.which(matplotlib.rcParams["pgf.texsystem"])]


def save_figure(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Save and close `fig` at `path` (a local path or a URI: `sessions.storage`, written
    whole or not at all), in the format its suffix names (`figure_format`). Returns `path`."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=figure_format(path), dpi=dpi)
    plt.close(fig)
    storage.write_bytes(buffer.getvalue(), path)
    return path
