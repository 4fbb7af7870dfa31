"""The session model's part of the shared Ray Train loop (`workflows.training.loop`).

`SessionTask`: the bi-encoder (`models.encoder.TextEncoder`) trained
with InfoNCE on (anchor, positive, hard negative) batches (`models.session.info_nce_loss`:
in-batch negatives gathered from every DDP worker, duplicates masked), AdamW with a
linear warm-up and decay, validated by the ROC AUC of the dot product on validation
pairs (each worker scores a share). The driver is `workflows.jobs.train_session`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from workflows.training.loop import ModelNotFinite, TrainTask

if TYPE_CHECKING:
    import torch

    from workflows.jobs.train_session import SessionTrainConfig


class SessionTask(TrainTask):
    """The session model's part of the shared loop (`workflows.training.loop`)."""

    unit = "pairs"
    monitor = "val_auc"

    def __init__(self, cfg: SessionTrainConfig, train: pl.DataFrame, val: pl.DataFrame) -> None:
        self.cfg, self.rows = cfg, train.height
        self.tables: tuple[pl.DataFrame, pl.DataFrame] | None = (train, val)  # until `prepare`

    def prepare(self) -> None:
        """Training examples and validation pairs into Ray's object store (the task ships without them)."""
        import ray

        if self.tables is not None:
            train, val = self.tables
            self.train_ref, self.val_ref = ray.put(train.to_arrow()), ray.put(val.to_arrow())
            self.tables = None

    @property
    def examples(self) -> int:
        return self.rows

    def build(self, resume: Path | None, device: Any, rank: int) -> Any:
        import ray

        from models.encoder import load_encoder

        self.train, self.val = pl.from_arrow(ray.get(self.train_ref)), pl.from_arrow(ray.get(self.val_ref))
        self.ids = torch_ids(self.train)
        source = str(resume) if resume else self.cfg.model
        return load_encoder(source, max_length=self.cfg.max_length, seed=self.cfg.seed).to(device)

    def optimizer(self, model: Any, total_steps: int) -> tuple[Any, Any]:
        """AdamW (Loshchilov & Hutter 2019) at `lr` with `weight_decay`; the rate rises linearly
        from 0 over the first `warmup_share` of the steps, then falls linearly to 0 at the last."""
        import torch
        from transformers import get_linear_schedule_with_warmup

        optimizer = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        warmup = int(self.cfg.warmup_share * total_steps)
        return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)

    def loss(self, model: Any, module: Any, rows: np.ndarray, step: int, device: Any) -> Any:
        """InfoNCE (van den Oord et al. 2018) of the examples `rows` against the global batch's
        positives and hard negatives (`models.session.info_nce_loss`: the multiple-negatives
        ranking loss of Henderson et al. 2017), at `temperature`; a scalar () float32 tensor."""
        from models.session import info_nce_loss

        batch = self.train[rows]
        return info_nce_loss(model, module, batch["anchor"].to_list(), batch["positive"].to_list(),
                            batch["negative"].to_list(), self.ids[rows].to(device), self.cfg.temperature)  # fmt: skip

    def evaluate(self, module: Any, rank: int, size: int) -> dict[str, float]:
        """ROC AUC of the dot product on the validation pairs, each worker scoring a share.
        ModelNotFinite where a score is NaN or infinite (every worker holds all the scores)."""
        from models.calibration import pair_metrics
        from models.session import pair_scores
        from models.shards import merge_shards

        mine = self.val[rank::size]
        scores = merge_shards(pair_scores(module, mine["query_a"].to_list(), mine["query_b"].to_list()), rank, size,
                              self.val.height)  # fmt: skip
        # finite parameters, NaN outputs (--lr 1e10, the breaker's find): sklearn refused them in a worker's
        # traceback, retried by Ray; now the loop stops as diverged, as for a NaN loss
        if not np.isfinite(scores).all():
            bad, n = np.count_nonzero(~np.isfinite(scores)), len(scores)
            raise ModelNotFinite(f"its scores of {bad:,} of its {n:,} validation pairs became NaN or infinite")
        return {"val_auc": pair_metrics(scores, self.val["label"].to_numpy()).auc}

    def save(self, module: Any, directory: Path) -> None:
        module.save(directory)


def torch_ids(train: pl.DataFrame) -> torch.Tensor:
    """The text ids (n, 3) int64 of (anchor, positive, negative), which mark duplicates in a batch."""
    import torch

    return torch.from_numpy(train.select("anchor_id", "positive_id", "negative_id").to_numpy().astype(np.int64))
