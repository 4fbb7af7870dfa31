"""The whole system on one log: `sessionflow demo`.

A synthetic AOL-style log with ground truth (or the user's own log) is ingested,
segmented into sessions and missions, scored against its truth next to time-gap
baselines, mined for pairs; the session model is fine-tuned on the pairs and the
hierarchy model on the WordNet mammals (2-d, to be drawn), both are registered in
MLflow and score the log. Every step is the function its own command runs, on one
local Ray (or the cluster of `address`). The figures go to OUTPUT/figures and to
MLflow: the data's (session statistics, segmentation bars) to a run of the `demo`
experiment, which also holds the summary and the ids of the two training runs, and
the models' (ROC curves, mission PCA, Poincaré disk, specificity by depth) to their
training runs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from sessions.io import read_table, scan_table, write_json

EXPERIMENT = "demo"
SUMMARY_FILE = "summary.json"
DATA_FIGURES = ("session_statistics.png", "segmentation.png")  # logged to the demo run; the models' to theirs


@dataclass(frozen=True)
class DemoConfig:
    """How big the demo's log is and how long its models train (defaults: ~8 min on 2 cores)."""

    users: int = 600  # of the synthetic log
    rows: int = 30_000
    seed: int = 0
    session_model: str = "minilm-local"
    session_steps: int = 100
    session_batch_size: int = 32  # per worker
    session_workers: int = 2
    val_pairs: int = 1_000
    hierarchy_model: str = "minilm-local"
    hierarchy_steps: int = 300
    hierarchy_batch_size: int = 32
    hierarchy_negatives: int = 32
    max_length: int = 16  # tokens per query or node text

    def __post_init__(self) -> None:
        for name in ("users", "rows", "session_steps", "hierarchy_steps", "session_workers", "val_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DemoSummary:
    """What the demo found, trained and wrote; OUTPUT/summary.json holds the same."""

    log: str
    format: str
    numbers: dict[str, dict] = field(default_factory=dict)  # step -> its key figures
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time
    figures: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)  # registered name -> models:/NAME/VERSION
    runs: dict[str, str] = field(default_factory=dict)  # MLflow runs: demo, session-model, hierarchy-model
    outputs: dict[str, str] = field(default_factory=dict)
    mlflow_ui: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def run_demo(
    output: Path,
    cfg: DemoConfig,
    data: Path | None = None,
    fmt: str | None = None,
    *,
    address: str | None = None,
    on_step: Callable[[str], None] = lambda step: None,
) -> DemoSummary:
    """Run every step on `data` (a log of format `fmt`), or on a synthetic log; see the module."""
    from workflows.distributed.runtime import ray_runtime
    from workflows.tracking.store import tracking_uri, use_store

    if (data is None) != (fmt is None):
        raise ValueError("--data and --format go together (a log and its format), or neither (a synthetic log)")
    output.mkdir(parents=True, exist_ok=True)
    figures = output / "figures"
    shutil.rmtree(figures, ignore_errors=True)
    summary = DemoSummary(log=str(data or output / "synth-aol.tsv.gz"), format=fmt or "aol")
    start = time.perf_counter()

    @contextmanager
    def step(name: str) -> Iterator[None]:
        on_step(name)
        began = time.perf_counter()
        yield
        summary.seconds[name] = round(time.perf_counter() - began, 1)

    use_store()
    with ray_runtime(address):
        _quiet_ray_data_console()
        if data is None:
            with step("synth"):
                summary.numbers["synth"] = _synth(Path(summary.log), cfg)
        with step("ingest"):
            _ingest(Path(summary.log), summary.format, output / "events", summary)
        with step("segment"):
            _segment(output / "events", output / "sessions", summary, figures)
        with step("evaluate segmentation"):
            _evaluate(output / "events", summary, figures)
        with step("mine"):
            _mine(output / "sessions", output / "pairs", cfg, summary)
        with step("train session model"):
            _train_session(output / "pairs", cfg, output / "ray-results", summary, figures)
        with step("train hierarchy model"):
            _train_hierarchy(cfg, output / "ray-results", summary, figures)
        with step("score"):
            _score(output / "events", output / "scores", summary)
    summary.seconds["total"] = round(time.perf_counter() - start, 1)
    summary.figures = sorted(str(p) for p in figures.glob("*.png"))
    summary.outputs |= {"sessions": str(output / "sessions"), "pairs": str(output / "pairs"),
                        "summary": str(output / SUMMARY_FILE)}  # fmt: skip
    summary.mlflow_ui = f"mlflow ui --backend-store-uri {tracking_uri()} --workers 1"
    _log_run(summary, cfg, output, figures)
    return summary


