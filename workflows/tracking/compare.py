"""`sessionflow compare`: the runs of an MLflow experiment side by side.

Each experiment's model is registered under the experiment's name (`session-model`,
`hierarchy-model`), so a run's row also says which version it registered and which
version holds `champion`. Parameters shown are those that differ between the runs
listed among the experiment's key ones (always `model` and `data`), metrics the
experiment's key ones; both can be chosen instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from workflows.tracking.store import CHAMPION, end_abandoned_runs

KEY_METRICS = {
    "session-model": ("val_auc", "val_accuracy", "best_step", "steps", "pairs_per_s_median"),
    "hierarchy-model": (
        "map",
        "mean_rank",
        "link_map",
        "spearman_norm_depth",
        "kendall_tau",
        "multi_hop_f1_rn",
        "multi_hop_f1_hn",
        "mixed_hop_f1_rn",
        "mixed_hop_f1_hn",
        "steps",
    ),
    "segmenter-model": ("cv_f1_mean", "cv_f1_sd", "cv_boundary_f1_mean", "cv_ari_mean", "cascade_cv_f1_mean"),
}
KEY_PARAMS = {
    "session-model": ("model", "pairs", "workers", "batch_size", "lr", "max_steps", "temperature", "seed"),
    "hierarchy-model": (
        "data",
        "model",
        "head",
        "hidden",
        "head_epochs",
        "names",
        "sibling_negatives",
        "manifold",
        "dim",
        "holdout",
        "ranking",
        "norm_loss",
        "margin",
        "lr",
        "max_steps",
        "seed",
    ),
    "segmenter-model": ("gt", "level", "classifier", "threshold", "folds", "seed"),
}
ALWAYS_PARAMS = ("model", "data", "gt")
MOST_METRICS = 8  # of an experiment without key metrics, the first this many (by name) are shown


@dataclass(frozen=True)
class Comparison:
    """The latest runs of an experiment side by side (`compare`): the params and metrics
    shown, one row per run, newest first, and the registered version that is champion."""

    experiment: str
    params: list[str]
    metrics: list[str]
    rows: list[dict]  # run_id, run_name, started, status, version, champion, params..., metrics...
    champion: str | None  # the version holding the alias, if any
    not_shown: int = 0  # metrics the runs logged that are not among `metrics`

    def to_dict(self) -> dict:
        """{experiment, champion, params, metrics, runs}: what `sessionflow compare --json` prints."""
        return {"experiment": self.experiment, "champion": self.champion, "params": self.params,
                "metrics": self.metrics, "runs": self.rows}  # fmt: skip


def compare(
    client: MlflowClient,
    experiment: str,
    max_runs: int = 20,
    metrics: list[str] | None = None,
    params: list[str] | None = None,
) -> Comparison:
    """The latest `max_runs` runs of `experiment`, newest first. ValueError in one line for
    an unknown experiment, and for `metrics` or `params` none of those runs logged."""
    metrics, params = (list(dict.fromkeys(names)) if names else names for names in (metrics, params))  # once each
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"no experiment {experiment!r} in {client.tracking_uri}; it has: {', '.join(names) or 'none'}")
    end_abandoned_runs(client, [found.experiment_id])  # a killed job's run is KILLED, not RUNNING for ever
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=max_runs)
    versions, champion = _versions(client, experiment)
    logged = sorted({m for r in runs for m in r.data.metrics})
    for kind, asked, have in (
        ("metrics", metrics, logged),
        ("params", params, {p for r in runs for p in r.data.params}),
    ):
        unknown = [name for name in asked or () if name not in have]
        if unknown:
            raise ValueError(f"--{kind} {','.join(unknown)}: no run of {experiment} logged it; they logged: "
                             f"{', '.join(sorted(have)[:12])}{' ...' if len(have) > 12 else ''}")  # fmt: skip
    params = params or _varying_params(runs, KEY_PARAMS.get(experiment))
    if metrics is None:
        metrics = [m for m in KEY_METRICS.get(experiment, ()) if m in logged] or logged[:MOST_METRICS]
    rows = []
    for run in runs:
        version = versions.get(run.info.run_id)
        rows.append(
            {
                "run_id": run.info.run_id, "run_name": run.info.run_name,
                "started": run.info.start_time, "status": run.info.status,
                "version": version, "champion": version is not None and version == champion,
                **{p: run.data.params.get(p) for p in params},
                **{m: run.data.metrics.get(m) for m in metrics},
            }
        )  # fmt: skip
    return Comparison(experiment, params, list(metrics), rows, champion, len(set(logged) - set(metrics)))


def _versions(client: MlflowClient, name: str) -> tuple[dict[str, str], str | None]:
    """Run id -> the version it registered under `name` (its latest, or the champion where
    it holds it: a run registered twice, its first version champion, showed its second
    and no run the champion's mark), and the champion's version."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return {}, None
    by_run = {v.run_id: str(v.version) for v in sorted(versions, key=lambda v: int(v.version)) if v.run_id}
    try:
        champion = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        champion = None
    by_run |= {v.run_id: champion for v in versions if v.run_id and str(v.version) == champion}
    return by_run, champion


def _varying_params(runs: list[Run], keys: tuple[str, ...] | None) -> list[str]:
    """`keys` (all, without) that differ between `runs`, and the ALWAYS_PARAMS they have."""
    present = {k for r in runs for k in r.data.params}
    candidates = [k for k in keys if k in present] if keys else sorted(present)
    return [k for k in candidates if k in ALWAYS_PARAMS or len({r.data.params.get(k) for r in runs}) > 1]
