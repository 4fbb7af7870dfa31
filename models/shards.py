"""Work split across DDP workers by rows, and merged back.

Worker `rank` of `size` computes rows `rank::size` of a table (scores of validation
pairs, points of hierarchy nodes); `merge_shards` gives every worker all the rows, in
order. Without a process group (one worker) it returns the rows it is given.
"""

from __future__ import annotations

import numpy as np


def merge_shards(local: np.ndarray, rank: int, size: int, n: int) -> np.ndarray:
    """Rows rank::size computed on each worker (scores, or vectors) -> all n rows, in order, on every worker.

    local: (ceil((n - rank) / size), ...) this worker's rows; returns (n, ...). Every
    worker must call it (an `all_gather_object` over the default process group).
    """
    if size == 1:
        return local
    import torch.distributed as dist

    shards: list = [None] * size
    dist.all_gather_object(shards, local)
    local = np.asarray(local)
    merged = np.empty((n, *local.shape[1:]), dtype=local.dtype)  # (n, ...)
    for r, shard in enumerate(shards):
        merged[r::size] = shard
    return merged