# ---- the steps: each calls what its command calls ----
def _synth(path: Path, cfg: DemoConfig) -> dict:
    from synth import SynthConfig, Taxonomy, write_log

    s = write_log(SynthConfig(users=cfg.users, rows=cfg.rows, seed=cfg.seed), Taxonomy.wordnet(), path)
    return {"rows": s.rows, "users": s.users, "sessions": s.sessions, "missions": s.missions}


def _ingest(log: Path, fmt: str, out: Path, summary: DemoSummary) -> None:
    from workflows.distributed import data as ray_pipelines

    report = ray_pipelines.ingest([log], fmt, out)
    summary.numbers["ingest"] = {"rows_in": report.rows_in, "rows_ok": report.rows_ok,
                                 "rows_rejected": report.rows_rejected}  # fmt: skip


def _segment(events: Path, out: Path, summary: DemoSummary, figures: Path) -> None:
    from sessions.missions import MissionConfig
    from sessions.segment import SegmentConfig
    from workflows.distributed import data as ray_pipelines
    from workflows.figures import session_statistics

    report = ray_pipelines.segment([events], None, out, SegmentConfig(), MissionConfig())
    sessions = read_table(out / "sessions.parquet")
    lengths = sessions.group_by("session_id").len()["len"]
    summary.numbers["segment"] = {"rows": report.rows_out, "sessions": report.sessions, "missions": report.missions,
                                  "median_session_length": float(lengths.median()),
                                  "mean_session_length": round(float(lengths.mean()), 2)}  # fmt: skip
    title = f"{Path(summary.log).name}: sessions by the cascade"
    session_statistics(sessions, title, figures / "session_statistics.png")


def _evaluate(events_dir: Path, summary: DemoSummary, figures: Path) -> None:
    from sessions.metrics import GOLD_LEVELS
    from workflows.cli.segment import CLI_METHODS, configs
    from workflows.figures import segmentation_bars
    from workflows.jobs.evaluate_segmentation import evaluate_methods, has_gold

    labelled = pl.any_horizontal(pl.col(col).is_not_null() for col, _ in GOLD_LEVELS)
    # the users with a truth, whole (segmentation is per user): nothing more in memory
    events = scan_table(events_dir / "events.parquet").filter(labelled.any().over("user_id")).collect()
    if not has_gold(events):
        summary.numbers["evaluate segmentation"] = {"skipped": "the log has no gold sessions or missions"}
        return
    scores = evaluate_methods(events, {m: configs(None, m) for m in CLI_METHODS})
    title = f"{Path(summary.log).name}: {events.height:,} queries"
    segmentation_bars(scores, title, figures / "segmentation.png")
    headline = scores.filter(pl.col("system").is_in(CLI_METHODS) & (pl.col("level") == pl.col("gold")))
    summary.numbers["evaluate segmentation"] = {
        f"{row['system']} {row['level']} F1": round(row["f1"], 4) for row in headline.iter_rows(named=True)
    }


def _mine(sessions: Path, out: Path, cfg: DemoConfig, summary: DemoSummary) -> None:
    from sessions.pairs import MiningConfig
    from workflows.jobs.mine import mine_job

    report = mine_job(sessions, out, MiningConfig(seed=cfg.seed))
    summary.numbers["mine"] = {"pairs": report["pairs"], "positives": report["positives"],
                               "users_by_split": report["users_by_split"]}  # fmt: skip


