"""`sessionflow evaluate hierarchy`: a trained hierarchy model's metrics, by URI or run id.

A model is found by `models:/hierarchy-model@champion`, `models:/NAME/VERSION`,
`runs:/RUN_ID[/model]` or a bare run id; its run's `config.json` tells which data,
held-out split and seed it was trained with, so link prediction scores the same
held-out pairs (unless told otherwise). On HierarCaps the pretrained encoder's
numbers come alongside (`pretrained_cosine_*`, `kendall_tau_pretrained_norm`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from workflows.jobs.train_hierarchy import HierarchyTrainConfig
from workflows.training.hierarchy import evaluate_with_baselines, load_data, load_model


def evaluate_hierarchy(uri: str, **overrides) -> tuple[dict[str, float], HierarchyTrainConfig]:
    """Metrics of the model at `uri` on its data (or `data=`, `holdout=`, ... in `overrides`)."""
    import mlflow

    from workflows.tracking.store import run_of

    run_id = run_of(uri)
    trained = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    if trained.get("lr") == 0:  # runs logged before the models' own defaults recorded "the default" as 0
        trained["lr"] = None
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = HierarchyTrainConfig(**{**trained, **given}).resolved()
    data = load_data(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.lookup:
            local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/table", dst_path=tmp))
            model = load_model(local, cfg, data.split.full.n_nodes)
        else:
            from workflows.tracking.hierarchy_model import load

            model = load(uri if uri.startswith("models:/") else f"runs:/{run_id}/model")
    return evaluate_with_baselines(model, data, cfg), cfg


@dataclass(frozen=True)
class EvaluateHierarchyJob:
    """What `sessionflow evaluate hierarchy` evaluates, on what (by default the model's own data)."""

    model: str = field(default="models:/hierarchy-model@champion", metadata={
        "help": "models:/hierarchy-model@champion, models:/NAME/VERSION, runs:/RUN_ID or a run id"})  # fmt: skip
    data: str | None = field(default=None, metadata={
        "help": "wordnet-mammals, wordnet-nouns or hierarcaps:DIR (none: the model's)"})  # fmt: skip
    holdout: Literal["none", "edges", "nodes"] | None = field(default=None, metadata={
        "help": "held out for link prediction (none given: the model's)"})  # fmt: skip
    holdout_share: float | None = field(default=None, metadata={"help": "share held out (none: the model's)"})
    max_eval_nodes: int | None = field(default=None, metadata={
        "help": "rank the ancestors of at most this many nodes (none: the model's)"})  # fmt: skip


def run(job: EvaluateHierarchyJob) -> tuple[dict[str, float], HierarchyTrainConfig]:
    """`evaluate_hierarchy` with the job's settings: the metrics and the config they were computed with."""
    return evaluate_hierarchy(job.model, data=job.data, holdout=job.holdout, holdout_share=job.holdout_share,
                              max_eval_nodes=job.max_eval_nodes)  # fmt: skip
