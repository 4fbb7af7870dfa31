"""`sessionflow evaluate hierarchy`: a trained hierarchy model's metrics, by URI or run id.

A model is found by `models:/hierarchy-model@champion`, `models:/NAME/VERSION`,
`runs:/RUN_ID[/model]` or a bare run id; its run's `config.json` tells which data,
held-out split and seed it was trained with, so link prediction scores the same
held-out pairs (unless told otherwise). On HierarCaps the pretrained encoder's
numbers come alongside (`pretrained_cosine_*`, `kendall_tau_pretrained_norm`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from workflows.jobs.train_hierarchy import HierarchyTrainConfig, evaluate_with_baselines, load_data, load_model


def run_of(uri: str) -> str:
    """The MLflow run that logged the model at `uri` (or `uri` itself, a run id)."""
    from workflows.tracking.store import use_store

    client = use_store()
    if uri.startswith("models:/m-"):  # a logged model (MLflow 3)
        return mlflow.get_logged_model(uri.removeprefix("models:/")).source_run_id
    if uri.startswith("models:/"):
        name, _, ref = uri.removeprefix("models:/").partition("@")
        if ref:
            return client.get_model_version_by_alias(name, ref).run_id
        name, _, version = uri.removeprefix("models:/").rpartition("/")
        return client.get_model_version(name, version).run_id
    return uri.removeprefix("runs:/").split("/")[0]


def evaluate_hierarchy(uri: str, **overrides) -> tuple[dict[str, float], HierarchyTrainConfig]:
    """Metrics of the model at `uri` on its data (or `data=`, `holdout=`, ... in `overrides`)."""
    run_id = run_of(uri)
    trained = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    cfg = HierarchyTrainConfig(**{**trained, **{k: v for k, v in overrides.items() if v is not None}})
    data = load_data(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.lookup:
            local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/table", dst_path=tmp))
            model = load_model(local, cfg, data.split.full.n_nodes)
        else:
            from workflows.tracking.hierarchy_model import load

            model = load(uri if uri.startswith("models:/") else f"runs:/{run_id}/model")
    return evaluate_with_baselines(model, data, cfg), cfg
