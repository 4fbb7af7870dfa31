"""Fine-tuning the session model with Ray Train (DDP), tracked in MLflow.

The driver (`train_session`) turns mined pairs into training examples
(`sessions.pairs.triplets`) and validation pairs, opens an MLflow run, and starts a
`TorchTrainer`. Every worker (`_train_loop`) sees the same seeded order of examples
each epoch and takes its own slice of every global batch (what `DistributedSampler`
does); DDP averages the gradients (gloo on CPU, nccl on GPU, mixed precision on GPU).
Every `eval_every` steps the workers score the validation pairs together (ROC AUC),
rank 0 saves a checkpoint, and training stops early after `patience` evaluations
without a better AUC. A worker that dies is replaced (`FailureConfig`) and all
workers resume from the last checkpoint, in the same MLflow run. Only rank 0 logs.

Afterwards the driver takes the checkpoint of best validation AUC, fits the
calibration on the validation pairs, logs a ROC plot and the pyfunc model, registers
it as `session-model`, and moves the `champion` alias to it when its validation AUC
is the best of the registered versions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sessions.io import read_table
from sessions.pairs import triplets

EXPERIMENT = "session-model"


@dataclass(frozen=True)
class SessionTrainConfig:
    """What `sessionflow train session` trains, and how."""

    model: str = "minilm-local"  # encoder name: minilm-local, tiny, a Hub id or a directory
    epochs: int = 1
    max_steps: int = 0  # stop after this many steps (0: the epochs decide)
    batch_size: int = 64  # examples per worker and step; the global batch is workers x this
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_share: float = 0.1
    temperature: float = 0.05
    max_length: int = 32
    eval_every: int = 100  # steps between validations, each one a checkpoint
    patience: int = 3  # validations without a better AUC before stopping early
    max_val_pairs: int = 4000
    max_train_examples: int = 0  # 0: all
    workers: int = 1
    gpu: bool = False
    amp: bool = True  # mixed precision (bf16, else fp16) on GPU
    max_failures: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "patience", "workers", "max_val_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.temperature <= 0 or self.lr <= 0:
            raise ValueError("temperature and lr must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    model_uri: str  # runs:/<run_id>/model
    registered: str | None  # models:/session-model/<version>
    champion: bool
    metrics: dict
    checkpoint: str


def training_data(pairs_path: Path, cfg: SessionTrainConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training examples from the train split, validation pairs) of a `mine` output."""
    source = pairs_path / "pairs.parquet" if (pairs_path / "pairs.parquet").exists() else pairs_path
    if not source.exists():
        raise FileNotFoundError(f"{pairs_path}: no pairs here; run `sessionflow mine` first")
    pairs = read_table(source)
    train = triplets(pairs.filter(pl.col("split") == "train"), seed=cfg.seed)
    if cfg.max_train_examples:
        train = train.head(cfg.max_train_examples)
    val = pairs.filter(pl.col("split") == "val").select("query_a", "query_b", "label")
    if val.height > cfg.max_val_pairs:
        val = val.sample(cfg.max_val_pairs, seed=cfg.seed, shuffle=True)
    needed = cfg.workers * cfg.batch_size
    if train.height < needed:
        raise ValueError(f"{train.height} training examples: fewer than one global batch ({needed})")
    if val["label"].n_unique() < 2:
        raise ValueError("the val split needs positive and negative pairs")
    return train, val


# ---- on every worker ----
@dataclass
class LoopState:
    step: int = 0
    best_auc: float = -math.inf
    best_step: int = 0
    since_best: int = 0


