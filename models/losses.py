"""Contrastive losses for the session model.

InfoNCE (van den Oord et al. 2018) over dot products: each anchor's positive must
outscore every other candidate, where the candidates are the positives of the whole
global batch (gathered from every DDP worker) and the mined hard negatives.
A candidate whose text is the anchor's own or its positive's (a duplicate in the
batch) is masked out: it is never counted as a negative.

Shapes: B examples of a worker's batch, W workers, N candidates (2 W B: every
worker's positives, then every worker's negatives), d the vectors' width.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn import functional as F


def info_nce(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of softmax(anchors @ candidates.T / temperature) at `targets`.

    `mask` (anchors x candidates, True = leave out) must not cover a target.

    anchors (B, d), candidates (N, d), targets (B,) int64 rows of `candidates`, mask (B, N)
    bool -> () float32 (the logits are cast to float32 before the cross-entropy).
    """
    logits = anchors @ candidates.T / temperature  # (B, N)
    if mask is not None:
        logits = logits.masked_fill(mask, torch.finfo(logits.dtype).min)
    return F.cross_entropy(logits.float(), targets)  # ()


def duplicate_mask(
    anchor_ids: torch.Tensor, positive_ids: torch.Tensor, candidate_ids: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """True where a candidate has the text of the anchor or of its positive, except the target.

    Texts are given as integer ids (equal text, equal id): anchor_ids, positive_ids and
    targets (B,), candidate_ids (N,) -> (B, N) bool.
    """
    same = (candidate_ids[None, :] == anchor_ids[:, None]) | (candidate_ids[None, :] == positive_ids[:, None])  # (B, N)
    same[torch.arange(len(targets), device=targets.device), targets] = False
    return same


def world() -> tuple[int, int]:
    """(rank, world size) of the current process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """`x` of every worker, concatenated in rank order, differentiable: the gradient of
    each worker's loss with respect to a part flows back to the worker that holds it
    (torch's functional `all_gather_single`, whose backward sums them there), as
    sentence-transformers' and open_clip's gathers with gradients do. So DDP's mean of
    the workers' gradients is the gradient of the mean loss over the global batch: a
    positive or negative gets its gradient as a candidate of every worker's anchors,
    not only of its own worker's (with a detached gather, those cross terms are lost).

    (B, ...) on each of W workers -> (W B, ...). Every worker must pass the same shape:
    this is not checked, and `all_gather` fails or hangs otherwise.
    """
    _, size = world()
    if size == 1:
        return x
    if x.requires_grad:  # torch's functional collective, with autograd (torch.distributed.nn's is deprecated)
        from torch.distributed._functional_collectives import all_gather_single

        return all_gather_single(x.contiguous(), 0, dist.group.WORLD)  # (W B, ...)
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)  # (W B, ...)


def batch_info_nce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    ids: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """InfoNCE of one local batch against the global batch.

    anchors, positives, negatives: (B, d) local vectors (row i is one training example,
    its hard negative in `negatives[i]`); ids: (B, 3) text ids of anchor, positive and
    negative. Candidates are every worker's positives, then every worker's negatives.
    Returns () float32. The multiple-negatives ranking loss (Henderson et al. 2017;
    sentence-transformers' MultipleNegativesRankingLoss) with one hard negative per
    example, its in-batch negatives gathered from every worker.
    """
    rank, _ = world()
    all_positives, all_negatives = gather(positives), gather(negatives)  # (W B, d) each
    all_ids = gather(ids)  # (W B, 3)
    candidates = torch.cat([all_positives, all_negatives])  # (N, d)
    candidate_ids = torch.cat([all_ids[:, 1], all_ids[:, 2]])  # (N,)
    targets = rank * len(anchors) + torch.arange(len(anchors), device=anchors.device)  # (B,): own positives
    mask = duplicate_mask(ids[:, 0], ids[:, 1], candidate_ids, targets)  # (B, N)
    return info_nce(anchors, candidates, targets, temperature, mask)
