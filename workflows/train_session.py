"""Fine-tuning the session model with Ray Train (DDP), tracked in MLflow.

The driver (`train_session`) turns mined pairs into training examples
(`sessions.pairs.triplets`) and validation pairs, opens an MLflow run, and runs the
shared Ray Train loop (`workflows.train_loop`: DDP, checkpoints, early stopping,
resumption after a worker failure, rank-0 logging) with the `SessionTask`: InfoNCE
on (anchor, positive, hard negative) batches, validation ROC AUC of the dot product.

Afterwards the driver takes the checkpoint of best validation AUC, fits the
calibration on the validation pairs, logs a ROC plot and the pyfunc model, registers
it as `session-model`, and moves the `champion` alias to it when its validation AUC
is the best of the registered versions.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sessions.io import read_table
from sessions.pairs import triplets
from workflows.train_loop import Trained, TrainTask, merge_shards, train_best

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


class SessionTask(TrainTask):
    """The session model's part of the shared loop (`workflows.train_loop`)."""

    unit = "pairs"
    monitor = "val_auc"

    def __init__(self, cfg: SessionTrainConfig, train: pl.DataFrame, val: pl.DataFrame) -> None:
        import ray

        self.cfg, self.rows = cfg, train.height
        self.train_ref, self.val_ref = ray.put(train.to_arrow()), ray.put(val.to_arrow())

    @property
    def examples(self) -> int:
        return self.rows

    def build(self, resume: Path | None, device):
        import ray

        from models.encoder import load_encoder

        self.train, self.val = pl.from_arrow(ray.get(self.train_ref)), pl.from_arrow(ray.get(self.val_ref))
        self.ids = torch_ids(self.train)
        source = str(resume) if resume else self.cfg.model
        return load_encoder(source, max_length=self.cfg.max_length, seed=self.cfg.seed).to(device)

    def optimizer(self, model, total_steps: int):
        import torch
        from transformers import get_linear_schedule_with_warmup

        optimizer = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        warmup = int(self.cfg.warmup_share * total_steps)
        return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)

    def loss(self, model, module, rows: np.ndarray, step: int, device):
        from models.session import triplet_loss

        batch = self.train[rows]
        return triplet_loss(model, module, batch["anchor"].to_list(), batch["positive"].to_list(),
                            batch["negative"].to_list(), self.ids[rows].to(device), self.cfg.temperature)  # fmt: skip

    def evaluate(self, module, rank: int, size: int) -> dict[str, float]:
        """ROC AUC of the dot product on the validation pairs, each worker scoring a share."""
        from models.calibration import pair_metrics
        from models.session import pair_scores

        mine = self.val[rank::size]
        scores = merge_shards(pair_scores(module, mine["query_a"].to_list(), mine["query_b"].to_list()), rank, size,
                              self.val.height)  # fmt: skip
        return {"val_auc": pair_metrics(scores, self.val["label"].to_numpy()).auc}

    def save(self, module, directory: Path) -> None:
        module.save(directory)


def torch_ids(train: pl.DataFrame):
    """The text ids of (anchor, positive, negative), which mark duplicates in a batch."""
    import torch

    return torch.from_numpy(train.select("anchor_id", "positive_id", "negative_id").to_numpy().astype(np.int64))


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
    from workflows.tracking import training_run

    train, val = training_data(pairs_path, cfg)
    params = {**cfg.to_dict(), "pairs": str(pairs_path), "train_examples": train.height, "val_pairs": val.height}
    with (
        training_run(experiment, "train session", params, run_name) as run_id,
        train_best(SessionTask(cfg, train, val), run_id, "session-model", storage, address) as trained,
    ):
        return _finish(trained, val, cfg, run_id, register)


def _finish(trained: Trained, val: pl.DataFrame, cfg, run_id: str, register: bool):
    """Calibrate the best checkpoint, log figures and the model, register it."""
    import mlflow

    from models.calibration import Calibration, pair_metrics
    from models.encoder import load_encoder
    from models.session import pair_scores
    from workflows.figures import roc_figure
    from workflows.session_model import NAME, log_session_model
    from workflows.tracking import register as register_model

    with tempfile.TemporaryDirectory() as tmp:
        encoder = load_encoder(str(trained.model))
        labels = val["label"].to_numpy()
        scores = pair_scores(encoder, val["query_a"].to_list(), val["query_b"].to_list())
        calibration = Calibration.fit(scores, labels)
        m = pair_metrics(calibration(scores), labels)
        metrics = {
            "val_auc": m.auc, "val_accuracy": m.accuracy, "best_step": trained.state["best_step"],
            "steps": trained.last_step, "calibration_slope": calibration.slope,
            "calibration_intercept": calibration.intercept,
        }  # fmt: skip
        # at the last step, after the loop's own values: the run shows the registered model's
        mlflow.log_metrics(metrics, step=trained.last_step)
        mlflow.log_artifact(
            str(roc_figure(labels, {"session model": scores}, "validation pairs", Path(tmp) / "val_roc.png"))
        )
        mlflow.log_dict(cfg.to_dict(), "config.json")
        model_uri = log_session_model(trained.model, calibration, cfg.model, Path(tmp) / "model")
    registered, champion = register_model(model_uri, NAME, "val_auc") if register else (None, False)
    return TrainOutcome(run_id, f"runs:/{run_id}/model", registered, champion, metrics, trained.where)
