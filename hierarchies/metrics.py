"""Ranking metrics of a hierarchy embedding, and the order of norms against depth and level.

Reconstruction (Nickel & Kiela 2017, `hype/graph.py: eval_reconstruction`): for each
node u with ancestors, each true ancestor v is ranked by distance d(u, ·) among the
nodes that are not ancestors of u (u itself left out); its rank is 1 + the number of
non-ancestors closer than v. Mean rank is the mean over all (u, v) pairs; MAP the
mean over u of the average precision of u's ancestors in the ranking of ancestors
and non-ancestors. Ties (common for order embeddings, whose violation is often 0):
a non-ancestor at v's distance counts half in v's rank (the reference breaks ties
by sort order; half is the mean over orders), and tied distances share one threshold
in the average precision, as in scikit-learn's `average_precision_score`.

Link prediction is the same on held-out pairs, with the training ancestors of u left
out of the candidates (the filtered setting).

Hierarchical retrieval (`chain_retrieval`): each query's ancestors among a pool
of texts, the top k eligible texts by distance retrieved; precision and recall at k.

Distances come from a matrix or from a function `distance(u) -> (len(u), n)`, called
on chunks of rows, so 82,115 WordNet nouns never need an n x n matrix.

    metrics = reconstruction(lambda u: dist_rows(u), h.edges, h.n_nodes)  # {"mean_rank": ..., "map": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

Distance = np.ndarray | Callable[[np.ndarray], np.ndarray]


def _rows(edges: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the ancestors of each node: (offsets (n + 1,), ancestors sorted by child)."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    order = np.argsort(edges[:, 0], kind="stable")
    offsets = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(edges[:, 0], minlength=n_nodes), out=offsets[1:])
    return offsets, edges[order, 1]


def _count_below(thresholds: np.ndarray, values: np.ndarray, strict: bool) -> np.ndarray:
    """For sorted `thresholds` t: how many `values` are < t (strict) or <= t, in O(len(values) log len(t))."""
    # a value falls below t_j exactly when fewer than j + 1 thresholds lie at or under it (< for <=)
    bucket = np.searchsorted(thresholds, values, side="right" if strict else "left")
    return np.cumsum(np.bincount(bucket, minlength=len(thresholds) + 1))[: len(thresholds)]


def rank_row(dist: np.ndarray, positives: np.ndarray, excluded: np.ndarray) -> tuple[np.ndarray, float]:
    """Ranks of the positives of one node among its negatives, and their average precision.

    dist: (n,) distances from the node to every node; positives: indices to rank;
    excluded: indices that are neither positive nor negative (the node itself, known
    ancestors). Every other index is a negative. Returns (ranks (k,), AP).
    """
    negative = np.ones(len(dist), dtype=bool)
    negative[excluded] = False
    negative[positives] = False
    p = np.sort(dist[positives])
    neg = dist[negative]
    closer, at_most = _count_below(p, neg, strict=True), _count_below(p, neg, strict=False)
    ranks = 1 + closer + (at_most - closer) / 2  # a tie counts half: the mean over tie-breaking orders
    positives_at_most = np.searchsorted(p, p, side="right")
    precision = positives_at_most / (positives_at_most + at_most)
    return ranks, float(precision.mean())


def _ranking(distance: Distance, test: np.ndarray, known: np.ndarray, n_nodes: int | None, chunk: int) -> dict:
    if not callable(distance):
        matrix = np.asarray(distance)
        n_nodes = matrix.shape[1]
        distance = matrix.__getitem__
    if n_nodes is None:
        raise ValueError("n_nodes is needed when the distance is a function")
    pos_at, pos = _rows(test, n_nodes)
    known_at, known_anc = _rows(known, n_nodes)
    rows = np.flatnonzero(np.diff(pos_at))
    if not len(rows):
        raise ValueError("no node has an ancestor to rank")
    rank_sum, n_ranks, ap_sum = 0.0, 0, 0.0
    for start in range(0, len(rows), chunk):
        us = rows[start : start + chunk]
        block = np.asarray(distance(us), dtype=np.float64)  # (len(us), n)
        if block.shape != (len(us), n_nodes):
            raise ValueError(f"distance gave {block.shape} for {len(us)} rows of {n_nodes} nodes")
        if np.isnan(block).any():  # NaN compares false with all: it ranked as if it were a number
            raise ValueError(f"{np.count_nonzero(np.isnan(block))} distances from nodes {us[0]}..{us[-1]} are NaN: "
                             "a model of NaN points, whose training diverged")  # fmt: skip
        for u, d in zip(us, block, strict=True):
            excluded = np.append(known_anc[known_at[u] : known_at[u + 1]], u)
            ranks, ap = rank_row(d, pos[pos_at[u] : pos_at[u + 1]], excluded)
            rank_sum += ranks.sum()
            n_ranks += len(ranks)
            ap_sum += ap
    return {"mean_rank": float(rank_sum / n_ranks), "map": float(ap_sum / len(rows))}


def reconstruction(
    distance: Distance, edges: np.ndarray, n_nodes: int | None = None, chunk: int = 256
) -> dict[str, float]:
    """Mean rank and MAP of every closure pair (child, ancestor) in `edges` (m, 2).

    distance: an (n, n) matrix or a function of row indices -> (len(u), n) distances
    (then `n_nodes` is needed); rows are asked for `chunk` at a time.

    Returns {mean_rank, map}. ValueError when `distance` is a function and `n_nodes` is
    None, when no child in `edges` has an ancestor (no edges), when `distance(u)` is
    not (len(u), n_nodes), or holds a NaN distance (an infinite one ranks last).
    """
    return _ranking(distance, edges, np.empty((0, 2), dtype=np.int64), n_nodes, chunk)


def link_prediction(
    distance: Distance, test_edges: np.ndarray, train_edges: np.ndarray, n_nodes: int | None = None, chunk: int = 256
) -> dict[str, float]:
    """Mean rank and MAP of held-out pairs, filtered: a node's training ancestors are no candidates.

    Each held-out ancestor v of u is ranked among the nodes that are ancestors of u
    neither in `test_edges` nor in `train_edges` (and are not u): the filtered setting of
    Bordes et al. 2013 (TransE). test_edges (k, 2), train_edges (m, 2), (child, ancestor)
    each. Returns {mean_rank, map}; ValueError as `reconstruction`.
    """
    return _ranking(distance, test_edges, train_edges, n_nodes, chunk)


def spearman_norm_depth(norms: np.ndarray, depths: np.ndarray) -> float:
    """Spearman correlation of each node's norm with its depth (deeper should be farther out)."""
    return float(stats.spearmanr(norms, depths).statistic)