def _train_session(pairs: Path, cfg: DemoConfig, storage: Path, summary: DemoSummary, figures: Path) -> None:
    from workflows.jobs.train_session import SessionTrainConfig, train_session

    train_cfg = SessionTrainConfig(
        model=cfg.session_model, max_steps=cfg.session_steps, batch_size=cfg.session_batch_size,
        workers=cfg.session_workers, eval_every=max(1, cfg.session_steps // 2), max_val_pairs=cfg.val_pairs,
        max_length=cfg.max_length, seed=cfg.seed,
    )  # fmt: skip
    outcome = train_session(pairs, train_cfg, storage=str(storage.resolve()), run_name="demo")
    keys = ("val_auc", "val_auc_not_fine_tuned", "val_auc_jaccard", "mission_silhouette_not_fine_tuned",
            "mission_silhouette", "steps")  # fmt: skip
    summary.numbers["train session model"] = {k: _round(outcome.metrics[k]) for k in keys if k in outcome.metrics}
    summary.models["session-model"] = outcome.registered
    summary.runs["session-model"] = outcome.run_id
    _fetch_figures(outcome.run_id, outcome.figures, "session-model", figures)


def _train_hierarchy(cfg: DemoConfig, storage: Path, summary: DemoSummary, figures: Path) -> None:
    from workflows.jobs.train_hierarchy import HierarchyTrainConfig, train_hierarchy

    train_cfg = HierarchyTrainConfig(
        data="wordnet-mammals", model=cfg.hierarchy_model, dim=2, max_steps=cfg.hierarchy_steps,
        batch_size=cfg.hierarchy_batch_size, negatives=cfg.hierarchy_negatives,
        eval_every=max(1, cfg.hierarchy_steps // 2), max_length=cfg.max_length, seed=cfg.seed,
    )  # fmt: skip
    outcome = train_hierarchy(train_cfg, storage=str(storage.resolve()), run_name="demo")
    keys = ("map", "mean_rank", "spearman_norm_depth", "steps")
    summary.numbers["train hierarchy model"] = {k: _round(outcome.metrics[k]) for k in keys if k in outcome.metrics}
    summary.models["hierarchy-model"] = outcome.registered
    summary.runs["hierarchy-model"] = outcome.run_id
    _fetch_figures(outcome.run_id, outcome.figures, "hierarchy-model", figures)


def _score(events: Path, out: Path, summary: DemoSummary) -> None:
    from workflows.distributed.score_job import ScoreConfig, score

    cfg = ScoreConfig(session_model=summary.models["session-model"],
                      hierarchy_model=summary.models["hierarchy-model"])  # fmt: skip
    report = score([events], None, out, cfg)
    reformulations = (
        scan_table(out / "scores.parquet").select("reformulation").drop_nulls().group_by("reformulation").len()
        .sort("reformulation").collect()
    )  # fmt: skip
    summary.numbers["score"] = {
        "rows": report.rows_out, "distinct_texts": report.distinct_texts, "sessions": report.sessions,
        "missions": report.missions, "rows_per_second": round(report.rows_out / max(report.seconds, 1e-9), 1),
        "reformulations": dict(reformulations.iter_rows()),
    }  # fmt: skip
    summary.outputs["scores"] = str(out / "scores.parquet")


def _quiet_ray_data_console() -> None:
    """Ray Data's INFO lines off the terminal (the demo reports each step itself); its
    log file in the Ray session directory keeps them."""
    import ray.data  # noqa: F401  (configures the `ray.data` logger and its handlers)

    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):  # the console; the session file is not one
            handler.setLevel(logging.WARNING)


# ---- MLflow ----
def _fetch_figures(run_id: str, names: list[str], prefix: str, figures: Path) -> None:
    """The figures a training run logged, copied to OUTPUT/figures as `<prefix>_<name>`."""
    import mlflow

    figures.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            got = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=tmp)
            shutil.copy(got, figures / f"{prefix}_{name}")


def _log_run(summary: DemoSummary, cfg: DemoConfig, output: Path, figures: Path) -> None:
    """The demo's run: its configuration, the numbers as metrics (`step.key`), the
    training runs and models as tags, the data's figures and the summary (also
    written to OUTPUT/summary.json)."""
    import mlflow

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="demo", tags={"sessionflow.job": "demo"}) as run:
        summary.runs[EXPERIMENT] = run.info.run_id
        mlflow.log_params({**cfg.to_dict(), "data": summary.log, "format": summary.format})
        metrics = {
            f"{step}.{key}".replace(" ", "_"): value
            for step, numbers in summary.numbers.items()
            for key, value in numbers.items()
            if isinstance(value, int | float)
        }
        mlflow.log_metrics(metrics | {f"seconds.{k}".replace(" ", "_"): v for k, v in summary.seconds.items()})
        runs = {f"run.{name}": run_id for name, run_id in summary.runs.items() if name != EXPERIMENT}
        mlflow.set_tags(runs | {f"model.{name}": uri for name, uri in summary.models.items()})
        for name in DATA_FIGURES:
            if (figures / name).exists():
                mlflow.log_artifact(str(figures / name), "figures")
        write_json(summary.to_dict(), output / SUMMARY_FILE)
        mlflow.log_artifact(str(output / SUMMARY_FILE))


def _round(value):
    return round(value, 4) if isinstance(value, float) else value
