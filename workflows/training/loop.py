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

Read `train_loop_per_worker` top to bottom: `Batches` (which rows each step trains
on), `restore` (checkpoint -> model, optimiser, schedule, loop state), `train_step`
(one optimisation step), `evaluate_and_checkpoint`. `fit` and `train_best` run it on
a `TorchTrainer`; a job's driver turns the best checkpoint into a `TrainOutcome`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from workflows.errors import note_signal, signals_noted

if TYPE_CHECKING:
    from ray.train import Result

    from workflows.tracking.store import Promotion


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


def gpus_needed(cfg: LoopSettings) -> int:
    """GPUs a training asks Ray for: one per worker with `gpu` (`fit`'s `ScalingConfig`), else none."""
    return cfg.workers if cfg.gpu else 0


EVAL_PREFIX = "eval/"  # the evaluations during training, logged as eval/val_auc, eval/map, ...


class TrainTask(ABC):
    """A model's part of the loop. Built on the driver and shipped to every worker,
    so it should carry its data as Ray object references, not as tables: `prepare`
    puts them into the object store once the job's Ray runtime is up."""

    cfg: LoopSettings
    monitor: str = "val_auc"  # the metric of `evaluate` to maximise
    unit: str = "pairs"  # what an example is; throughput is logged as `<unit>_per_s`
    clip_norm: float | None = 1.0  # gradient norm clipping (None: none)

    def prepare(self) -> None:  # noqa: B027  (a hook: most tasks have nothing to put)
        """Called on the driver inside the job's Ray runtime, before the trainer starts
        (never before: a `ray.put` outside it would start a Ray of its own)."""

    @property
    @abstractmethod
    def examples(self) -> int:
        """How many training examples there are (rows of the permutation)."""

    @abstractmethod
    def build(self, resume: Path | None, device: Any, rank: int) -> Any:
        """The model on `device` for the worker of rank `rank`: fresh, or the one saved by `save` in `resume`."""

    def built(self) -> dict[str, float]:
        """Metrics of what `build` did before the first step (a head fitted first, its loss
        and seconds): rank 0 logs them at step 0 of a fresh run."""
        return {}

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
    """Where a training loop is, checkpointed with the model (`state.json`) and resumed from:
    `step` steps done, the best `monitor` value so far (`best`, higher is better) after
    `best_step`, and `since_best` evaluations without a better one (`patience`)."""

    step: int = 0
    best: float = -math.inf
    best_step: int = 0
    since_best: int = 0


def require_one_global_batch(examples: int, cfg: LoopSettings, more: str = "") -> None:
    """ValueError in one line when `examples` training examples fill no global batch
    (`cfg.workers` x `cfg.batch_size`): what each worker's `Batches` would raise in its
    first step, after Ray had started and retried it as a worker's failure. A job calls
    it before its MLflow run and Ray start. `more`: what else would help, before the
    settings ("mine a larger log, or ")."""
    needed = cfg.workers * cfg.batch_size
    if examples < needed:
        raise ValueError(
            f"{examples:,} training examples: fewer than one global batch ({needed:,}: {cfg.batch_size:,} a "
            f"worker, {cfg.workers} worker{'s' if cfg.workers != 1 else ''}); {more}lower --batch-size or --workers"
        )


def steps_per_epoch(examples: int, workers: int, batch_size: int) -> int:
    """Steps of one epoch of `examples` training examples: its full global batches of
    `workers` x `batch_size` rows (the last, partial one left out, as `Batches` does); 0
    when they fill none (`require_one_global_batch`)."""
    return examples // (workers * batch_size)


