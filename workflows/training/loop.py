"""The one Ray Train loop behind every `sessionflow train` command.

A model's trainer supplies a `TrainTask`: how to build the model, the loss of some
training examples, how to evaluate and save it. This module does the rest, the same
for every model:

- every worker sees the same seeded permutation of the examples each epoch and takes
  its own slice of each global batch (what `DistributedSampler` does); DDP averages
  the gradients (gloo on CPU, nccl on GPU; bf16 or fp16 autocast on GPU);
- rank 0 logs the loss and the throughput of every step to MLflow (only rank 0 talks
  to MLflow);
- every `eval_every` steps the workers evaluate together, rank 0 saves a checkpoint
  (model, optimizer, schedule, loop state), and training stops early after
  `patience` evaluations without a better `monitor` metric;
- a worker that dies is replaced (`FailureConfig`) and all workers resume from the
  last checkpoint, in the same MLflow run (tag `resumed_from_step`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class LoopSettings(Protocol):
    """The fields of a trainer's config that the loop reads."""

    epochs: int
    max_steps: int  # 0: the epochs decide
    batch_size: int  # examples per worker and step
    eval_every: int
    patience: int
    workers: int
    gpu: bool
    amp: bool
    max_failures: int
    seed: int


class TrainTask(ABC):
    """A model's part of the loop. Built on the driver and shipped to every worker,
    so it should carry its data as Ray object references, not as tables."""

    cfg: LoopSettings
    monitor: str = "val_auc"  # the metric of `evaluate` to maximise
    unit: str = "pairs"  # what an example is; throughput is logged as `<unit>_per_s`
    clip_norm: float | None = 1.0  # gradient norm clipping (None: none)

    @property
    @abstractmethod
    def examples(self) -> int:
        """How many training examples there are (rows of the permutation)."""

    @abstractmethod
    def build(self, resume: Path | None, device: Any) -> Any:
        """The model on `device`: fresh, or the one saved by `save` in `resume`."""

    @abstractmethod
    def optimizer(self, model: Any, total_steps: int) -> tuple[Any, Any]:
        """(optimizer, learning-rate schedule or None) for `total_steps` steps."""

    @abstractmethod
    def loss(self, model: Any, module: Any, rows: np.ndarray, step: int, device: Any) -> Any:
        """The loss of the examples `rows` at `step` (0-based); `model` runs forward passes (DDP), `module`
        is the model itself."""

    @abstractmethod
    def evaluate(self, module: Any, rank: int, size: int) -> dict[str, float]:
        """Validation metrics, computed together by the workers (the same dict on every rank)."""

    @abstractmethod
    def save(self, module: Any, directory: Path) -> None:
        """Write the model to `directory`, as `build` reads it."""


@dataclass
class LoopState:
    step: int = 0
    best: float = -math.inf
    best_step: int = 0
    since_best: int = 0


def merge_shards(local: np.ndarray, rank: int, size: int, n: int) -> np.ndarray:
    """Rows rank::size computed on each worker (scores, or vectors) -> all n rows, in order, on every worker."""
    if size == 1:
        return local
    import torch.distributed as dist

    shards: list = [None] * size
    dist.all_gather_object(shards, local)
    local = np.asarray(local)
    merged = np.empty((n, *local.shape[1:]), dtype=local.dtype)
    for r, shard in enumerate(shards):
        merged[r::size] = shard
    return merged