def kendall_levels(norms_per_chain: np.ndarray | Sequence[np.ndarray]) -> float:
    """Mean Kendall tau (tau-b) between norm order and level order over chains.

    norms_per_chain: one sequence of norms per chain, from the most general level
    (first) to the most specific (last), e.g. (n_chains, 4). A chain whose norms all
    tie says nothing about the order and counts as 0. ValueError when there is no chain.
    """
    taus = []
    for chain in norms_per_chain:
        chain = np.asarray(chain, dtype=np.float64)
        tau = stats.kendalltau(np.arange(len(chain)), chain).statistic
        taus.append(0.0 if np.isnan(tau) else tau)
    if not taus:
        raise ValueError("no chains")
    return float(np.mean(taus))


def chain_retrieval(
    distance: np.ndarray, eligible: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = (1, 3, 5)
) -> dict[str, float]:
    """Hierarchical retrieval: each query's ancestors among a pool of texts.

    distance: (queries, pool), smaller = nearer; eligible: (queries, pool) which pool
    texts a query may retrieve (for a hierarchy model: the more general ones);
    relevant: (queries, pool) the query's true ancestors. The top k eligible texts by
    distance are retrieved; precision@k = hits / k, recall@k = hits / relevant,
    averaged over queries. recall@k divides by all of a query's relevant texts, eligible
    or not (a query with none counts 0). Keys: `retrieval_precision_at_{k}` and
    `retrieval_recall_at_{k}` for each k of `ks`.
    """
    ranked = np.argsort(np.where(eligible, distance, np.inf), axis=1, kind="stable")
    hits_sorted = np.take_along_axis(relevant & eligible, ranked, axis=1)
    n_relevant = np.maximum(relevant.sum(axis=1), 1)
    out = {}
    for k in ks:
        hits = hits_sorted[:, :k].sum(axis=1)
        out[f"retrieval_precision_at_{k}"] = float(np.mean(hits / k))
        out[f"retrieval_recall_at_{k}"] = float(np.mean(hits / n_relevant))
    return out