class Batches:
    """Which example rows each worker trains on at each step.

    Every worker draws the same seeded permutation of the examples each epoch and takes
    its own slice (rank::size) of each global batch of `size * batch_size` rows (what
    `DistributedSampler` does); the last, partial global batch of an epoch is left out.
    The rows of a step depend on (seed, step) alone, so a resumed run trains on the
    same batches as the run that died.
    """

    def __init__(self, examples: int, batch_size: int, seed: int, rank: int, size: int) -> None:
        self.examples, self.seed, self.rank, self.size = examples, seed, rank, size
        self.per_step = size * batch_size
        self.steps_per_epoch = steps_per_epoch(examples, size, batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{examples} training examples: fewer than one global batch ({self.per_step})")
        self._order, self._epoch = np.empty(0, dtype=np.int64), -1

    def total_steps(self, epochs: int, max_steps: int) -> int:
        """Steps of the run: `epochs` epochs, or `max_steps` if fewer (0: the epochs decide)."""
        return min(max_steps or self.steps_per_epoch * epochs, self.steps_per_epoch * epochs)

    def __call__(self, step: int) -> tuple[int, np.ndarray]:
        """(epoch, this worker's rows (batch_size,)) of `step` (0-based)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:  # the same permutation on every worker
            self._order, self._epoch = np.random.default_rng([self.seed, epoch]).permutation(self.examples), epoch
        return epoch, self._order[i * self.per_step : (i + 1) * self.per_step][self.rank :: self.size]


@dataclass
class Worker:
    """What one worker trains with: the model, the optimiser and the loop state."""

    module: Any  # the model itself (what `TrainTask.build` made)
    model: Any  # what runs forward passes: `module`, or its DDP wrapper
    optimizer: Any
    schedule: Any  # a learning-rate schedule, or None
    scaler: Any  # torch.amp.GradScaler (enabled for fp16 only)
    amp_dtype: Any  # the autocast dtype on GPU (bf16 or fp16), None: no autocast
    state: LoopState


def restore(task: TrainTask, checkpoint: Any, device: Any, total: int, rank: int) -> Worker:
    """The worker's model, optimiser, schedule, gradient scaler and loop state: fresh, or as saved in
    `checkpoint` (a Ray Train checkpoint written by `save_checkpoint`, or None)."""
    import ray.train.torch
    import torch

    cfg = task.cfg
    with tempfile.TemporaryDirectory(prefix="sessionflow-resume-") as tmp:  # removed once loaded (it was left)
        state, resume = LoopState(), None
        if checkpoint:
            resume = Path(tmp)
            checkpoint.to_directory(str(resume))
            state = LoopState(**json.loads((resume / "state.json").read_text()))
        module = task.build(resume / "model" if resume else None, device, rank)
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
        return Worker(module, model, optimizer, schedule, scaler, amp_dtype, state)


def save_checkpoint(task: TrainTask, worker: Worker, directory: Path) -> None:
    """Write what `restore` reads: `model/` (`TrainTask.save`), `optimizer.pt` (optimiser, scaler,
    schedule) and `state.json` (the loop state)."""
    import torch

    task.save(worker.module, directory / "model")
    saved = {"optimizer": worker.optimizer.state_dict(), "scaler": worker.scaler.state_dict(),
             "schedule": worker.schedule.state_dict() if worker.schedule is not None else None}  # fmt: skip
    torch.save(saved, directory / "optimizer.pt")
    (directory / "state.json").write_text(json.dumps(dataclasses.asdict(worker.state)))


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of torch's random draws (dropout) of worker `rank` at `step` (0-based): a
    function of the three alone, so that a resumed run draws what the run that died drew
    at each step, and each worker draws its own masks (one seed for all had given every
    worker the same ones)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def train_step(task: TrainTask, worker: Worker, rows: np.ndarray, step: int, device: Any, rank: int = 0) -> Any:
    """One optimisation step on the examples `rows`: torch seeded by `step_seed`, the task's loss
    (under autocast on GPU), backward (scaled for fp16; DDP averages the gradients), gradient
    clipping at `task.clip_norm`, the optimiser's and the schedule's steps. Returns this worker's
    loss (a scalar tensor)."""
    import torch

    torch.manual_seed(step_seed(task.cfg.seed, rank, step))
    amp_dtype, optimizer, scaler = worker.amp_dtype, worker.optimizer, worker.scaler
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        loss = task.loss(worker.model, worker.module, rows, step, device)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if task.clip_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(worker.model.parameters(), task.clip_norm)
    scaler.step(optimizer)
    scaler.update()
    if worker.schedule is not None:
        worker.schedule.step()
    return loss


def mean_over_workers(loss: Any, size: int) -> float:
    """The mean of every worker's `loss` (a scalar tensor), as a float on every worker."""
    import torch.distributed as dist

    mean_loss = loss.detach().float()
    if size > 1:
        dist.all_reduce(mean_loss)
        mean_loss /= size
    return float(mean_loss)


def evaluate_and_checkpoint(
    task: TrainTask,
    worker: Worker,
    step: int,
    epoch: int,
    losses: list[float],
    done: bool,
    rank: int,
    size: int,
    log: RankZeroLog | None,
) -> bool:
    """After `step` (0-based): the workers evaluate together, the loop state takes the result, rank 0
    logs it and every rank reports it to Ray Train, rank 0 with a checkpoint (`save_checkpoint`).
    `losses`: the mean losses of the steps since the last evaluation. Returns whether to stop early
    (`patience` evaluations without a better `monitor` metric)."""
    import ray.train

    state = worker.state
    worker.model.eval()
    evaluated = task.evaluate(worker.module, rank, size)
    worker.model.train()
    value = evaluated[task.monitor]
    state.step = step + 1
    if value > state.best:
        state.best, state.best_step, state.since_best = value, step + 1, 0
    else:
        state.since_best += 1
    stop = state.since_best >= task.cfg.patience
    metrics = {
        **evaluated, "step": step + 1, "epoch": epoch, "loss": float(np.mean(losses)),
        f"best_{task.monitor}": state.best, "best_step": state.best_step, "stopped_early": stop and not done,
    }  # fmt: skip
    if log:
        # the curves, as `eval/<name>`: the driver logs the model's own values under the plain
        # names once, at the last step (the run's headline: what was registered)
        history = {**evaluated, f"best_{task.monitor}": state.best}
        log.metrics(step + 1, {f"{EVAL_PREFIX}{k}": v for k, v in history.items()}, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if rank == 0:
            save_checkpoint(task, worker, Path(tmp))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)  # every rank reports; only rank 0 has a checkpoint
    return stop


def train_loop_per_worker(config: dict) -> None:
    """What every Ray Train worker runs: `restore`, then `train_step` after `train_step`, with
    `evaluate_and_checkpoint` every `eval_every` steps and after the last one."""
    import ray.train
    import ray.train.torch
    import torch

    task: TrainTask = config["task"]
    cfg = task.cfg
    ctx = ray.train.get_context()
    rank, size = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(config["threads"])
    torch.manual_seed(cfg.seed)
    device = ray.train.torch.get_device()

    batches = Batches(task.examples, cfg.batch_size, cfg.seed, rank, size)
    total = batches.total_steps(cfg.epochs, cfg.max_steps)
    worker = restore(task, ray.train.get_checkpoint(), device, total, rank)

    log = RankZeroLog(config["tracking_uri"], config["run_id"]) if rank == 0 else None
    if log and worker.state.step:
        log.tag("resumed_from_step", worker.state.step)
    elif log and (built := task.built()):
        log.metrics(0, built, flush=True)
    losses: list[float] = []
    tick = time.perf_counter()
    worker.model.train()
    for step in range(worker.state.step, total):
        epoch, rows = batches(step)
        loss = train_step(task, worker, rows, step, device, rank)
        losses.append(mean_over_workers(loss, size))
        now = time.perf_counter()
        if log:
            log.metrics(step + 1, {"loss": losses[-1], f"{task.unit}_per_s": batches.per_step / (now - tick),
                                   "epoch": epoch}, flush=not math.isfinite(losses[-1]))  # fmt: skip
        tick = now
        done = step + 1 == total
        try:  # every worker finds the same: the loss is all workers' mean, the evaluation's outputs merged on each
            if not math.isfinite(losses[-1]):
                raise ModelNotFinite(f"its loss became {losses[-1]}")
            if (step + 1) % cfg.eval_every and not done:
                continue
            if not all(torch.isfinite(p).all() for p in worker.module.parameters()):  # a finite loss, then NaN
                raise ModelNotFinite("its parameters became NaN or infinite")
            stop = evaluate_and_checkpoint(task, worker, step, epoch, losses, done, rank, size, log)
        except ModelNotFinite as err:  # all stop here together (`train_best`)
            if log:
                log.tag(DIVERGED, f"{step + 1} {err}")
            break
        losses.clear()
        if stop:
            break
        tick = time.perf_counter()


DIVERGED = "diverged_at_step"  # the run's tag, set by rank 0 when the loss or the model stops being finite: "STEP WHY"


class ModelNotFinite(ValueError):
    """A model's loss, parameters or outputs (a hierarchy model's points, found by its
    task's evaluation) became NaN or infinite; its message says which. The loop stops
    there as diverged; a job evaluating such a model says it in one line."""


class TrainingDiverged(ValueError):
    """A training run's loss or model became NaN or infinite (`train_best`): its settings
    (learning rates, mostly) drive the model out of floats; no model is kept."""


class RankZeroLog:
    """Rank 0's MLflow logging: metrics buffered and sent in batches."""

    def __init__(self, tracking_uri: str, run_id: str, every: int = 10) -> None:
        from mlflow.tracking import MlflowClient

        self.client, self.run_id, self.every = MlflowClient(tracking_uri), run_id, every
        self.buffer: list = []

    def metrics(self, step: int, values: dict[str, float], flush: bool = False) -> None:
        """Buffer `values` as metrics of `step` (stamped now, in ms); send the buffer when `flush`
        or `step` is a multiple of `every`."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer += [Metric(k, float(v), now, step) for k, v in values.items()]
        if flush or step % self.every == 0:
            self.client.log_batch(self.run_id, metrics=self.buffer)
            self.buffer = []

    def tag(self, key: str, value: Any) -> None:
        """Set the run's tag `key` to `str(value)`, at once."""
        self.client.set_tag(self.run_id, key, str(value))


def fit(task: TrainTask, run_id: str, name: str, storage: str | None, nodes: Sequence[Mapping[str, float]]) -> Result:
    """Run `task` on a `TorchTrainer` (inside a Ray runtime) whose live nodes offer `nodes`
    (`runtime.node_resources`); the Ray Train `Result`. On CPUs each worker takes as
    many threads as lets every worker fit on a node (`runtime.cpus_per_worker`). Where
    the workers do not all fit on those nodes (a cluster awaiting its autoscaler), a
    warning says so on the `sessionflow` logger before Ray Train waits (`runtime.workers_waiting`).

    KeyboardInterrupt after Ctrl-C (noted: `_noting_ctrl_c`), whatever Ray Train ended
    in; Ray Train's own errors otherwise.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from workflows.distributed.runtime import cpus_per_worker, workers_waiting
    from workflows.tracking.uri import tracking_uri
    from workflows.training.rendezvous import BoundTorchConfig

    cfg = task.cfg
    storage_path, storage_fs = checkpoint_storage(storage)
    task.prepare()
    threads = cpus_per_worker(cfg.workers, [int(node.get("CPU", 0)) for node in nodes]) if not cfg.gpu else 2
    per_worker = {"CPU": 1, "GPU": 1} if cfg.gpu else {"CPU": threads}
    if waiting := workers_waiting(cfg.workers, per_worker, nodes):
        logging.getLogger("sessionflow").warning(waiting)
    trainer = _noting_ctrl_c(TorchTrainer)(
        train_loop_per_worker,
        train_loop_config={"task": task, "threads": threads, "tracking_uri": tracking_uri(), "run_id": run_id},
        torch_config=TorchConfig() if cfg.gpu else BoundTorchConfig(),  # NCCL: Ray Train's own rendezvous
        scaling_config=ScalingConfig(
            num_workers=cfg.workers, use_gpu=cfg.gpu, resources_per_worker={"CPU": 1 if cfg.gpu else threads}
        ),
        run_config=RunConfig(
            name=f"{name}-{run_id}",
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=task.monitor, checkpoint_score_order="max"
            ),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
        ),
    )
    _start_autoscaling_coordinator()
    before, noted = signal.getsignal(signal.SIGINT), signals_noted()
    try:
        result = trainer.fit()
    except BaseException as err:
        if signals_noted() > noted and not isinstance(err, KeyboardInterrupt):
            raise KeyboardInterrupt from err  # Ray Train's abort ends in SystemExit or a dead actor's error
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, before)  # Ray Train leaves its handler, bound to a controller now gone
    if signals_noted() > noted:
        raise KeyboardInterrupt
    return result


def _start_autoscaling_coordinator(timeout_s: float = 120.0) -> None:
    """Start Ray's autoscaling coordinator actor, and wait until it is up, before Ray Train asks it.

    Ray Train 2.x's controller asks that actor for the workers' resources with a 5 s
    timeout (`AUTOSCALING_REQUESTS_GET_TIMEOUT_S` in `ray.train.v2`), and its first ask
    also starts the actor, a new Python process: on a small, busy machine that takes
    longer, and the controller prints the timeout's traceback (harmless: it asks again,
    and training goes on). Started here, the first ask finds the actor running. The actor
    is Ray's own (named, detached, 0 CPUs), the one the controller would start; where a
    Ray version has none, nothing is done."""
    import ray

    try:
        from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
            get_or_create_autoscaling_coordinator,
        )
    except ImportError:
        return
    with contextlib.suppress(ray.exceptions.GetTimeoutError):  # slower still: Ray Train asks again every 20 s
        ray.get(get_or_create_autoscaling_coordinator().__ray_ready__.remote(), timeout=timeout_s)


ABORT_WAIT_S = 10.0  # how long Ctrl-C waits for Ray Train's controller to abort the run before the driver ends


def _noting_ctrl_c(trainer_cls: type) -> type:
    """`trainer_cls` whose Ctrl-C handler notes the signal before Ray Train's own takes it.

    During `fit` Ray Train 2.x (`DataParallelTrainer._register_sigint_handler`) answers
    Ctrl-C by aborting the run: its controller actor exits, and the driver ends in
    `SystemExit` or `RayActorError`, which read as a failure (exit 1, no message).
    Here Ctrl-C is noted (`workflows.errors.note_signal`), the controller asked to abort as
    Ray Train's handler asks it, for at most `ABORT_WAIT_S` seconds (a controller waiting
    for resources answers none: Ray Train's handler then waited for ever, and took a third
    Ctrl-C), and KeyboardInterrupt raised, so that the command ends as any Ctrl-C does: its
    MLflow run FAILED, `stopped by Ctrl-C`, exit 130; the controller and its workers, the
    driver's actors, end with its Ray. Where Ray Train registers no handler (a thread other
    than the main one, or another version of it), Ctrl-C reaches the driver as
    KeyboardInterrupt anyway."""

    class NotingCtrlC(trainer_cls):
        def _register_sigint_handler(self, controller: Any) -> None:
            signal.signal(signal.SIGINT, ctrl_c_handler(controller))

    NotingCtrlC.__name__ = NotingCtrlC.__qualname__ = trainer_cls.__name__
    return NotingCtrlC


def ctrl_c_handler(controller: Any, get: Callable[..., Any] | None = None) -> Callable[[int, Any], None]:
    """The SIGINT handler of a Ray Train run whose `controller` is an actor handle: it notes
    the signal (`workflows.errors.note_signal`), asks the controller to abort, as Ray Train's
    own handler does, waiting at most `ABORT_WAIT_S` seconds (`get`: `ray.get`), and raises
    KeyboardInterrupt. A controller waiting for its workers' resources (a cluster's
    autoscaler) answers no abort: one Ctrl-C was ignored for minutes, and three ended it
    (the change breaker's find). A second Ctrl-C raises at once, asking nothing again."""
    import ray

    get = get or ray.get
    asked = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal asked
        note_signal(signum)
        if not asked:
            asked = True
            with contextlib.suppress(ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
                get(controller.abort.remote(), timeout=ABORT_WAIT_S)
        raise KeyboardInterrupt

    return handler


def require_storage(location: str | None) -> None:
    """Check `--storage` for writing before a training job starts its MLflow run or Ray
    (each refused try left a FAILED run, after Ray's start): ValueError for a file there
    or a scheme no filesystem reads, StorageError for a missing bucket, an unreachable
    endpoint or no permission (`sessions.storage.check_writable_dir`), and ValueError for
    an empty or blank one (it was taken as the current directory). None: Ray's default,
    ~/ray_results."""
    from sessions import storage

    if location is None:
        return
    if not location.strip():
        raise ValueError(f"--storage {location!r}: empty; give a directory or a URI, or leave it out for "
                         "Ray's default (~/ray_results)")  # fmt: skip
    storage.check_writable_dir(location, "--storage")


def checkpoint_storage(location: str | None) -> tuple[str | None, Any]:
    """Ray Train's `storage_path` and `storage_filesystem` for `--storage` (a local path or
    any URI `sessions.storage` resolves; None: Ray's default, ~/ray_results).

    On a cluster of more than one node every worker writes its checkpoints there and the
    driver reads the best one back, so the storage must be a URI all of them reach:
    ValueError at the start otherwise. (That the location can be written a job checks
    before its run and its Ray start, `require_storage`, and on several nodes that every
    node can write it, `training_ray`.)
    """
    import ray

    from sessions import storage

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    if nodes > 1 and (location is None or storage.is_local(location)):
        raise ValueError(
            f"--storage {location or '(not set)'}: this Ray cluster has {nodes} nodes; checkpoints need storage "
            "every node reaches: an object store URI such as s3://BUCKET/ray-results"
        )
    if location is None:
        return None, None
    if storage.is_local(location):
        return storage.resolve(location)[1], None
    fs, path = storage.resolve(location)
    return path, fs


@dataclass(frozen=True)
class Trained:
    """The best checkpoint of a finished run, copied to a local directory."""

    model: Path  # what `TrainTask.save` wrote
    state: dict  # the loop state saved with it (best_step, ...)
    last_step: int  # the run's last step (later than the best one after early stopping's patience)
    where: str  # the checkpoint in Ray Train's storage
    stopped: str  # why the run ended there (`stop_reason`)


@dataclass(frozen=True)
class TrainOutcome:
    """What a `train` job hands back once its model is logged (and perhaps registered)."""

    run_id: str  # the MLflow run
    model_uri: str  # runs:/<run_id>/model (a lookup table: runs:/<run_id>/table)
    registered: str | None  # models:/<name>/<version>; None when not registered
    champion: Promotion  # whether the registered version took the `champion` alias, and why not
    metrics: dict  # the final metrics, as logged at the run's last step
    checkpoint: str | None  # the best checkpoint in Ray Train's storage (`Trained.where`); None: no Ray Train
    figures: list[str]  # file names of the figures logged to the run
    stopped: str | None = None  # why training ended (`stop_reason`); None: no training loop
    notes: tuple[str, ...] = ()  # what the metrics mean where the summary's rounding would hide it; how data was read


@contextmanager
def training_ray(address: str | None, storage: str | None) -> Iterator[None]:
    """Ray for a training job (a local runtime, or the cluster at `address`), entered
    before its MLflow run: the MLflow store is checked first (`store.check_store`: an
    unreachable one is named before Ray's start, tens of seconds on a cluster), and what
    only the cluster can tell is refused before a run exists: on several nodes, `--storage`
    that is an object store URI (`checkpoint_storage`; a cluster user's job had left a
    FAILED run for that settings error) and that every node can write
    (`nodes.require_every_node_reaches`: a node without the store's credentials failed the
    job at its first checkpoint, with a worker's traceback and a FAILED run). `train_best`
    runs inside it. ValueError as `check_store` and `checkpoint_storage`; OSError as
    `runtime.ray_runtime`, and StorageError (an OSError) naming a node that cannot write
    `--storage`."""
    from workflows.distributed.nodes import require_every_node_reaches
    from workflows.distributed.runtime import ray_runtime
    from workflows.tracking.store import check_store

    check_store()
    with ray_runtime(address):
        checkpoint_storage(storage)
        require_every_node_reaches(storage, what="--storage")
        yield


@contextmanager
def train_best(task: TrainTask, run_id: str, name: str, storage: str | None) -> Iterator[Trained]:
    """Fit `task` on the Ray of `training_ray`, inside it, and yield its best checkpoint by
    `task.monitor`, in a temporary directory removed afterwards. Raises as `fit`,
    TrainingDiverged when the loss stopped being finite (the workers stop there: a model
    of NaN points was registered, scored by metrics of NaN distances), and RuntimeError
    when training reported no checkpoint."""
    from mlflow.tracking import MlflowClient
    from pyarrow import fs

    from sessions.storage import is_local, scheme
    from workflows.distributed.runtime import node_resources

    result = fit(task, run_id, name, storage, node_resources())
    if diverged := MlflowClient().get_run(run_id).data.tags.get(DIVERGED):
        step, _, why = diverged.partition(" ")
        raise TrainingDiverged(f"training diverged at step {step}: {why}, and no model is kept; lower the learning "
                               "rates (the settings ending in lr)")  # fmt: skip
    best = result.get_best_checkpoint(metric=task.monitor, mode="max")
    if best is None:
        raise RuntimeError("training reported no checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "checkpoint"
        fs.copy_files(best.path, str(local), source_filesystem=best.filesystem)
        state = json.loads((local / "state.json").read_text())
        last = int((result.metrics or {}).get("step", state["step"]))
        log_median_throughput(run_id, task.unit, last)
        where = best.path if storage is None or is_local(storage) else f"{scheme(storage)}://{best.path}"
        yield Trained(local / "model", state, last, where, stop_reason(task, last, (result.metrics or {})))


def log_median_throughput(run_id: str, unit: str, step: int) -> None:
    """Log the median over a run's steps of its per-step throughput (`<unit>_per_s`, in
    examples a second, rank 0's clock) as `<unit>_per_s_median`, at `step`: a run's own
    figure for `compare`, where the per-step metric's latest value is one step's (the
    first step's warm-up and the steps after an evaluation vary most). Nothing when
    no step was logged."""
    import statistics

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    history = client.get_metric_history(run_id, f"{unit}_per_s")
    if history:
        client.log_metric(run_id, f"{unit}_per_s_median", statistics.median(m.value for m in history), step=step)


def stop_reason(task: TrainTask, last_step: int, last_metrics: Mapping[str, Any]) -> str:
    """Why a run ended at `last_step`, in the words of its settings: early stopping
    (`stopped_early` in the metrics its last evaluation reported), --max-steps, or the
    end of --epochs (which a --max-steps larger than the epochs' steps never reaches)."""
    cfg = task.cfg
    if last_metrics.get("stopped_early"):
        return f"early stopping: {cfg.patience} evaluations without a better {task.monitor}"
    if cfg.max_steps and last_step >= cfg.max_steps:
        return f"--max-steps {cfg.max_steps}"
    fewer = f", fewer than --max-steps {cfg.max_steps}" if cfg.max_steps else ""
    return f"the end of --epochs {cfg.epochs}: {last_step} steps{fewer}"
