"""Hierarchies as index arrays (WordNet mammals edge for edge against the reference),
their edge and node splits, and the ranking metrics on hand-worked examples."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from hierarchies.closure import transitive_closure
from hierarchies.datasets import (
    Hierarchy,
    NodeNames,
    PairIndex,
    Siblings,
    build_hierarchy,
    homonym_groups,
    node_names,
    node_texts,
    split_edges,
    split_nodes,
    wordnet_mammals,
    wordnet_nouns,
)
from hierarchies.metrics import kendall_levels, link_prediction, reconstruction, spearman_norm_depth


@pytest.fixture(scope="module")
def mammals() -> Hierarchy:
    return wordnet_mammals()


@pytest.fixture(scope="module")
def tiny(tiny_taxonomy) -> Hierarchy:
    return build_hierarchy(transitive_closure(tiny_taxonomy.edges), tiny_taxonomy.edges, tiny_taxonomy.concepts)


def test_mammals_equal_the_reference_closure(mammals, is_reference_mammal_closure):
    assert (mammals.n_nodes, mammals.n_edges) == (1_180, 6_540)
    assert is_reference_mammal_closure(mammals.closure())
    root = mammals.index(["mammal.n.01"])[0]
    assert mammals.depth[root] == 0 and mammals.depth.max() == 9
    assert mammals.direct.sum() == 1_180  # 1,179 non-root nodes, one with two parents in the subtree
    assert (mammals.edges[:, 1] == root).sum() == 1_179  # every other node is below the root


def test_node_texts_are_readable_lemmas_and_optionally_the_gloss(mammals):
    placental = mammals.index(["placental.n.01"])[0]
    assert mammals.texts[placental] == "placental, placental mammal, eutherian, eutherian mammal"
    nodes = pl.DataFrame({"lemmas": [["placental", "placental mammal"]], "gloss": ["mammals having a placenta"]})
    assert node_texts(nodes, gloss=True).to_list() == ["placental, placental mammal: mammals having a placenta"]


def test_a_node_of_several_lemmas_goes_by_each_and_by_all_joined(mammals):
    placental = mammals.index(["placental.n.01"])[0]
    names = mammals.aliases
    assert names.texts[names.ptr[placental] : names.ptr[placental + 1]].tolist() == [
        "placental, placental mammal, eutherian, eutherian mammal",
        "placental", "placental mammal", "eutherian", "eutherian mammal",
    ]  # fmt: skip
    assert np.array_equal(names.texts[names.ptr[:-1]], mammals.texts)  # its text first
    one = np.flatnonzero(names.counts == 1)  # a single lemma: its text is its only name
    assert len(one) and all("," not in t for t in mammals.texts[one])
    nodes = pl.DataFrame({"lemmas": [["dog", "Canis familiaris"], ["cat"]], "gloss": ["a canine", "a feline"]})
    assert node_names(nodes, gloss=True).texts.tolist() == [
        "dog, Canis familiaris: a canine", "dog: a canine", "Canis familiaris: a canine", "cat: a feline",
    ]  # fmt: skip
    assert len(mammals.subset(np.array([placental])).aliases.texts) == 5


def test_names_are_drawn_uniformly_and_indexed_by_node():
    names = NodeNames.of([["a, b", "a", "b"], ["c"], ["d, e, d", "d", "e", "d"]])  # the repeat dropped
    assert names.counts.tolist() == [3, 1, 3] and names.ptr.tolist() == [0, 3, 4, 7]
    assert names.rows(np.array([0, 2])).tolist() == [0, 1, 2, 4, 5, 6]
    assert names.subset(np.array([1, 2])).texts.tolist() == ["c", "d, e, d", "d", "e"]
    draws = np.stack([names.draw(np.random.default_rng(seed)) for seed in range(3_000)])  # (3000, 3)
    assert (draws[:, 1] == 3).all() and set(draws[:, 0]) == {0, 1, 2}
    assert np.allclose(np.bincount(draws[:, 2] - 4) / 3_000, 1 / 3, atol=0.03)
    assert np.array_equal(names.draw(np.random.default_rng(7)), names.draw(np.random.default_rng(7)))
    with pytest.raises(ValueError, match="every node needs a name"):
        NodeNames(np.array(["a"]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="every node needs a name"):
        NodeNames(np.array([], dtype=str), np.array([], dtype=np.int64))
    assert len(NodeNames.of([]).draw(np.random.default_rng(0))) == 0
    with pytest.raises(ValueError, match="its text first"):
        Hierarchy(np.array(["x"]), np.array(["a"]), np.zeros((0, 2), np.int64), np.zeros(0, bool),
                  np.zeros(1, np.int64), NodeNames.of([["b", "a"]]))  # fmt: skip


def test_siblings_share_a_direct_parent_and_are_never_the_child_an_ancestor_or_a_repeat(mammals):
    direct = mammals.edges[mammals.direct]
    ancestors = PairIndex(mammals.edges, mammals.n_nodes)
    siblings = Siblings(direct, mammals.n_nodes)
    child = mammals.edges[:, 0]  # every node that has an ancestor, as often as it has ancestors
    nodes, valid = siblings.draw(child, 6, np.random.default_rng(0), ancestors)
    row, col = np.nonzero(valid)
    parents = {}
    for c, p in direct.tolist():
        parents.setdefault(c, set()).add(p)
    sibling, child_of = nodes[row, col], child[row]
    assert all(parents.get(int(s), set()) & parents[int(c)] for c, s in zip(child_of, sibling, strict=True))
    assert not (sibling == child_of).any() and not ancestors.contains(child_of, sibling).any()
    rows = np.where(valid, nodes, -1 - np.arange(6))  # the invalid slots made distinct
    assert all(len(set(r)) == 6 for r in rows.tolist())
    kids: dict[int, set[int]] = {}
    for c, p in direct.tolist():
        kids.setdefault(p, set()).add(c)
    have = [len(set().union(*(kids[p] for p in parents[c])) - {c} - set(mammals.edges[child == c, 1].tolist()))
            for c in child.tolist()]  # fmt: skip
    found = valid.sum(axis=1) == np.minimum(6, have)  # redrawn 10 times: a rare one may stay missing
    assert found.mean() > 0.95 and (valid.sum(axis=1) <= np.minimum(6, have)).all()
    again, _ = siblings.draw(child, 6, np.random.default_rng(0), ancestors)
    assert np.array_equal(nodes, again)


def test_a_child_of_few_siblings_gets_each_once_and_a_root_none():
    """root -> a, b, c; a -> d: a's siblings are b and c (2 of the 3 slots valid), d has
    none, the root has no parent."""
    direct = np.array([[1, 0], [2, 0], [3, 0], [4, 1]])
    closure = np.concatenate([direct, [[4, 0]]])
    siblings = Siblings(direct, 5)
    nodes, valid = siblings.draw(np.array([1, 4, 0]), 3, np.random.default_rng(1), PairIndex(closure, 5))
    assert sorted(nodes[0][valid[0]].tolist()) == [2, 3] and valid.sum(axis=1).tolist() == [2, 0, 0]
    assert (nodes[1:] == [[4], [0]]).all() and nodes[0][~valid[0]].tolist() == [1]  # unfilled: the child itself
    draws = np.concatenate([siblings.draw(np.array([1]), 1, np.random.default_rng(s), PairIndex(closure, 5))[0]
                            for s in range(2_000)])  # fmt: skip
    assert np.allclose(np.bincount(draws.ravel(), minlength=4)[2:] / 2_000, 0.5, atol=0.04)  # a itself redrawn


def test_nodes_that_share_any_name_are_one_group():
    names = NodeNames.of([["a, b", "a", "b"], ["b"], ["c"], ["C, d", "C", "d"], ["e"], ["É"], ["é"]])
    group = homonym_groups(names)  # case aside: the encoders' tokenizers are uncased
    assert group[0] == group[1] and group[2] == group[3] and len({group[0], group[2], group[4]}) == 3
    assert group[5] == group[6] and len(homonym_groups(NodeNames.of([]))) == 0


@pytest.mark.slow
def test_no_name_of_a_held_out_noun_is_a_training_nouns_case_aside():
    """Among all nouns, 'afghan' (the blanket) and 'Afghan hound, Afghan' are one group:
    an uncased tokenizer reads them alike (stop 34's breaker found 221 such leaks)."""
    nouns = wordnet_nouns()
    split = split_nodes(nouns, share=0.1, seed=0)
    held = set(np.char.lower(nouns.aliases.subset(split.test_nodes).texts))
    assert held and not held & set(np.char.lower(nouns.aliases.subset(split.nodes).texts))


def test_a_hierarchy_from_name_tables(tiny):
    assert tiny.n_nodes == 18 and tiny.n_edges == 54 and tiny.direct.sum() == 17
    toy, poodle, entity = tiny.index(["toy_poodle.n.01", "poodle.n.01", "entity.n.01"])
    assert tiny.texts[toy] == "toy poodle" and tiny.depth[toy] == 5 and tiny.depth[entity] == 0
    edges = {tuple(e) for e in tiny.edges.tolist()}
    assert {(toy, poodle), (toy, entity)} <= edges
    assert tiny.direct[[tuple(e) == (toy, poodle) for e in tiny.edges.tolist()]].all()
    assert not tiny.direct[[tuple(e) == (toy, entity) for e in tiny.edges.tolist()]].any()
    with pytest.raises(KeyError):
        tiny.index(["unicorn.n.01"])


def test_edge_split_holds_out_only_transitive_edges_and_is_deterministic(mammals):
    split = split_edges(mammals, share=0.2, seed=3)
    assert len(split.test_edges) == round(0.2 * 6_540) and split.train.n_edges == 6_540 - len(split.test_edges)
    train = {tuple(e) for e in split.train_edges().tolist()}
    test = {tuple(e) for e in split.test_edges.tolist()}
    assert not train & test and len(train | test) == 6_540
    assert split.train.direct.sum() == mammals.direct.sum()  # the basic hierarchy is whole
    assert np.array_equal(split_edges(mammals, 0.2, seed=3).test_edges, split.test_edges)
    assert not np.array_equal(split_edges(mammals, 0.2, seed=4).test_edges, split.test_edges)
    with pytest.raises(ValueError, match="not direct parent edges"):
        split_edges(mammals, share=0.9)


def test_node_split_hides_held_out_nodes_and_their_texts(mammals):
    split = split_nodes(mammals, share=0.1, seed=0)
    held = split.test_nodes
    assert 118 <= len(held) <= 121 and np.isin(held, mammals.leaves()).all()
    touching = np.isin(mammals.edges, held).any(axis=1)
    assert {tuple(e) for e in split.test_edges.tolist()} == {tuple(e) for e in mammals.edges[touching].tolist()}
    assert split.train.n_nodes == 1_180 - len(held) and split.train.n_edges == 6_540 - touching.sum()
    assert not set(mammals.names[held]) & set(split.train.names)
    assert not set(mammals.texts[held]) & set(split.train.texts)  # homonyms go together
    assert not set(mammals.aliases.subset(held).texts) & set(split.train.aliases.texts)  # by any of their names
    assert np.array_equal(split.full.names[split.nodes], split.train.names)
    assert {tuple(e) for e in split.train_edges().tolist()} == {tuple(e) for e in mammals.edges[~touching].tolist()}
    assert np.array_equal(split_nodes(mammals, 0.1, seed=0).test_nodes, held)
    assert not np.array_equal(split_nodes(mammals, 0.1, seed=1).test_nodes, held)


@pytest.mark.parametrize("seed", range(5))
def test_no_name_of_a_held_out_node_is_a_training_nodes(mammals, seed):
    split = split_nodes(mammals, share=0.2, seed=seed)
    held = set(np.char.lower(mammals.aliases.subset(split.test_nodes).texts))
    assert held and not held & set(np.char.lower(mammals.aliases.subset(split.nodes).texts))


@pytest.mark.slow
def test_noun_hierarchy():
    nouns = wordnet_nouns()
    assert (nouns.n_nodes, nouns.n_edges) == (82_115, 743_241)
    assert nouns.depth[nouns.index(["entity.n.01"])[0]] == 0 and (nouns.depth == 0).sum() == 1


# a <- b <- c (c's ancestors: b, a) and a <- d; node 0 = a, 1 = b, 2 = c, 3 = d
CHAIN = np.array([[1, 0], [2, 1], [2, 0], [3, 0]])
D = np.array(
    [
        [0.0, 1.0, 1.0, 1.0],  # a has no ancestors: not ranked
        [1.0, 0.0, 0.5, 2.0],  # b: its ancestor a behind c -> rank 2, AP 1/2
        [3.0, 1.0, 0.0, 2.0],  # c: b first (rank 1), a behind d (rank 2); AP (1 + 2/3) / 2
        [1.0, 1.0, 5.0, 0.0],  # d: a tied with b -> rank 1.5; AP 1/2 (one threshold for both)
    ]
)


def test_reconstruction_on_a_worked_example():
    metrics = reconstruction(D, CHAIN)
    assert metrics["mean_rank"] == pytest.approx((2 + 1 + 2 + 1.5) / 4)
    assert metrics["map"] == pytest.approx((1 / 2 + 5 / 6 + 1 / 2) / 3)
    assert reconstruction(lambda u: D[u], CHAIN, n_nodes=4, chunk=1) == metrics
    perfect = np.array([[0, 1, 1, 1], [0.1, 0, 1, 1], [0.2, 0.1, 0, 1], [0.1, 1, 1, 0]])  # ancestors first
    assert reconstruction(perfect, CHAIN) == {"mean_rank": 1.0, "map": 1.0}
    # the hierarchy breaker's find: a node of NaN points (training diverged) ranked as if NaN were a number
    with pytest.raises(ValueError, match=r"^4 distances from nodes 1\.\.1 are NaN: a model of NaN points"):
        reconstruction(np.where(np.arange(4)[:, None] == 1, np.nan, perfect), CHAIN, chunk=1)
    far = perfect.copy()
    far[0, 3] = np.inf  # an infinite distance (a point on the ball's edge) ranks last
    assert reconstruction(far, CHAIN) == {"mean_rank": 1.0, "map": 1.0}


def test_link_prediction_filters_training_ancestors():
    test, train = CHAIN[[2]], CHAIN[[0, 1, 3]]  # hold out c -> a
    # c's candidates: a (positive) and d; b is a known ancestor, not a negative
    assert link_prediction(D, test, train) == {"mean_rank": 2.0, "map": 0.5}
    assert link_prediction(D, test, np.empty((0, 2), dtype=int)) == {"mean_rank": 3.0, "map": pytest.approx(1 / 3)}


def test_reconstruction_matches_the_reference_loop_with_sklearn():
    rng = np.random.default_rng(0)
    n = 30
    edges = np.array(sorted({(a, b) for a, b in rng.integers(0, n, (120, 2)).tolist() if a != b}))
    dist = rng.random((n, n))
    ranks, aps = [], []
    for u in np.unique(edges[:, 0]):
        ancestors = edges[edges[:, 0] == u, 1]
        others = np.setdiff1d(np.arange(n), np.append(ancestors, u))
        ranks += [1 + (dist[u, others] < dist[u, v]).sum() for v in ancestors]
        keep = np.arange(n) != u
        aps.append(average_precision_score(np.isin(np.arange(n), ancestors)[keep], -dist[u, keep]))
    metrics = reconstruction(lambda u: dist[u], edges, n_nodes=n, chunk=7)
    assert metrics["mean_rank"] == pytest.approx(np.mean(ranks)) and metrics["map"] == pytest.approx(np.mean(aps))


def test_a_constant_embedding_ranks_like_chance():
    metrics = reconstruction(np.zeros((4, 4)), CHAIN)
    # b: a among {a, c, d} -> 1 + 2/2; c: each of b, a against d -> 1.5; d: a among {a, b, c} -> 2
    assert metrics["mean_rank"] == pytest.approx((2 + 1.5 + 1.5 + 2) / 4)
    assert metrics["map"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)


def test_norm_order_statistics():
    assert spearman_norm_depth(np.array([0.1, 0.5, 0.6, 0.9]), np.array([0, 1, 2, 3])) == pytest.approx(1.0)
    assert spearman_norm_depth(np.array([0.9, 0.5]), np.array([0, 1])) == pytest.approx(-1.0)
    chains = [[0.1, 0.2, 0.3, 0.4], [0.1, 0.3, 0.2, 0.4], [0.5, 0.5, 0.5, 0.5]]  # tau 1, 2/3, undefined -> 0
    assert kendall_levels(chains) == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert kendall_levels(np.array([[0.4, 0.3, 0.2, 0.1]])) == pytest.approx(-1.0)


def test_link_prediction_ranks_the_held_out_pairs_of_a_sample_of_children(mammals):
    """`evaluate_points` caps link prediction as it caps reconstruction: the held-out pairs
    of at most `max_nodes` children (on all nouns, 2,000 of 33,176 pairs' children: an
    evaluation of minutes, not twenty), all of them when there are fewer."""
    import torch

    from models.hierarchy_metrics import evaluate_points
    from models.poincare import poincare_distance

    split = split_edges(mammals, 0.1, 0)
    points = np.random.default_rng(0).normal(size=(mammals.n_nodes, 3)) * 0.1

    def ranked(pairs: np.ndarray) -> dict[str, float]:
        table = torch.from_numpy(points)
        return link_prediction(lambda u: poincare_distance(table[u][:, None], table[None]).numpy(), pairs,
                               split.train_edges(), mammals.n_nodes)  # fmt: skip

    everything = evaluate_points(points, poincare_distance, split, max_nodes=5_000)
    assert everything["link_map"] == pytest.approx(ranked(split.test_edges)["map"])
    some = evaluate_points(points, poincare_distance, split, max_nodes=40, seed=3)
    children = np.unique(split.test_edges[:, 0])
    keep = np.random.default_rng(3).choice(children, 40, replace=False)
    expected = ranked(split.test_edges[np.isin(split.test_edges[:, 0], keep)])
    assert some["link_map"] == pytest.approx(expected["map"]) and some["link_map"] != everything["link_map"]


def _dag(draw_edges: list[tuple[int, int]], n: int) -> pl.DataFrame:
    """Direct (child, parent) edges on nodes named n0, n1, ...: each pair as (larger, smaller) index, so a DAG."""
    pairs = {(max(a, b), min(a, b)) for a, b in draw_edges if a != b} or {(1, 0)}
    return pl.DataFrame({"child": [f"n{c}" for c, _ in pairs], "parent": [f"n{p}" for _, p in pairs]})


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1),
       st.integers(0, n - 1)), min_size=1, max_size=30), st.integers(0, 10**6))))  # fmt: skip
