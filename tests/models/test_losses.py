"""InfoNCE: the worked example, duplicate masking, and the loss gathered across two
real gloo workers against the same loss computed in one process."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import functional as F

from models.losses import batch_info_nce, duplicate_mask, gather, info_nce


def test_worked_example_of_the_course_material():
    anchor = torch.tensor([[0.8109, -0.9391, 0.2519]])
    positive = torch.tensor([[-1.2887, 1.5057, 0.4449]])
    negative = torch.tensor([[2.1968, 0.4785, 1.5207]])
    unit = lambda x: F.normalize(x, dim=-1)  # noqa: E731 (cosine similarity = dot product of unit vectors)
    loss = info_nce(unit(anchor), unit(torch.cat([positive, negative])), torch.tensor([0]), temperature=0.5)
    assert loss.item() == pytest.approx(2.8811, abs=1e-4)


def test_lower_temperature_sharpens_and_a_good_positive_gives_a_small_loss():
    a = F.normalize(torch.tensor([[1.0, 0.1], [0.0, 1.0]]), dim=-1)
    c = F.normalize(torch.tensor([[1.0, 0.0], [0.1, 1.0]]), dim=-1)
    targets = torch.tensor([0, 1])
    sharp, soft = info_nce(a, c, targets, 0.05), info_nce(a, c, targets, 1.0)
    assert sharp.item() < 1e-6 < soft.item() < math.log(2)


def test_duplicates_are_masked_never_negatives():
    # anchors 0 and 1; candidate 2 has anchor 0's positive text, candidate 3 anchor 1's own text
    anchor_ids, positive_ids = torch.tensor([10, 11]), torch.tensor([20, 21])
    candidate_ids = torch.tensor([20, 21, 20, 11])
    mask = duplicate_mask(anchor_ids, positive_ids, candidate_ids, torch.tensor([0, 1]))
    assert mask.tolist() == [[False, False, True, False], [False, False, False, True]]

    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    masked = info_nce(a, c, torch.tensor([0, 1]), 1.0, mask)
    unmasked = info_nce(a, c, torch.tensor([0, 1]), 1.0)
    assert masked.item() == pytest.approx(math.log(1 + 2 * math.exp(-1)), rel=1e-5)  # the two true negatives left
    assert unmasked.item() > math.log(2)  # the duplicate competes with the positive


def test_without_a_process_group_gather_is_the_identity():
    x = torch.randn(3, 4, requires_grad=True)
    assert gather(x) is x


def _one_worker(rank: int, store: str, data: dict, out: dict) -> None:
    # a file store and gloo on loopback: nothing of the test listens beyond 127.0.0.1
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    b = len(data["a"]) // 2
    local = {k: v[rank * b : (rank + 1) * b].clone().requires_grad_(k != "ids") for k, v in data.items()}
    loss = batch_info_nce(local["a"], local["p"], local["n"], local["ids"], temperature=0.1)
    loss.backward()
    out[rank] = (loss.item(), *(local[k].grad.clone() for k in ("a", "p", "n")))
    dist.destroy_process_group()


def test_gathered_loss_equals_one_process_over_the_global_batch(tmp_path):
    torch.manual_seed(0)
    n, d = 8, 5
    data = {
        "a": F.normalize(torch.randn(n, d), dim=-1),
        "p": F.normalize(torch.randn(n, d), dim=-1),
        "n": F.normalize(torch.randn(n, d), dim=-1),
        "ids": torch.stack([torch.arange(n), 100 + torch.arange(n), 200 + torch.arange(n)], dim=1),
    }
    data["ids"][5, 1] = data["ids"][1, 1]  # a duplicate positive text across the two workers
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_one_worker, args=(str(tmp_path / "store"), data, out), nprocs=2, join=True)
        results = dict(out)

    # one process: every anchor against all positives and negatives, rows of each worker
    a, p, neg = (data[k].clone().requires_grad_() for k in ("a", "p", "n"))
    candidates = torch.cat([p, neg])
    cand_ids = torch.cat([data["ids"][:, 1], data["ids"][:, 2]])
    mask = duplicate_mask(data["ids"][:, 0], data["ids"][:, 1], cand_ids, torch.arange(n))
    logits = (a @ candidates.T / 0.1).masked_fill(mask, torch.finfo(torch.float32).min)
    per_anchor = F.cross_entropy(logits, torch.arange(n), reduction="none")
    per_anchor.mean().backward()  # the global batch's loss, whose gradient DDP's mean must be
    for rank in (0, 1):
        expected = per_anchor[rank * 4 : (rank + 1) * 4].mean().item()
        loss, *grads = results[rank]
        assert loss == pytest.approx(expected, rel=1e-5)
        # DDP averages the two workers' gradients: each vector's, halved, is the global one.
        # A gather without gradient lost a candidate's terms from the other worker's anchors.
        for local_grad, whole in zip(grads, (a, p, neg), strict=True):
            torch.testing.assert_close(local_grad / 2, whole.grad[rank * 4 : (rank + 1) * 4], rtol=1e-5, atol=1e-6)
    # the duplicate is masked for anchor 1 (worker 0) and for anchor 5 (worker 1)
    assert mask[1, 5] and mask[5, 1] and not mask[1, 1] and not mask[5, 5]
