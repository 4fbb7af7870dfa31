"""Metrics of hierarchy embeddings: what a trained table or text model is judged by.

- `evaluate_points`: reconstruction mean rank and MAP on the training pairs and link
  prediction on held-out pairs (Nickel & Kiela 2017; `hierarchies.metrics`), and
  Spearman's correlation of the norm with the depth;
- `chain_metrics`: on HierarCaps' test hierarchies (Alper & Averbuch-Elor 2024),
  Kendall's tau of the norms against the levels and hierarchical retrieval;
  `pretrained_chain_metrics` gives the same numbers for the pretrained encoder (the
  baselines);
- `hit_metrics`: the F1 of HiT's protocol (He et al. 2024; `hierarchies.hit`),
  multi-hop inference and mixed-hop prediction, random and hard negatives;
- `node_points`: the points of every node, from a lookup table or by encoding texts
  (each DDP worker a share, merged with `models.shards.merge_shards`).

Shapes: n nodes, d dimensions of a point, q queries, p texts of a retrieval pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hierarchies.datasets import Split
from hierarchies.hierarcaps import retrieval_task
from hierarchies.hit import KINDS as HIT_KINDS
from hierarchies.hit import HitSplits, choose_and_score
from hierarchies.metrics import (
    chain_retrieval,
    kendall_levels,
    link_prediction,
    reconstruction,
    spearman_norm_depth,
)
from models.encoder import load_encoder
from models.poincare import LookupEmbedding, distances
from models.shards import merge_shards

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _Points:
    """Fixed points ranked like a lookup table (`models.poincare.distances`)."""

    def __init__(self, weight: torch.Tensor, distance: Distance) -> None:
        self.weight, self.distance = weight, distance  # weight: (n, d)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.weight[idx]  # (*idx.shape, d)


def evaluate_points(
    points: np.ndarray, distance: Distance, split: Split, max_nodes: int, seed: int = 0, device: Any = "cpu"
) -> dict[str, float]:
    """Reconstruction (training pairs), link prediction (held-out pairs) and Spearman(norm, depth).

    points: (n, d) the points of every node of `split.full`; distance(x, y): the
    model's distance over torch tensors (broadcasting over leading dims); reconstruction
    and link prediction each rank the ancestors of at most `max_nodes` children (a
    sample seeded by `seed`: all of them on the mammals, 2,000 of the 74,401 nouns by
    default), each among all nodes; device: the model's (a ball's curvature is a
    parameter, on the GPU with the model). Keys: `mean_rank`, `map`, `link_mean_rank`,
    `link_map` (when `split` holds pairs out) and `spearman_norm_depth`.
    """
    table = _Points(torch.from_numpy(points).to(device), distance)
    train_edges = split.train_edges()  # (m, 2) child, ancestor
    n = len(points)
    metrics = dict(reconstruction(lambda u: distances(table, u), of_children(train_edges, max_nodes, seed), n))
    if len(split.test_edges):
        held = of_children(split.test_edges, max_nodes, seed)
        linked = link_prediction(lambda u: distances(table, u), held, train_edges, n)
        metrics |= {f"link_{k}": v for k, v in linked.items()}
    # the distance from the origin of the ball grows with the Euclidean norm: the same order
    metrics["spearman_norm_depth"] = spearman_norm_depth(np.linalg.norm(points, axis=1), split.full.depth)
    return metrics


def of_children(edges: np.ndarray, most: int, seed: int) -> np.ndarray:
    """The (child, ancestor) pairs `edges` (m, 2) of at most `most` children, drawn
    uniformly (seeded) when there are more."""
    children = np.unique(edges[:, 0])
    if len(children) <= most:
        return edges
    keep = np.random.default_rng(seed).choice(children, most, replace=False)
    return edges[np.isin(edges[:, 0], keep)]


@torch.no_grad()
def hit_metrics(
    points: np.ndarray,
    distance: Distance,
    norm: Callable[[torch.Tensor], torch.Tensor],
    splits: HitSplits,
    tasks: tuple[str, ...],
    device: Any = "cpu",
    block: int = 65_536,
) -> dict[str, float]:
    """HiT's protocol (`hierarchies.hit`, He et al. 2024) for the points of every node.

    points: (n, d) of `splits.hierarchy`'s nodes; distance(x, y) and norm(x) (the
    distance from the origin) over torch tensors, the model's own; tasks: of
    `hierarchies.hit.TASKS`. For each task and kind of negatives (`rn`, `hn`), λ and the
    threshold are chosen on the validation pairs and the test pairs scored: keys
    `{task}_{f1,precision,recall,val_f1,lambda,threshold}_{kind}`, and
    `{task}_test_positives`.
    """
    x = torch.from_numpy(points).to(device)  # (n, d)
    node_norm = norm(x).cpu().numpy()  # (n,)

    def parts(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = np.concatenate(
            [distance(x[pairs[i : i + block, 0]], x[pairs[i : i + block, 1]]).cpu().numpy()
             for i in range(0, len(pairs), block)]
        )  # (p,), a block of pairs at a time  # fmt: skip
        return d, node_norm[pairs[:, 0]], node_norm[pairs[:, 1]]

    out: dict[str, float] = {}
    for task in tasks:
        out[f"{task}_test_positives"] = len(splits.test[task].positives)
        for kind in HIT_KINDS:
            (val_pairs, val_labels), (test_pairs, test_labels) = (
                splits.val[task].labelled(kind),
                splits.test[task].labelled(kind),
            )
            scored = choose_and_score(parts(val_pairs), parts(test_pairs), val_labels, test_labels)
            out |= {f"{task}_{key}_{kind}": value for key, value in scored.items()}
    return out


def chain_metrics(module: Any, chains: np.ndarray, rank: int = 0, size: int = 1) -> dict[str, float]:
    """On HierarCaps' test hierarchies: Kendall's tau of each chain's norms against its
    levels, and hierarchical retrieval (`hierarchies.hierarcaps.retrieval_task`): a
    query retrieves the captions more general than itself (smaller norm), nearest first.

    module: a hierarchy text model (`points`, `norm`, `distance`); chains: (c, 4)
    captions, general first; every worker of `size` encodes a share of the captions.
    A chain with a caption the model cannot read (unknown tokens alone: no point,
    `models.encoder.unread_texts`) is left out of both and counted: the figures are
    those of the chains read (such a chain's tau was 0, as if its norms all tied, and
    its captions were retrieved at NaN distances). Keys: `unread_chains`, and where a
    chain is read `kendall_tau` and those of `hierarchies.metrics.chain_retrieval`
    (none where no chain is read: `no_chain_read` says so).
    """
    every = np.unique(chains)  # (p,) sorted: every caption, encoded once
    device = next(module.parameters()).device
    points = node_points(module, every, rank, size)  # (p, d), NaN where unread
    kept = read_chains(chains, every, np.isfinite(points).all(axis=1))
    out = {"unread_chains": len(chains) - len(kept)}
    if not len(kept):
        return out
    pool, index, queries, relevant = retrieval_task(kept)
    x = torch.from_numpy(points[np.searchsorted(every, pool)]).to(device)  # (p', d): the read chains' captions
    norms = module.norm(x).cpu().numpy()  # (p',)
    distance = np.concatenate(
        [module.distance(x[queries[i : i + 100], None], x[None]).cpu().numpy()
         for i in range(0, len(queries), 100)]
    )  # (q, p'), 100 queries at a time  # fmt: skip
    eligible = norms[None, :] < norms[queries, None]  # (q, p')
    return out | {"kendall_tau": kendall_levels(norms[index]), **chain_retrieval(distance, eligible, relevant)}


def read_chains(chains: np.ndarray, pool: np.ndarray, read: np.ndarray) -> np.ndarray:
    """The chains (c, levels) whose every caption is read, (c', levels): `pool` (p,) the sorted
    distinct captions of `chains`, `read` (p,) bool which of them the model reads."""
    return chains[read[np.searchsorted(pool, chains)].all(axis=1)]


def no_chain_read(metrics: dict) -> str | None:
    """What to say of the `metrics` of HierarCaps where no test chain was read (no Kendall's tau, no
    retrieval); None otherwise."""
    if "unread_chains" in metrics and "kendall_tau" not in metrics:
        return (f"none of the {metrics['unread_chains']:,} test chains could be read (each has a caption of unknown "
                "tokens alone to the model): no kendall_tau or retrieval")  # fmt: skip
    return None


def pretrained_chain_metrics(encoder_name: str, chains: np.ndarray, max_length: int = 32) -> dict[str, float]:
    """The baselines of HierarCaps, from the pretrained encoder (mean pooling, not
    normalised): Kendall's tau of its Euclidean norm against the levels, and retrieval
    by cosine similarity among all other captions (it has no notion of more general).

    encoder_name: as `models.encoder.load_encoder` takes it; chains: (c, 4) captions;
    scored on the chains whose every caption it reads, as `chain_metrics` ({} for none).
    Keys: `kendall_tau_pretrained_norm` and `pretrained_cosine_<retrieval key>`.
    """
    from models.encoder import unread_texts

    encoder = load_encoder(encoder_name, max_length=max_length, normalize=False)
    every = np.unique(chains)  # (p,) sorted
    kept = read_chains(chains, every, ~unread_texts(encoder.tokenizer, every.tolist(), encoder.max_length))
    if not len(kept):
        return {}
    pool, index, queries, relevant = retrieval_task(kept)
    vectors = encoder.encode(pool.tolist())  # (p', h)
    norms = np.linalg.norm(vectors, axis=1)  # (p',)
    unit = vectors / np.maximum(norms, 1e-12)[:, None]  # (p', h)
    eligible = np.ones_like(relevant)  # (q, p')
    eligible[np.arange(len(queries)), queries] = False
    retrieval = chain_retrieval(1.0 - unit[queries] @ unit.T, eligible, relevant)
    return {"kendall_tau_pretrained_norm": kendall_levels(norms[index]),
            **{f"pretrained_cosine_{k}": v for k, v in retrieval.items()}}  # fmt: skip


def node_points(module: Any, texts: np.ndarray, rank: int = 0, size: int = 1) -> np.ndarray:
    """float64 points (n, d) of every node: the table of a lookup model, or each worker's share of the
    texts (n,) encoded and merged on every worker (`models.shards.merge_shards`)."""
    if isinstance(module, LookupEmbedding):  # its forward's points (order embeddings: |x|), every node
        with torch.no_grad():
            return module(torch.arange(module.weight.shape[0], device=module.weight.device)).cpu().numpy()
    return merge_shards(module.points(texts[rank::size].tolist()), rank, size, len(texts))
