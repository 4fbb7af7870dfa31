"""The Poincaré disk: labels the shallowest first, none over another, however dense the
points (the demo's disk was an unreadable clump of 60 labels); a ball of more
dimensions drawn by tangent PCA at the origin."""

from __future__ import annotations

import itertools

import geoopt
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from workflows.figures import disk_points, non_overlapping_labels, poincare_disk


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


def test_a_ball_is_drawn_around_its_root_at_exact_distances_from_it():
    """A 6-d ball of curvature 1/4 (radius 2): the root is drawn at the centre, every
    point at its own hyperbolic distance from the root, and points of a plane through
    the root keep their distances to each other (that plane is drawn isometrically)."""
    rng = np.random.default_rng(0)
    ball, disk = geoopt.PoincareBall(c=0.25), geoopt.PoincareBall(c=1.0)
    root = ball.expmap0(torch.from_numpy(rng.normal(size=6)))
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T  # (2, 6) orthonormal
    tangent = np.vstack([np.zeros(6), rng.normal(size=(49, 2)) @ basis])  # node 0: the root itself
    plane = ball.mobius_add(root.expand(50, 6), ball.expmap0(torch.from_numpy(tangent))).numpy()
    flat = disk_points(plane, curvature=0.25, centre=0)
    assert np.allclose(flat[0], 0, atol=1e-12)
    pairs = (np.arange(49), np.arange(1, 50))
    before = ball.dist(*(torch.from_numpy(plane[i]) for i in pairs)).numpy() * 0.5  # × √c: the unit ball's
    assert np.allclose(disk.dist(*(torch.from_numpy(flat[i]) for i in pairs)).numpy(), before, rtol=1e-8)

    cloud = ball.expmap0(torch.from_numpy(rng.normal(size=(200, 6)))).numpy()
    drawn = disk_points(cloud, curvature=0.25, centre=7)
    from_root = ball.dist(torch.from_numpy(cloud[7]), torch.from_numpy(cloud)).numpy() * 0.5
    assert np.allclose(disk.dist0(torch.from_numpy(drawn)).numpy(), from_root, rtol=1e-8, atol=1e-9)
    assert np.array_equal(disk_points(drawn), drawn)  # 2-d unit-disk points are the picture
    assert np.allclose(disk_points(drawn * 2, curvature=0.25), drawn)  # the ball of radius 2, scaled onto the disk

    axes = np.array([[0, 0, 0], [0.9, 0, 0], [-0.9, 0, 0], [0, 0.6, 0], [0, -0.6, 0], [0, 0, 0.3], [0, 0, -0.3]])
    drawn = disk_points(axes)  # the root: the point nearest the origin; the third axis is not in the plane
    assert np.allclose(np.linalg.norm(drawn, axis=1), [0, 0.9, 0.9, 0.6, 0.6, 0.3, 0.3])


@pytest.mark.parametrize(
    "points, curvature, centre",
    [(np.zeros((3, 1)), 1.0, None), (np.zeros(3), 1.0, None), (np.full((3, 3), np.nan), 1.0, None),
     (np.full((3, 3), 0.7), 1.0, None), (np.zeros((3, 3)), 0.0, None), (np.zeros((3, 3)), 1.0, 3),
     (np.zeros((3, 3)), 1.0, -1), (np.zeros((0, 3)), 1.0, None)],
)  # fmt: skip
def test_what_is_not_a_ball_of_points_is_refused_in_one_line(points, curvature, centre):
    with pytest.raises(ValueError):
        disk_points(points, curvature, centre)
