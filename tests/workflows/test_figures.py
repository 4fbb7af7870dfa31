"""The Poincaré disk's labels: the shallowest first, none over another, however dense
the points (the demo's disk was an unreadable clump of 60 labels)."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np

from workflows.figures import non_overlapping_labels, poincare_disk


def test_labels_are_kept_greedily_and_never_overlap():
    rng = np.random.default_rng(0)
    xy = rng.normal(0, 0.15, (400, 2))  # a dense cloud: most labels would collide
    texts = np.array([f"node {i % 350}" for i in range(400)])  # some texts twice (homonyms)
    order = np.argsort(np.linalg.norm(xy, axis=1))  # nearest the origin first, like the shallowest
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal")
    kept = non_overlapping_labels(ax, xy, texts, order, most=60)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in kept]
    assert 5 < len(kept) < 60  # the cloud is too dense for all 60
    assert kept[0].get_text() == texts[order[0]]  # the first in order always wins
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    assert len({t.get_text() for t in kept}) == len(kept)
    assert len(ax.texts) == len(kept)  # the rejected ones are gone from the axes
    plt.close(fig)


def test_the_disk_is_drawn_with_its_labels(tmp_path):
    rng = np.random.default_rng(1)
    points = rng.uniform(-0.6, 0.6, (300, 2))
    path = poincare_disk(points, np.array([f"n{i}, more" for i in range(300)]), rng.integers(0, 6, 300), "t",
                         tmp_path / "disk.png")  # fmt: skip
    assert path.exists() and path.stat().st_size > 10_000
