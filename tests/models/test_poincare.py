"""Lookup-table hierarchy embeddings: the distance and losses against hand values and
geoopt, the negative sampler, and a few training steps that reproduce recorded losses.
Training to convergence (reconstruction of the tiny tree and of the mammals) runs
through the task that ships: tests/workflows/test_training_hierarchy.py."""

from __future__ import annotations

import math

import geoopt
import numpy as np
import pytest
import torch

from hierarchies.datasets import Hierarchy
from models.poincare import (
    LookupEmbedding,
    NegativeSampler,
    distance_softmax_loss,
    distances,
    lookup_loss,
    order_margin_loss,
    order_violation,
    poincare_distance,
)


@pytest.fixture(scope="module")
def tiny(tiny_hierarchy) -> Hierarchy:
    return tiny_hierarchy


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poincare_distance_equals_geoopt_and_has_finite_gradients(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = geoopt.PoincareBall().projx(torch.randn(64, 5, generator=g, dtype=dtype))  # some near the boundary
    y = (torch.rand(64, 5, generator=g, dtype=dtype) - 0.5) * 0.8
    x.requires_grad_(True)
    d = poincare_distance(x, y)
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(d, geoopt.PoincareBall().dist(x, y), rtol=tol, atol=tol)
    torch.testing.assert_close(d, poincare_distance(y, x), rtol=tol, atol=tol)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    same = x.detach()[:1].clone()  # equal points: arcosh at 1
    assert torch.isfinite(torch.autograd.grad(poincare_distance(x[:1], same).sum(), x)[0]).all()


def test_distance_from_the_origin():
    x = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    assert poincare_distance(torch.zeros_like(x), x).item() == pytest.approx(2 * math.atanh(0.5))


def test_order_violation_is_zero_exactly_when_ordered():
    child = torch.tensor([[2.0, 3.0]])
    assert order_violation(child, torch.tensor([[1.0, 3.0]])).item() == 0  # ancestor below in every coordinate
    assert order_violation(child, torch.tensor([[3.0, 1.0]])).item() == 1.0  # one unit above in the first
    assert order_violation(child, torch.tensor([[4.0, 5.0]])).item() == 8.0


def test_losses_on_hand_values():
    zero, one = torch.zeros(1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    valid = torch.ones(1, 1, dtype=torch.bool)
    assert distance_softmax_loss(zero, 0 * one, valid).item() == pytest.approx(math.log(2))
    assert distance_softmax_loss(zero, one, valid).item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert distance_softmax_loss(zero + 3, one, ~valid).item() == 0  # no negative: nothing to push away
    e_pos, e_neg = torch.tensor([0.5]), torch.tensor([[0.25, 2.0]])
    assert order_margin_loss(e_pos, e_neg, torch.tensor([[True, True]]), margin=1.0).item() == 1.25
    assert order_margin_loss(e_pos, e_neg, torch.tensor([[False, True]]), margin=1.0).item() == 0.5


def test_negatives_are_never_the_node_or_its_ancestors(tiny):
    sampler = NegativeSampler(tiny.edges, tiny.n_nodes, np.random.default_rng(0))
    ancestors = {(a, b) for a, b in tiny.edges.tolist()}
    u = np.repeat(np.arange(tiny.n_nodes), 20)
    for by_frequency, share_valid in ((False, 1.0), (True, 0.95)):  # by frequency: ancestors are drawn often
        neg, valid = sampler(u, 30, by_frequency=by_frequency)
        assert neg.shape == valid.shape == (len(u), 30) and valid.mean() >= share_valid
        bad = [(a, b) in ancestors or a == b for a, b in zip(np.repeat(u, 30), neg.ravel(), strict=True)]
        assert np.array_equal(np.array(bad), ~valid.ravel())  # what is still bad is marked invalid
    again, _ = NegativeSampler(tiny.edges, tiny.n_nodes, np.random.default_rng(0))(u, 30)
    first, _ = NegativeSampler(tiny.edges, tiny.n_nodes, np.random.default_rng(0))(u, 30)
    assert np.array_equal(again, first)
    # a two-node hierarchy: the child has no non-ancestor at all
    neg, valid = NegativeSampler(np.array([[1, 0]]), 2, np.random.default_rng(0))(np.array([1]), 4)
    assert not valid.any()


# recorded from these steps: Riemannian SGD at lr 1, 8 pairs and 5 negatives a step,
# negatives by frequency for the first two steps (the burn-in)
RECORDED_LOSSES = {
    "poincare": [1.7950276440155477, 1.8696321946640773, 1.7657080811050843, 1.9438770647778982, 1.7776973961389329],
    "order": [4.9962472709283094, 4.9944981376022275, 4.9803605683663035, 4.988719270260217, 4.895340728456394],
}


@pytest.mark.parametrize("manifold", ["poincare", "order"])
def test_a_few_steps_reproduce_the_recorded_losses(tiny, manifold):
    """The step `HierarchyTask` takes for a lookup table: negatives from a generator seeded
    by (seed, rank, step), `lookup_loss`, a Riemannian SGD step."""
    model = LookupEmbedding(tiny.n_nodes, 2, manifold, init=0.1, seed=0)
    sampler = NegativeSampler(tiny.edges, tiny.n_nodes, np.random.default_rng(0))
    optimizer = geoopt.optim.RiemannianSGD(model.parameters(), lr=1.0)
    losses = []
    for step in range(5):
        sampler.rng = np.random.default_rng([0, 0, step])
        batch = tiny.edges[8 * step : 8 * step + 8]  # (B, 2) child, ancestor
        negatives, valid = sampler(batch[:, 0], 5, by_frequency=step < 2)
        loss = lookup_loss(model, batch, negatives, valid, margin=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()  # retraction on the ball ends with a projection inside it
        losses.append(loss.item())
    assert losses == pytest.approx(RECORDED_LOSSES[manifold], rel=1e-9)
    assert torch.isfinite(model.weight).all() and (manifold != "poincare" or model.weight.norm(dim=1).max() < 1)


def test_shared_negatives_come_from_the_candidates_and_mark_ancestors_invalid(tiny):
    sampler = NegativeSampler(tiny.edges, tiny.n_nodes, np.random.default_rng(0))
    candidates = np.arange(0, tiny.n_nodes, 2)
    u = np.arange(tiny.n_nodes)
    negatives, valid = sampler.shared(u, 40, candidates)
    assert negatives.shape == (40,) and valid.shape == (tiny.n_nodes, 40) and np.isin(negatives, candidates).all()
    ancestors = {(a, b) for a, b in tiny.edges.tolist()}
    bad = np.array([[(a, b) in ancestors or a == b for b in negatives] for a in u])
    assert np.array_equal(bad, ~valid)
    again, _ = NegativeSampler(tiny.edges, tiny.n_nodes, np.random.default_rng(0)).shared(u, 40, candidates)
    assert np.array_equal(again, negatives)


def test_distances_do_not_depend_on_the_column_blocks(tiny):
    model = LookupEmbedding(tiny.n_nodes, 3, "poincare", init=0.3, seed=1)
    u = np.array([0, 5, 17])
    whole, blocked = distances(model, u), distances(model, u, budget=4)
    assert whole.shape == (3, tiny.n_nodes) and np.allclose(whole, blocked)
    with torch.no_grad():
        direct = poincare_distance(model.weight[u][:, None], model.weight[None])
    assert np.allclose(whole, direct.numpy())


def test_unknown_manifolds_are_rejected():
    with pytest.raises(ValueError, match="manifold must be one of"):
        LookupEmbedding(3, 2, "spherical")
