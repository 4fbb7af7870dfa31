"""HiT's protocol (He et al. 2024; `hierarchies.hit`): the splits of both tasks as
their construction makes them (sizes checked against the paper's WordNet Noun), the
negatives' rules on random DAGs, and the choice of λ and threshold against a brute
force."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierarchies.closure import transitive_closure
from hierarchies.datasets import Hierarchy, PairIndex, build_hierarchy
from hierarchies.hit import (
    BEYOND,
    KINDS,
    LAMBDAS,
    PER_POSITIVE,
    choose_and_score,
    hit_score,
    hit_splits,
    hit_wordnet,
    lambdas_at_search_end,
)


def dag(parents_of: list[list[int]]) -> Hierarchy:
    """Node i (named `n{i}.n.01`) with direct parents `parents_of[i]` (all < i: a DAG)."""
    edges = pl.DataFrame(
        [(f"n{i}.n.01", f"n{p}.n.01") for i, ps in enumerate(parents_of) for p in ps],
        schema={"child": pl.String, "parent": pl.String},
        orient="row",
    )
    return build_hierarchy(transitive_closure(edges), edges)


def tree(branching: int, depth: int) -> Hierarchy:
    parents: list[list[int]] = [[]]
    level = [0]
    for _ in range(depth):
        nxt = []
        for p in level:
            for _ in range(branching):
                parents.append([p])
                nxt.append(len(parents) - 1)
        level = nxt
    return dag(parents)


def rows(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def test_both_tasks_split_as_hits_construction_does():
    h = tree(4, 4)  # 341 nodes, 340 direct edges, 912 transitive pairs (16 + 2 x 64 + 3 x 256)
    s = hit_splits(h, seed=0)
    direct, transitive = rows(h.edges[h.direct]), rows(h.edges[~h.direct])
    assert (len(direct), len(transitive)) == (340, 912)
    # multi-hop: every direct edge trains; validation and test are disjoint 5% draws of T
    assert rows(s.train["multi_hop"]) == direct
    t_val, t_test = rows(s.val["multi_hop"].positives), rows(s.test["multi_hop"].positives)
    assert t_val | t_test <= transitive and not t_val & t_test and (len(t_val), len(t_test)) == (45, 46)
    # mixed-hop: direct edges 90 / 5 / 5, and the same transitive pairs beside them
    mixed_val, mixed_test = rows(s.val["mixed_hop"].positives), rows(s.test["mixed_hop"].positives)
    e_train, e_val, e_test = rows(s.train["mixed_hop"]), mixed_val & direct, mixed_test & direct
    assert (len(e_train), len(e_val), len(e_test)) == (306, 17, 17)
    assert e_train | e_val | e_test == direct and not (e_train & e_val or e_train & e_test or e_val & e_test)
    assert mixed_val - direct == t_val and mixed_test - direct == t_test
    # the transitive pairs keep their negatives in both tasks
    k = len(s.test["mixed_hop"].positives) - len(t_test)
    for kind in KINDS:
        assert np.array_equal(s.test["mixed_hop"].negatives[kind][k:], s.test["multi_hop"].negatives[kind])
    # seeded: the same seed, the same splits and negatives; another seed, others
    again, other = hit_splits(h, seed=0), hit_splits(h, seed=1)
    assert np.array_equal(again.test["mixed_hop"].negatives["hn"], s.test["mixed_hop"].negatives["hn"])
    assert rows(other.test["multi_hop"].positives) != t_test


@settings(max_examples=25, deadline=None)
@given(
    parents=st.lists(st.lists(st.integers(0, 10_000), min_size=1, max_size=3), min_size=30, max_size=120),
    seed=st.integers(0, 2**16),
)
def test_negatives_are_never_the_child_or_its_ancestors_and_hard_ones_are_its_siblings(parents, seed):
    shape = [[]] + [sorted({p % i for p in ps}) for i, ps in enumerate(parents, start=1)]
    h = dag(shape)
    try:
        s = hit_splits(h, seed)
    except ValueError as err:  # a DAG too shallow to hold transitive pairs out
        assert "too few" in str(err)
        return
    ancestors = PairIndex(h.edges, h.n_nodes)
    direct = h.edges[h.direct]
    siblings = {
        c: {o for p in direct[direct[:, 0] == c, 1] for o in direct[direct[:, 1] == p, 0]} - {c}
        for c in range(h.n_nodes)
    }
    for pairs in (*s.val.values(), *s.test.values()):
        child = pairs.positives[:, 0]
        assert ancestors.contains(child, pairs.positives[:, 1]).all()  # positives are true pairs
        for kind in KINDS:
            negative = pairs.negatives[kind]
            assert negative.shape == (len(child), PER_POSITIVE)
            assert not ancestors.contains(child[:, None], negative).any() and (negative != child[:, None]).all()
        for i, c in enumerate(child.tolist()):
            true_siblings = siblings[c] - {int(a) for a in h.edges[h.edges[:, 0] == c, 1]}
            n = min(len(true_siblings), PER_POSITIVE)
            hard = pairs.negatives["hn"][i]
            assert set(hard[:n].tolist()) <= true_siblings and len(set(hard[:n].tolist())) == n
            assert np.array_equal(hard[n:], pairs.negatives["rn"][i, : PER_POSITIVE - n])  # topped up in order


def test_wordnet_nouns_have_the_sizes_of_hits_wordnet_noun():
    """He et al. 2024, Table 1: 74,401 entities, 75,850 direct and 587,658 transitive
    subsumptions; validation 29,383 positives for multi-hop (x 11 = 323K pairs) and
    68,265 training edges, 33,175 validation positives for mixed-hop (751K / 365K)."""
    h = hit_wordnet("wordnet-nouns")
    assert (h.n_nodes, int(h.direct.sum()), int((~h.direct).sum())) == (74_401, 75_850, 587_658)
    assert h.texts[h.index(["personal_computer.n.01"])[0]] == "personal computer"  # entity names
    sizes = hit_splits(h, seed=0).sizes()
    assert sizes["multi_hop_train"] == 75_850 and sizes["multi_hop_val"] == 29_383
    assert sizes["mixed_hop_train"] == 68_265 and sizes["mixed_hop_val"] == 33_175


def brute_force(parts, labels, lambdas) -> float:
    best = 0.0
    for lam in lambdas:
        s = hit_score(*parts, lam)
        for t in np.unique(s):
            p = s >= t
            tp = np.sum(p & (labels == 1))
            f1 = 2 * tp / (p.sum() + labels.sum()) if tp else 0.0
            best = max(best, f1)
    return best


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(5, 30))
def test_lambda_and_threshold_are_those_of_the_best_validation_f1(seed, n):
    rng = np.random.default_rng(seed)
    labels = (rng.random(11 * n) < 1 / 11).astype(np.int8)
    labels[0] = 1
    parts = tuple(rng.gamma(2.0, 1.0, 11 * n) + labels * rng.random() for _ in range(3))
    lambdas = LAMBDAS[::7]  # 0.0, 0.7, ..., 4.9
    scored = choose_and_score(parts, parts, labels, labels, lambdas, beyond=())
    assert scored["val_f1"] == pytest.approx(brute_force(parts, labels, lambdas))
    wider = choose_and_score(parts, parts, labels, labels, lambdas)  # past 4.9 only from its edge
    assert wider == scored if scored["lambda"] < 4.9 else wider["val_f1"] >= scored["val_f1"]
    assert scored["f1"] == pytest.approx(scored["val_f1"])  # the same pairs: the same F1 at the chosen pair


def test_the_norm_term_separates_what_distance_alone_cannot():
    """A child and its parent, and the child and one of its own children, lie equally
    far apart; only λ(‖v‖ − ‖u‖) tells the parent (nearer the origin) from the child."""
    labels = np.tile(np.r_[1, 0], 50).astype(np.int8)
    distance = np.ones(100)
    child_norm = np.full(100, 2.0)
    other_norm = np.where(labels == 1, 1.0, 3.0)  # the parent nearer the origin, the grandchild farther
    scored = choose_and_score((distance, child_norm, other_norm), (distance, child_norm, other_norm), labels, labels)
    assert scored["f1"] == 1.0 and scored["lambda"] > 0
    blind = choose_and_score((distance, child_norm, other_norm), (distance, child_norm, other_norm), labels, labels,
                             lambdas=(0.0,), beyond=())  # fmt: skip
    assert blind["f1"] == pytest.approx(2 / 3)  # every pair positive: precision 1/2, recall 1


def test_the_grid_goes_past_hits_where_the_norm_must_weigh_more():
    """Parents 4 to 12 away and one level up, siblings 2 away at the child's level:
    every parent ranks first only for λ > 10, past HiT's grid (0.0 ... 4.9; the more the
    larger λ), within ours."""
    labels = np.tile(np.r_[1, 0, 0], 40).astype(np.int8)
    distance = np.full(120, 2.0)
    distance[labels == 1] = np.linspace(4.0, 12.0, 40)
    child_norm = np.full(120, 3.0)
    other_norm = np.where(labels == 1, 2.0, 3.0)
    parts = (distance, child_norm, other_norm)
    hits = choose_and_score(parts, parts, labels, labels, beyond=())
    assert hits["f1"] < 1.0 and hits["lambda"] == 4.9  # at the top of HiT's grid: ours goes on
    scored = choose_and_score(parts, parts, labels, labels)
    assert scored["f1"] == 1.0 and 10.0 < scored["lambda"] <= BEYOND[-1]
    assert lambdas_at_search_end({"multi_hop_lambda_hn": scored["lambda"], "multi_hop_f1_hn": 1.0}) == []
    # half the parents as before, half out to 51.8 away: the farthest ranks first only for λ > 49.8
    distance[labels == 1] = np.r_[np.linspace(4.0, 6.8, 20), np.linspace(7.5, 51.8, 20)]
    capped = choose_and_score(parts, parts, labels, labels)
    assert capped["lambda"] == BEYOND[-1] == 50.0
    assert lambdas_at_search_end({"mixed_hop_lambda_rn": capped["lambda"], "mixed_hop_f1_rn": 50.0}) == [
        "mixed_hop_lambda_rn"
    ]