def _train_loop(config: dict) -> None:
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist
    from transformers import get_linear_schedule_with_warmup

    from models.encoder import load_encoder
    from models.session import triplet_loss

    cfg = SessionTrainConfig(**config["cfg"])
    ctx = ray.train.get_context()
    rank, size = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(config["threads"])
    torch.manual_seed(cfg.seed)
    device = ray.train.torch.get_device()

    train = pl.from_arrow(ray.get(config["train"]))
    val = pl.from_arrow(ray.get(config["val"]))
    assert isinstance(train, pl.DataFrame) and isinstance(val, pl.DataFrame)
    per_step = size * cfg.batch_size
    steps_per_epoch = train.height // per_step
    total = min(cfg.max_steps or steps_per_epoch * cfg.epochs, steps_per_epoch * cfg.epochs)

    state, resume_dir = LoopState(), None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        resume_dir = Path(tempfile.mkdtemp(prefix="session-resume-"))
        checkpoint.to_directory(str(resume_dir))
        state = LoopState(**json.loads((resume_dir / "state.json").read_text()))
    encoder = load_encoder(
        str(resume_dir / "encoder") if resume_dir else cfg.model, max_length=cfg.max_length, seed=cfg.seed
    )
    model = ray.train.torch.prepare_model(encoder)  # DDP when there are several workers
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_share * total), total)
    amp_dtype = None
    if device.type == "cuda" and cfg.amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if resume_dir:
        saved = torch.load(resume_dir / "optimizer.pt", map_location=device, weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        scaler.load_state_dict(saved["scaler"])

    log = _RankZeroLog(config["tracking_uri"], config["run_id"]) if rank == 0 else None
    if log and state.step:
        log.param_once("resumed_from_step", state.step)
    ids_columns = ["anchor_id", "positive_id", "negative_id"]
    order, order_epoch = None, -1
    losses: list[float] = []
    tick = time.perf_counter()
    model.train()
    for step in range(state.step, total):
        epoch, i = divmod(step, steps_per_epoch)
        if epoch != order_epoch:  # the same permutation on every worker
            order, order_epoch = np.random.default_rng([cfg.seed, epoch]).permutation(train.height), epoch
        assert order is not None
        rows = order[i * per_step : (i + 1) * per_step][rank::size]
        batch = train[rows]
        ids = torch.tensor(batch.select(ids_columns).to_numpy(), device=device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = triplet_loss(
                model, encoder, batch["anchor"].to_list(), batch["positive"].to_list(), batch["negative"].to_list(),
                ids, cfg.temperature,
            )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        schedule.step()

        mean_loss = loss.detach().float()
        if size > 1:
            dist.all_reduce(mean_loss)
            mean_loss /= size
        losses.append(float(mean_loss))
        now = time.perf_counter()
        if log:
            log.metrics(step + 1, {"loss": losses[-1], "pairs_per_s": per_step / (now - tick), "epoch": epoch})
        tick = now

        done = step + 1 == total
        if (step + 1) % cfg.eval_every and not done:
            continue
        auc = _validate(encoder, val, rank, size)
        state.step = step + 1
        if auc > state.best_auc:
            state.best_auc, state.best_step, state.since_best = auc, step + 1, 0
        else:
            state.since_best += 1
        stop = state.since_best >= cfg.patience
        metrics = {
            "step": step + 1, "epoch": epoch, "loss": float(np.mean(losses)), "val_auc": auc,
            "best_val_auc": state.best_auc, "best_step": state.best_step, "stopped_early": stop and not done,
        }  # fmt: skip
        losses.clear()
        if log:
            log.metrics(step + 1, {"val_auc": auc, "best_val_auc": state.best_auc}, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                encoder.save(Path(tmp) / "encoder")
                saved = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                         "scaler": scaler.state_dict()}  # fmt: skip
                torch.save(saved, Path(tmp) / "optimizer.pt")
                (Path(tmp) / "state.json").write_text(json.dumps(dataclasses.asdict(state)))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
            else:
                ray.train.report(metrics)
        if stop:
            break
        tick = time.perf_counter()


def _validate(encoder, val: pl.DataFrame, rank: int, size: int) -> float:
    """ROC AUC of the dot product on the validation pairs, each worker scoring a share."""
    import torch.distributed as dist

    from models.calibration import pair_metrics
    from models.session import pair_scores

    mine = val[rank::size]
    scores = pair_scores(encoder, mine["query_a"].to_list(), mine["query_b"].to_list())
    if size == 1:
        return pair_metrics(scores, val["label"].to_numpy()).auc
    shares: list = [None] * size
    dist.all_gather_object(shares, scores)
    merged = np.empty(val.height)
    for r, s in enumerate(shares):
        merged[r::size] = s
    return pair_metrics(merged, val["label"].to_numpy()).auc


class _RankZeroLog:
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

    def param_once(self, key: str, value) -> None:
        self.client.set_tag(self.run_id, key, str(value))


# ---- the driver ----
def train_session(
    pairs_path: Path,
    cfg: SessionTrainConfig,
    *,
    experiment: str = EXPERIMENT,
    register: bool = True,
    storage: str | None = None,
    address: str | None = None,
    run_name: str | None = None,
) -> TrainOutcome:
    """Train, calibrate, log and (optionally) register a session model; see the module docstring."""
    import mlflow

    from workflows.engine import cluster_cpus, ray_runtime
    from workflows.tracking import use_store

    train, val = training_data(pairs_path, cfg)
    client = use_store()
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    run = client.create_run(experiment_id, run_name=run_name, tags={"sessionflow.job": "train session"})
    run_id = run.info.run_id
    try:
        params = {**cfg.to_dict(), "pairs": str(pairs_path), "train_examples": train.height, "val_pairs": val.height}
        for key, value in params.items():
            client.log_param(run_id, key, value)
        with ray_runtime(address):
            result = _fit(train, val, cfg, run_id, storage, cluster_cpus())
        best = result.get_best_checkpoint(metric="val_auc", mode="max")
        if best is None:
            raise RuntimeError("training reported no checkpoint")
        with mlflow.start_run(run_id=run_id):
            outcome = _finish(best.path, best.filesystem, val, cfg, run_id, register, result.metrics or {})
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return outcome


def _fit(train: pl.DataFrame, val: pl.DataFrame, cfg: SessionTrainConfig, run_id: str, storage, cpus: int):
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from workflows.tracking import tracking_uri

    threads = max(1, cpus // cfg.workers) if not cfg.gpu else 2
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "train": ray.put(train.to_arrow()),
            "val": ray.put(val.to_arrow()),
            "threads": threads,
            "tracking_uri": tracking_uri(),
            "run_id": run_id,
        },
        scaling_config=ScalingConfig(
            num_workers=cfg.workers, use_gpu=cfg.gpu, resources_per_worker={"CPU": 1 if cfg.gpu else threads}
        ),
        run_config=RunConfig(
            name=f"session-model-{run_id}",
            storage_path=storage,
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute="val_auc", checkpoint_score_order="max"
            ),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
        ),
    )
    return trainer.fit()