def test_any_dag_is_a_hierarchy_and_any_back_edge_or_self_loop_is_refused(case):
    """Every hierarchy is made by `Hierarchy`, which refuses a node that is its own
    ancestor: through its closure (`build_hierarchy`, as WordNet's loaders build it) and
    as given; a random DAG passes, the same DAG with one edge turned back or one self-loop
    is one line naming the nodes."""
    n, drawn, seed = case
    direct = _dag(drawn, n)
    h = build_hierarchy(transitive_closure(direct), direct)
    assert h.n_edges >= len(direct) and not (h.edges[:, 0] == h.edges[:, 1]).any()
    rng = np.random.default_rng(seed)
    child, ancestor = h.edges[rng.integers(h.n_edges)]  # any closure pair, turned back: a cycle
    back = pl.concat([direct, pl.DataFrame({"child": [h.names[ancestor]], "parent": [h.names[child]]})])
    with pytest.raises(ValueError, match="not a hierarchy: its edges go round") as refused:
        build_hierarchy(transitive_closure(back), back)
    pairs = {tuple(e) for e in h.edges.tolist()}  # the nodes named lie between the two, now a cycle
    between = {h.names[x] for x in range(n) if x in (child, ancestor) or {(child, x), (x, ancestor)} <= pairs}
    named = set(re.findall(r"'(n\d+)'", str(refused.value)))
    assert named and named <= between and "\n" not in str(refused.value)
    node = f"n{rng.integers(n)}"
    loop = pl.concat([direct, pl.DataFrame({"child": [node], "parent": [node]})])
    with pytest.raises(ValueError, match="not a hierarchy"):
        build_hierarchy(transitive_closure(loop), loop)
    # as given, without a closure: a back edge, then a self-loop
    for extra in (np.array([[ancestor, child]]), np.array([[child, child]])):
        edges = np.concatenate([h.edges, extra])
        with pytest.raises(ValueError, match=f"not a hierarchy.*'{h.names[child]}'"):
            Hierarchy(h.names, h.texts, edges, np.zeros(len(edges), bool), h.depth)


def test_a_long_cycle_is_named_by_a_few_of_its_nodes():
    names = np.array([f"n{i}" for i in range(10)])
    ring = np.stack([np.arange(10), (np.arange(10) + 1) % 10], axis=1)  # n0 -> n1 -> ... -> n9 -> n0
    with pytest.raises(ValueError, match=r"'n\d' -> 'n\d' -> 'n\d' -> 'n\d' -> \.\.\. -> 'n\d' .*a cycle of 10"):
        Hierarchy(names, names, ring, np.ones(10, bool), np.zeros(10, np.int64))


def test_a_share_that_rounds_to_nothing_is_refused(mammals):
    assert len(split_edges(mammals, 0.0).test_edges) == 0  # 0: nothing held out, as asked
    with pytest.raises(ValueError, match="holds out none of 6540 edges"):
        split_edges(mammals, 1e-5)
    with pytest.raises(ValueError, match="holds out none of 1180 nodes"):
        split_nodes(mammals, 1e-4)
