"""The hierarchy task stepped in this process, without Ray, as one Ray Train worker runs
it: the reference the in-process tests train against, and the uninterrupted twin of
the killed-and-resumed run (tests/workflows/test_train_hierarchy.py)."""

from __future__ import annotations

import torch

from hierarchies.datasets import Split
from workflows.jobs.train_hierarchy import HierarchyTrainConfig
from workflows.training.hierarchy import HierarchyData, HierarchyTask
from workflows.training.loop import Batches, LoopState, Worker, train_step

CPU = torch.device("cpu")


def steps(cfg: HierarchyTrainConfig, split: Split, count: int | None = None) -> tuple[HierarchyTask, object, list]:
    """The task on one worker (rank 0 of 1) for `count` steps (None: the whole run), as
    `train_loop_per_worker` runs it: (task, model, the loss of every step)."""
    task = HierarchyTask(cfg, HierarchyData(split))
    cfg = task.cfg  # with its model's defaults
    torch.manual_seed(cfg.seed)
    batches = Batches(task.examples, cfg.batch_size, cfg.seed, rank=0, size=1)
    total = batches.total_steps(cfg.epochs, cfg.max_steps)
    module = task.build(None, CPU, rank=0)
    optimizer, schedule = task.optimizer(module, total)
    worker = Worker(module, module, optimizer, schedule, torch.amp.GradScaler("cuda", enabled=False), None, LoopState())
    module.train()
    losses = [
        train_step(task, worker, batches(step)[1], step, CPU).item()
        for step in range(total if count is None else count)
    ]
    return task, module, losses