def train_loop_per_worker(config: dict) -> None:
    """What every Ray Train worker runs."""
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    task: TrainTask = config["task"]
    cfg = task.cfg
    ctx = ray.train.get_context()
    rank, size = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(config["threads"])
    torch.manual_seed(cfg.seed)
    device = ray.train.torch.get_device()

    per_step = size * cfg.batch_size
    steps_per_epoch = task.examples // per_step
    if steps_per_epoch == 0:
        raise ValueError(f"{task.examples} training examples: fewer than one global batch ({per_step})")
    total = min(cfg.max_steps or steps_per_epoch * cfg.epochs, steps_per_epoch * cfg.epochs)

    state, resume = LoopState(), None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        resume = Path(tempfile.mkdtemp(prefix="sessionflow-resume-"))
        checkpoint.to_directory(str(resume))
        state = LoopState(**json.loads((resume / "state.json").read_text()))
    module = task.build(resume / "model" if resume else None, device)
    model = ray.train.torch.prepare_model(module)  # DDP when there are several workers
    optimizer, schedule = task.optimizer(model, total)
    amp_dtype = None
    if device.type == "cuda" and cfg.amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if resume:
        saved = torch.load(resume / "optimizer.pt", map_location=device, weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])

    log = RankZeroLog(config["tracking_uri"], config["run_id"]) if rank == 0 else None
    if log and state.step:
        log.tag("resumed_from_step", state.step)
    order, order_epoch = None, -1
    losses: list[float] = []
    tick = time.perf_counter()
    model.train()
    for step in range(state.step, total):
        epoch, i = divmod(step, steps_per_epoch)
        if epoch != order_epoch:  # the same permutation on every worker
            order, order_epoch = np.random.default_rng([cfg.seed, epoch]).permutation(task.examples), epoch
        assert order is not None
        rows = order[i * per_step : (i + 1) * per_step][rank::size]
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = task.loss(model, module, rows, step, device)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if task.clip_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), task.clip_norm)
        scaler.step(optimizer)
        scaler.update()
        if schedule is not None:
            schedule.step()

        mean_loss = loss.detach().float()
        if size > 1:
            dist.all_reduce(mean_loss)
            mean_loss /= size
        losses.append(float(mean_loss))
        now = time.perf_counter()
        if log:
            log.metrics(step + 1, {"loss": losses[-1], f"{task.unit}_per_s": per_step / (now - tick), "epoch": epoch})
        tick = now

        done = step + 1 == total
        if (step + 1) % cfg.eval_every and not done:
            continue
        model.eval()
        evaluated = task.evaluate(module, rank, size)
        model.train()
        value = evaluated[task.monitor]
        state.step = step + 1
        if value > state.best:
            state.best, state.best_step, state.since_best = value, step + 1, 0
        else:
            state.since_best += 1
        stop = state.since_best >= cfg.patience
        metrics = {
            **evaluated, "step": step + 1, "epoch": epoch, "loss": float(np.mean(losses)),
            f"best_{task.monitor}": state.best, "best_step": state.best_step, "stopped_early": stop and not done,
        }  # fmt: skip
        losses.clear()
        if log:
            log.metrics(step + 1, {**evaluated, f"best_{task.monitor}": state.best}, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                task.save(module, Path(tmp) / "model")
                saved = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                         "schedule": schedule.state_dict() if schedule is not None else None}  # fmt: skip
                torch.save(saved, Path(tmp) / "optimizer.pt")
                (Path(tmp) / "state.json").write_text(json.dumps(dataclasses.asdict(state)))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
            else:
                ray.train.report(metrics)  # every rank reports; only rank 0 has a checkpoint
        if stop:
            break
        tick = time.perf_counter()


class RankZeroLog:
    """Rank 0's MLflow logging: metrics buffered and sent in batches."""

    def __init__(self, tracking_uri: str, run_id: str, every: int = 10) -> None:
        from mlflow.tracking import MlflowClient

        self.client, self.run_id, self.every = MlflowClient(tracking_uri), run_id, every
        self.buffer: list = []

    def metrics(self, step: int, values: dict[str, float], flush: bool = False) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer += [Metric(k, float(v), now, step) for k, v in values.items()]
        if flush or step % self.every == 0:
            self.client.log_batch(self.run_id, metrics=self.buffer)
            self.buffer = []

    def tag(self, key: str, value: Any) -> None:
        self.client.set_tag(self.run_id, key, str(value))


def fit(task: TrainTask, run_id: str, name: str, storage: str | None, cpus: int):
    """Run `task` on a `TorchTrainer` (inside a Ray runtime); the Ray Train `Result`."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from workflows.tracking.store import tracking_uri

    cfg = task.cfg
    threads = max(1, cpus // cfg.workers) if not cfg.gpu else 2
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"task": task, "threads": threads, "tracking_uri": tracking_uri(), "run_id": run_id},
        scaling_config=ScalingConfig(
            num_workers=cfg.workers, use_gpu=cfg.gpu, resources_per_worker={"CPU": 1 if cfg.gpu else threads}
        ),
        run_config=RunConfig(
            name=f"{name}-{run_id}",
            storage_path=storage,
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=task.monitor, checkpoint_score_order="max"
            ),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
        ),
    )
    return trainer.fit()


@dataclass(frozen=True)
class Trained:
    """The best checkpoint of a finished run, copied to a local directory."""

    model: Path  # what `TrainTask.save` wrote
    state: dict  # the loop state saved with it (best_step, ...)
    last_step: int  # the run's last step (later than the best one after early stopping's patience)
    where: str  # the checkpoint in Ray Train's storage


@contextmanager
def train_best(task: TrainTask, run_id: str, name: str, storage: str | None, address: str | None) -> Iterator[Trained]:
    """Fit `task` on Ray (a local runtime, or the cluster at `address`) and yield its best checkpoint by
    `task.monitor`, in a temporary directory removed afterwards."""
    from pyarrow import fs

    from workflows.distributed.runtime import cluster_cpus, ray_runtime

    with ray_runtime(address):
        result = fit(task, run_id, name, storage, cluster_cpus())
    best = result.get_best_checkpoint(metric=task.monitor, mode="max")
    if best is None:
        raise RuntimeError("training reported no checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "checkpoint"
        fs.copy_files(best.path, str(local), source_filesystem=best.filesystem)
        state = json.loads((local / "state.json").read_text())
        last = int((result.metrics or {}).get("step", state["step"]))
        yield Trained(local / "model", state, last, best.path)