def _finish(checkpoint_path: str, filesystem, val: pl.DataFrame, cfg, run_id: str, register: bool, last: dict):
    """Calibrate the best checkpoint, log figures and the model, register it."""
    import mlflow
    from pyarrow import fs

    from models.calibration import Calibration, pair_metrics
    from models.encoder import load_encoder
    from models.session import pair_scores
    from workflows.figures import roc_figure
    from workflows.session_model import NAME, log_session_model
    from workflows.tracking import promote_if_best, use_store

    client = use_store()
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "checkpoint"
        fs.copy_files(checkpoint_path, str(local), source_filesystem=filesystem)
        state = json.loads((local / "state.json").read_text())
        encoder = load_encoder(str(local / "encoder"))
        labels = val["label"].to_numpy()
        scores = pair_scores(encoder, val["query_a"].to_list(), val["query_b"].to_list())
        calibration = Calibration.fit(scores, labels)
        m = pair_metrics(calibration(scores), labels)
        metrics = {
            "val_auc": m.auc, "val_accuracy": m.accuracy, "best_step": state["best_step"],
            "steps": int(last.get("step", state["step"])), "calibration_slope": calibration.slope,
            "calibration_intercept": calibration.intercept,
        }  # fmt: skip
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(
            str(roc_figure(labels, {"session model": scores}, "validation pairs", Path(tmp) / "val_roc.png"))
        )
        mlflow.log_dict(cfg.to_dict(), "config.json")
        model_uri = log_session_model(local / "encoder", calibration, cfg.model, Path(tmp) / "model")
    registered, champion = None, False
    if register:
        version = mlflow.register_model(model_uri, NAME).version
        registered = f"models:/{NAME}/{version}"
        champion = promote_if_best(client, NAME, str(version), "val_auc")
    return TrainOutcome(run_id, f"runs:/{run_id}/model", registered, champion, metrics, checkpoint_path)
