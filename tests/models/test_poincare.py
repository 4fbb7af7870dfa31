"""Lookup-table hierarchy embeddings: the distance and losses against hand values and
geoopt, the negative sampler, a recorded loss curve, and reconstruction on the mammals."""

from __future__ import annotations

import math

import geoopt
import numpy as np
import pytest
import torch

from hierarchies.closure import transitive_closure
from hierarchies.datasets import Hierarchy, build_hierarchy, wordnet_mammals
from hierarchies.metrics import reconstruction
from models.poincare import (
    LookupEmbedding,
    NegativeSampler,
    distance_softmax_loss,
    distances,
    order_margin_loss,
    order_violation,
    poincare_distance,
    train_lookup,
)


@pytest.fixture(scope="module")
def tiny(tiny_taxonomy) -> Hierarchy:
    return build_hierarchy(transitive_closure(tiny_taxonomy.edges), tiny_taxonomy.edges, tiny_taxonomy.concepts)


@pytest.fixture(scope="module")
def mammals() -> Hierarchy:
    return wordnet_mammals()


def _reconstruction(model: LookupEmbedding, h: Hierarchy) -> dict[str, float]:
    return reconstruction(lambda u: distances(model, u), h.edges, h.n_nodes)


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


def test_a_few_epochs_reproduce_the_recorded_losses(tiny):
    _, losses = train_lookup(tiny, dim=2, epochs=4, burnin=2, batch_size=8, negatives=5, lr=1.0, seed=0)
    expected = [1.7845853023297567, 1.749766095349142, 1.7207929289493462, 1.5445994938311243]
    assert losses == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("manifold", "dim", "map_at_least"), [("poincare", 2, 1.0), ("order", 5, 1.0)])
def test_the_tiny_tree_is_reconstructed(tiny, manifold, dim, map_at_least):
    model, losses = train_lookup(tiny, dim=dim, manifold=manifold, epochs=200, batch_size=8, negatives=10, lr=1.0)
    assert losses[-1] < losses[0] and model.config["manifold"] == manifold
    assert _reconstruction(model, tiny)["map"] >= map_at_least


def test_distances_do_not_depend_on_the_column_blocks(tiny):
    model = LookupEmbedding(tiny.n_nodes, 3, "poincare", init=0.3, seed=1)
    u = np.array([0, 5, 17])
    whole, blocked = distances(model, u), distances(model, u, budget=4)
    assert whole.shape == (3, tiny.n_nodes) and np.allclose(whole, blocked)
    with torch.no_grad():
        direct = poincare_distance(model.weight[u][:, None], model.weight[None])
    assert np.allclose(whole, direct.numpy())


def test_unknown_options_are_rejected(tiny):
    with pytest.raises(ValueError, match="manifold must be one of"):
        train_lookup(tiny, manifold="spherical", epochs=1)
    with pytest.raises(ValueError, match="optimizer"):
        train_lookup(tiny, optimizer="adagrad", epochs=1)


def test_a_short_poincare_run_on_the_mammals_beats_a_random_embedding(mammals):
    untrained, _ = train_lookup(mammals, dim=5, epochs=0)
    model, losses = train_lookup(mammals, dim=5, epochs=20, burnin=5)  # ~3 s on one core
    chance, trained = _reconstruction(untrained, mammals), _reconstruction(model, mammals)
    assert chance["map"] < 0.02 and chance["mean_rank"] > 500
    assert trained["map"] > 0.65 and trained["mean_rank"] < 6
    norms = model.weight.detach().norm(dim=1)
    assert torch.isfinite(model.weight).all() and norms.max() < 1 and losses[-1] < losses[0]


@pytest.mark.slow
def test_the_reference_reaches_the_papers_numbers_at_dim_5(mammals):
    model, _ = train_lookup(mammals, dim=5)  # the defaults: 150 epochs, ~20 s on one core
    metrics = _reconstruction(model, mammals)
    assert metrics["map"] >= 0.92 and metrics["mean_rank"] <= 1.3
