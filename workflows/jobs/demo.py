"""The whole system on one log: `sessionflow demo`.

A synthetic AOL-style log with ground truth (or the user's own log) is ingested,
segmented into sessions and missions, scored against its truth next to time-gap
baselines, mined for pairs; the session model is fine-tuned on the pairs and the
hierarchy model on the WordNet mammals (10-d, drawn around its root), both are registered in
MLflow and score the log. Every step is the function its own command runs, with its
defaults: for a log this small the data steps in this process (`--engine auto`) and
training on a local Ray; every step on the cluster of `address`, when given. The
figures go to OUTPUT/figures and to MLflow: the data's (session statistics, segmentation bars) to a run of the `demo`
experiment, which also holds the summary and the ids of the two training runs, and
the models' (ROC curves, mission PCA, Poincaré disk, specificity by depth) to their
training runs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from sessions import storage
from sessions.formats.options import ReadOptions
from sessions.io import first_names, read_table, refuse_other_files, restore_killed, scan_table, write_json
from sessions.missions import MissionConfig
from sessions.pairs import MiningConfig
from sessions.segment import SegmentConfig
from synth import SynthConfig
from workflows.config import flags_between, flat, rename_flags, to_dict
from workflows.jobs import common
from workflows.jobs.mine import MineJob
from workflows.jobs.score import ScoreConfig, ScoreJob
from workflows.jobs.segment import LEXICAL_METHODS, SegmentJob
from workflows.jobs.train_hierarchy import HierarchyTrainConfig, TrainHierarchyJob
from workflows.jobs.train_session import SessionTrainConfig, TrainSessionJob
from workflows.training.loop import gpus_needed

EXPERIMENT = "demo"
SUMMARY_FILE = "summary.json"
SYNTH_LOG = "synth-aol.tsv.gz"
FIGURES_DIR = "figures"
# What the demo writes in its output directory, each step's output under its own name: anything else there is
# a user's, and the directory is refused (the demo replaces its summary and its figures whole)
DEMO_ENTRIES = (SYNTH_LOG, "events", "sessions", "pairs", "ray-results", "scores", FIGURES_DIR, SUMMARY_FILE)
# The steps' output directories and the table each writes there (`refuse_other_files` checks them first)
STEP_TABLES = {"events": "events.parquet", "sessions": "sessions.parquet", "pairs": "pairs.parquet",
               "scores": "scores.parquet"}  # fmt: skip
# The names of its figures: the data's (DATA_FIGURES) and those of its training runs (`_fetch_figures`)
DEMO_FIGURE = re.compile(r"(?:session_statistics|segmentation|(?:session|hierarchy)-model_\w+)\.png")
DATA_FIGURES = ("session_statistics.png", "segmentation.png")  # logged to the demo run; the models' to theirs


def _demo_session() -> SessionTrainConfig:
    return SessionTrainConfig(max_steps=100, batch_size=32, workers=2, eval_every=50, max_val_pairs=1_000,
                              max_length=16)  # fmt: skip


def _demo_hierarchy() -> HierarchyTrainConfig:
    # 10-d (the text model's default): MAP 0.920 after its head's fit and 300 steps (0.025 in 2-d, one stage);
    # the disk is drawn around the root
    return HierarchyTrainConfig(data="wordnet-mammals", max_steps=300, batch_size=32, negatives=32,
                                eval_every=150, max_length=16)  # fmt: skip


@dataclass(frozen=True)
class DemoConfig:
    """The whole demo: its log, and the settings of every step, each the config its own
    command takes (defaults: ~10 min on 2 cores, about half of it training the hierarchy model:
    the README's demo table). The scoring step's models are the
    two the demo trains."""

    output: str = common.output(default="out/demo")
    data: str | None = field(default=None, metadata={
        "help": "your own log (a file or a directory) instead of a synthetic one (with --format)"})  # fmt: skip
    format: str | None = common.log_format("format of --data: aol, webis-smc, gayo-avello, diffusiondb, "
                                           "midjourney or table")  # fmt: skip
    read: ReadOptions = common.read_options()  # how --data is read (--map for a table), as `ingest` reads it
    synth: SynthConfig = field(default_factory=lambda: SynthConfig(users=600, rows=30_000), metadata={"prefix": ""})
    segment: SegmentConfig = field(
        default_factory=SegmentConfig, metadata={"prefix": "segment-", "choices": {"method": LEXICAL_METHODS}}
    )  # learned needs the model trained later
    missions: MissionConfig = field(default_factory=MissionConfig, metadata={"prefix": "mission-"})
    mining: MiningConfig = field(default_factory=MiningConfig, metadata={"prefix": "mining-"})
    session: SessionTrainConfig = field(default_factory=_demo_session, metadata={"prefix": "session-"})
    hierarchy: HierarchyTrainConfig = field(default_factory=_demo_hierarchy, metadata={"prefix": "hierarchy-"})
    score: ScoreConfig = field(default_factory=ScoreConfig, metadata={
        "prefix": "score-", "omit": ("session_model", "hierarchy_model")})  # fmt: skip
    address: str | None = common.address()

    def __post_init__(self) -> None:
        if (self.data is None) != (self.format is None):
            raise ValueError("--data and --format go together (a log and its format), or neither (a synthetic log)")
        if self.data is None:
            common.refuse_read_options(self.read, "--data", "a synthetic log")
        common.check_format(self.format, self.read)
        if self.segment.method == "learned":
            raise ValueError("--segment-method learned needs a session model, which the demo trains after segmenting")
        if self.hierarchy.lookup:
            raise ValueError("--hierarchy-model lookup: the demo scores its log with the hierarchy model it trains, "
                             "and a lookup table has points for its training nouns only (it is logged, not "
                             "registered); give an encoder (minilm-local, tiny, a Hub id)")  # fmt: skip


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
        """The summary as JSON-ready values (`summary.json`, and the demo run's `summary.json` artifact)."""
        return asdict(self)


def run(
    cfg: DemoConfig,
    on_step: Callable[[str], None] = lambda step: None,
    on_done: Callable[[str, dict, float], None] = lambda step, numbers, seconds: None,
) -> DemoSummary:
    """Run every step on `cfg.data`, or on a synthetic log (see the module); `on_step(name)`
    as each step starts, `on_done(name, its numbers, its seconds)` as it ends (what ran is
    shown even when a later step fails). ValueError / FileNotFoundError for bad settings
    or inputs."""
    from workflows.distributed.runtime import ray_runtime, require_gpus
    from workflows.tracking.store import check_store
    from workflows.tracking.uri import tracking_uri

    for needed, option in ((gpus_needed(cfg.session), "--session-gpu"), (gpus_needed(cfg.hierarchy), "--hierarchy-gpu"),
                           (cfg.score.gpus_per_worker, "--score-gpus-per-worker")):  # fmt: skip
        require_gpus(needed, cfg.address, option, f"run the demo on CPUs without {option}")
    output, data, fmt = common.output_dir(cfg.output, inputs=[cfg.data] if cfg.data else []), cfg.data, cfg.format
    refuse_users_files(output)
    # an earlier demo's, which this run writes again: kept aside until it is done, and back if it fails on a
    # mistake, as each step keeps its own earlier output (the summary is written once every step is done); what
    # a killed rerun left aside comes back first
    again = [SUMMARY_FILE, FIGURES_DIR, *([SYNTH_LOG] if data is None else [])]
    restore_killed(output)
    there = set(storage.list_names(output))  # what a step that fails on a mistake leaves: only what was there
    common.removed_on_error([storage.join(output, name) for name in DEMO_ENTRIES if name not in there])
    common.kept_aside(output, [name for name in again if name in there])
    local = storage.local_path(output)
    scratch = tempfile.TemporaryDirectory() if local is None else None  # figures are drawn locally
    figures = (local if local is not None else Path(scratch.name)) / FIGURES_DIR  # type: ignore[union-attr]
    summary = DemoSummary(log=str(data or storage.join(output, SYNTH_LOG)), format=fmt or "aol")
    at = functools.partial(storage.join, output)
    start = time.perf_counter()

    @contextmanager
    def step(name: str) -> Iterator[None]:
        on_step(name)
        began = time.perf_counter()
        try:
            yield
        except (ValueError, FileNotFoundError) as err:  # a step's command names its options, the demo its own
            if (said := step_message(name, str(err))) == str(err):
                raise
            raise type(err)(said) from err
        summary.seconds[name] = round(time.perf_counter() - began, 1)
        on_done(name, summary.numbers.get(name, {}), summary.seconds[name])

    check_store()  # named now if it cannot be used; a new SQLite store is made by the first training run
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights" bars: the steps report what matters
    with ray_runtime(cfg.address, worker_output=False):  # the steps report; Ray's workers write to its log files
        if data is None:
            with step("synth"):
                summary.numbers["synth"] = _synth(summary.log, cfg)
        with step("ingest"):
            _ingest(summary.log, summary.format, at("events"), cfg, summary)
        # the read settings named on the command line were the ingest's: the steps after it read
        # its events, which refuse a read setting named for them (`common.refuse_read_settings`)
        with common.naming_read_settings(frozenset()):
            with step("segment"):
                _segment(at("events"), at("sessions"), cfg, summary, figures)
            with step("evaluate segmentation"):
                _evaluate(at("events"), cfg, summary, figures)
            with step("mine"):
                _mine(at("sessions"), at("pairs"), cfg, summary)
            with step("train session model"):
                _train_session(at("pairs"), cfg, at("ray-results"), summary, figures)
            with step("train hierarchy model"):
                _train_hierarchy(cfg, at("ray-results"), summary, figures)
            with step("score"):
                _score(at("events"), at("scores"), cfg, summary)
    summary.seconds["total"] = round(time.perf_counter() - start, 1)
    for png in sorted(figures.glob("*.png")):
        if local is None:  # the figures go where the outputs are
            storage.copy_file(png, at(FIGURES_DIR, png.name))
        summary.figures.append(at(FIGURES_DIR, png.name))
    summary.outputs |= {"sessions": at("sessions"), "pairs": at("pairs"), "summary": at(SUMMARY_FILE)}
    summary.mlflow_ui = f"{_mlflow_command()} ui --backend-store-uri {tracking_uri()} --workers 1"
    _log_run(summary, cfg, output, figures)
    if scratch is not None:
        scratch.cleanup()
    return summary


def refuse_users_files(output: str) -> None:
    """ValueError in one line when the output directory holds anything the demo did not
    write there (`DEMO_ENTRIES`): another name, a symbolic link under one of its names, a
    summary.json that is no demo's, a figures/ holding anything but the demo's figures. The
    demo deleted a user's figures/ and summary.json and wrote its steps beside their files."""
    at = functools.partial(storage.join, output)
    names = storage.list_names(output)
    if other := [name for name in names if name not in DEMO_ENTRIES]:
        raise ValueError(f"--output {output} holds other files ({first_names(other)}); the demo writes "
                         f"{', '.join(DEMO_ENTRIES)} there: choose a new or empty directory")  # fmt: skip
    why = {name: f"a symbolic link to {link}" for name in names if (link := storage.link_target(at(name)))}
    if SUMMARY_FILE in names and not _is_summary(at(SUMMARY_FILE)):
        why.setdefault(SUMMARY_FILE, "not a demo's summary")
    if FIGURES_DIR in names and not _only_figures(at(FIGURES_DIR)):
        why.setdefault(FIGURES_DIR, "not the demo's figures (it holds files the demo does not write)")
    for name, table in STEP_TABLES.items():  # each step's own directory, checked as that step checks it, now
        if name in names and not why:
            refuse_other_files(at(name), table, advice="the demo writes its own there: choose a new or empty directory")
    if why:
        name, what = next(iter(why.items()))
        raise ValueError(f"--output {output}: its {name} is {what}, which the demo would replace; move it, or "
                         "choose a new or empty directory")  # fmt: skip


def _is_summary(location: str) -> bool:
    try:
        found = json.loads(storage.read_text(location))
    except (ValueError, UnicodeDecodeError, OSError):
        return False
    return isinstance(found, dict) and {"log", "numbers", "outputs"} <= set(found)


def _only_figures(location: str) -> bool:
    """Whether `location` is a directory of the demo's figures only (`DEMO_FIGURE`)."""
    if not storage.is_dir(location):
        return False
    files = storage.list_files(location, recursive=True, hidden=True)
    return all(storage.parent(f) == location and DEMO_FIGURE.fullmatch(storage.name(f)) for f in files)


# Each step's command (its job config) and which of its configs the demo holds under which field.
STEP_CONFIGS: dict[str, tuple[type, dict[str, str]]] = {
    "segment": (SegmentJob, {"segment": "segment", "missions": "missions"}),
    "mine": (MineJob, {"mining": "mining"}),
    "train session model": (TrainSessionJob, {"session": "session"}),
    "train hierarchy model": (TrainHierarchyJob, {"hierarchy": "hierarchy"}),
    "score": (ScoreJob, {"score": "score"}),
}


def step_message(step: str, message: str) -> str:
    """A step's error `message` with the options of the step's command it names
    (`--batch-size`) by the demo's flags for them (`--session-batch-size`), and those
    of another step's command (`train session` naming `mine`'s `--val-share`: the
    demo's `--mining-val-share`) where only one other step has an option of that name."""
    if step not in STEP_CONFIGS:
        return message
    others: dict[str, set[str]] = {}
    for other, (job, fields) in STEP_CONFIGS.items():
        for option, flag in flags_between(job, DemoConfig, fields).items() if other != step else ():
            others.setdefault(option, set()).add(flag)
    job, fields = STEP_CONFIGS[step]
    unique = {option: flag for option, (flag, *more) in others.items() if not more}
    return rename_flags(message, unique | flags_between(job, DemoConfig, fields))


# ---- the steps: each calls what its command calls ----
def _synth(path: str, cfg: DemoConfig) -> dict:
    from workflows.jobs import synth

    s = synth.run(synth.SynthJob(output=str(path), synth=cfg.synth))
    return {"rows": s.rows, "users": s.users, "sessions": s.sessions, "missions": s.missions}


def _ingest(log: str, fmt: str, out: str, cfg: DemoConfig, summary: DemoSummary) -> None:
    from workflows.jobs import ingest

    job = ingest.IngestJob(inputs=(str(log),), format=fmt, output=str(out), read=cfg.read, address=cfg.address)
    report = ingest.run(job)
    summary.numbers["ingest"] = {"rows_in": report.rows_in, "rows_ok": report.rows_ok,
                                 "rows_rejected": report.rows_rejected}  # fmt: skip


def _segment(events: str, out: str, cfg: DemoConfig, summary: DemoSummary, figures: Path) -> None:
    from workflows.figures import session_statistics
    from workflows.jobs import segment

    job = segment.SegmentJob(inputs=(str(events),), output=str(out), segment=cfg.segment, missions=cfg.missions,
                             address=cfg.address)  # fmt: skip
    report = segment.run(job)
    sessions = read_table(storage.join(out, "sessions.parquet"))
    lengths = sessions.group_by("session_id").len()["len"]
    summary.numbers["segment"] = {"rows": report.rows_out, "sessions": report.sessions, "missions": report.missions,
                                  "median_session_length": float(lengths.median()),
                                  "mean_session_length": round(float(lengths.mean()), 2)}  # fmt: skip
    title = f"{storage.name(summary.log)}: sessions by the {cfg.segment.method} method"
    session_statistics(sessions, title, figures / "session_statistics.png")


def _evaluate(events_dir: str, cfg: DemoConfig, summary: DemoSummary, figures: Path) -> None:
    from sessions.crossval import chosen_counts, nested_cv, too_few_users
    from sessions.metrics import GOLD_LEVELS, compare, gold_levels
    from workflows.figures import segmentation_bars
    from workflows.jobs.evaluate_crossval import time_gap_grid
    from workflows.jobs.evaluate_segmentation import evaluate_methods, has_gold

    labelled = pl.any_horizontal(pl.col(col).is_not_null() for col, _ in GOLD_LEVELS)
    # the users with a truth, whole (segmentation is per user): nothing more in memory
    events = scan_table(storage.join(events_dir, "events.parquet")).filter(labelled.any().over("user_id")).collect()
    if not has_gold(events):
        summary.numbers["evaluate segmentation"] = {"skipped": "the log has no gold sessions or missions"}
        return
    methods = {m: (dataclasses.replace(cfg.segment, method=m), cfg.missions) for m in LEXICAL_METHODS}
    scores = evaluate_methods(events, methods)
    title = f"{storage.name(summary.log)}: {events.height:,} queries"
    segmentation_bars(scores, title, figures / "segmentation.png")
    headline = scores.filter(pl.col("system").is_in(LEXICAL_METHODS) & (pl.col("level") == pl.col("gold")))
    numbers = {f"{row['system']} {row['level']} F1": round(row["f1"], 6) for row in headline.iter_rows(named=True)}
    # the strongest time-gap baseline a procedure can claim: the gap chosen by inner folds of users,
    # scored like the methods above (pair F1 over all users, each user grouped by the gap chosen without them)
    for column, level in gold_levels(events):
        labelled_users = events.filter(pl.col(column).is_not_null().any().over("user_id"))
        if problem := too_few_users(labelled_users, (level, level, "f1")):  # a small labelled log: the rest stands
            numbers[f"time gap chosen by CV {level}"] = f"not estimated: {problem}"
            continue
        cv = nested_cv(labelled_users, time_gap_grid(), (level, level, "f1"))
        pooled = compare(labelled_users, {"cv": cv.out_of_fold})
        f1 = pooled.filter((pl.col("level") == level) & (pl.col("gold") == level))["f1"][0]
        numbers[f"time gap chosen by CV {level} F1"] = round(f1, 6)
        numbers[f"time gap chosen by CV {level}"] = chosen_counts(cv)
    summary.numbers["evaluate segmentation"] = numbers


def _mine(sessions: str, out: str, cfg: DemoConfig, summary: DemoSummary) -> None:
    from workflows.jobs import mine

    report = mine.run(mine.MineJob(sessions=str(sessions), output=str(out), mining=cfg.mining, address=cfg.address))
    notes = {key: report[key] for key in ("negatives_short", "empty_splits") if report[key]}  # as `mine` says them
    summary.numbers["mine"] = {"pairs": report["pairs"], "positives": report["positives"],
                               "users_by_split": report["users_by_split"], **notes}  # fmt: skip


def _train_session(pairs: str, cfg: DemoConfig, checkpoints: str, summary: DemoSummary, figures: Path) -> None:
    from workflows.jobs import train_session

    job = train_session.TrainSessionJob(pairs=pairs, session=cfg.session, storage=checkpoints)
    outcome = train_session.run(job)
    keys = ("val_auc", "val_auc_not_fine_tuned", "val_auc_jaccard", "mission_silhouette_not_fine_tuned",
            "mission_silhouette", "steps")  # fmt: skip
    summary.numbers["train session model"] = {k: _round(outcome.metrics[k]) for k in keys if k in outcome.metrics}
    summary.models["session-model"] = outcome.registered
    summary.runs["session-model"] = outcome.run_id
    _fetch_figures(outcome.run_id, outcome.figures, "session-model", figures)


def _train_hierarchy(cfg: DemoConfig, checkpoints: str, summary: DemoSummary, figures: Path) -> None:
    from workflows.jobs import train_hierarchy

    job = train_hierarchy.TrainHierarchyJob(hierarchy=cfg.hierarchy, storage=checkpoints)
    outcome = train_hierarchy.run(job)
    keys = ("map", "mean_rank", "spearman_norm_depth", "steps")
    summary.numbers["train hierarchy model"] = {k: _round(outcome.metrics[k]) for k in keys if k in outcome.metrics}
    summary.models["hierarchy-model"] = outcome.registered
    summary.runs["hierarchy-model"] = outcome.run_id
    _fetch_figures(outcome.run_id, outcome.figures, "hierarchy-model", figures)


def _score(events: str, out: str, cfg: DemoConfig, summary: DemoSummary) -> None:
    from workflows.jobs import score

    settings = dataclasses.replace(cfg.score, session_model=summary.models["session-model"],
                                   hierarchy_model=summary.models["hierarchy-model"])  # fmt: skip
    report = score.run(score.ScoreJob(inputs=(events,), output=out, score=settings, address=cfg.address))
    reformulations = (
        scan_table(storage.join(out, "scores.parquet")).select("reformulation").drop_nulls()
        .group_by("reformulation").len().sort("reformulation").collect()
    )  # fmt: skip
    summary.numbers["score"] = {
        "rows": report.rows_out, "distinct_texts": report.distinct_texts, "sessions": report.sessions,
        "missions": report.missions, "rows_per_second": round(report.rows_out / max(report.seconds, 1e-9), 1),
        "engine": report.engine, "reformulations": dict(reformulations.iter_rows()),
    }  # fmt: skip
    summary.outputs["scores"] = storage.join(out, "scores.parquet")


# ---- MLflow ----
def _mlflow_command() -> str:
    """How to run the `mlflow` of this environment from the user's shell: `mlflow` when
    that is the one the shell finds, else its path (`.venv/bin/mlflow`, relative to the
    working directory where it lies below it)."""
    import shutil
    import sys

    ours = Path(sys.executable).parent / "mlflow"
    if not ours.is_file() or shutil.which("mlflow") == str(ours):
        return "mlflow"
    return str(ours.relative_to(Path.cwd())) if ours.is_relative_to(Path.cwd()) else str(ours)


def _fetch_figures(run_id: str, names: list[str], prefix: str, figures: Path) -> None:
    """The figures a training run logged, copied to OUTPUT/figures as `<prefix>_<name>`."""
    import mlflow

    figures.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            got = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=tmp)
            shutil.copy(got, figures / f"{prefix}_{name}")


def _log_run(summary: DemoSummary, cfg: DemoConfig, output: str, figures: Path) -> None:
    """The demo's run: its configuration, the numbers as metrics (`step.key`), the
    training runs and models as tags, the data's figures and the summary (also
    written to OUTPUT/summary.json)."""
    import mlflow

    from workflows.tracking.store import provenance

    experiment = mlflow.set_experiment(EXPERIMENT)
    name = f"demo on {Path(summary.log).name} ({summary.format})"
    note = ("The whole pipeline on a synthetic log: segment, mine, train both models, score; its numbers as "
            "metrics (step.key), the training runs and registered models as tags.")  # fmt: skip
    tags = {"sessionflow.job": "demo", "mlflow.note.content": note, **provenance()}
    # opened at the end, but started when the demo started: the run's duration is the demo's
    started_ms = int((time.time() - summary.seconds["total"]) * 1000)
    created = mlflow.MlflowClient().create_run(experiment.experiment_id, start_time=started_ms, tags=tags,
                                               run_name=name)  # fmt: skip
    with mlflow.start_run(run_id=created.info.run_id) as run:
        summary.runs[EXPERIMENT] = run.info.run_id
        params = {**flat(cfg), "data": summary.log, "format": summary.format}
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a request
            mlflow.log_params(dict(list(params.items())[i : i + 100]))
        mlflow.log_dict(to_dict(cfg), "config.yaml")
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
        mlflow.log_dict(summary.to_dict(), SUMMARY_FILE)
        write_json(summary.to_dict(), storage.join(output, SUMMARY_FILE))


def _round(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value
