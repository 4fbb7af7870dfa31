"""`sessionflow score`: a whole log scored with the registered models.

Two engines give the same scores: the Ray job (`workflows.distributed.score_job`:
staged buckets of users, a pool of encoding actors, resumable after a kill, any
cluster) and, for a small log on this machine, one process (`score_in_process`: no
Ray to start, no actors to load, no staging; not resumable, which a job of a few
minutes does not need). `--engine auto` (the default) chooses by the inputs' size on
disk (`workflows.jobs.common.choose_engine`, as every data job does). This module
holds the settings (`ScoreConfig`, which the demo holds too), the in-process engine
and the job's entry point.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sessions.formats.options import ReadOptions
from sessions.missions import MissionConfig
from sessions.reformulation import DEFAULT_RATIO, check_ratio
from sessions.segment import SegmentConfig
from workflows.jobs import common
from workflows.jobs.annotate import RATIO_HELP

SCORE_METHODS = ("cascade", "learned")  # the session model takes part in both
# how the session model's encoder runs: eager torch (the reference), or its ONNX export on
# ONNX Runtime, float or int8 (`models.onnx_encoder`; exported once, logged beside the model)
Backend = Literal["torch", "onnx", "onnx-int8"]

if TYPE_CHECKING:
    from workflows.distributed.scoring import ScoreReport


@dataclass(frozen=True)
class ScoreConfig:
    """How a log is scored: the models, the encoding actors, and the segmentation settings."""

    session_model: str = field(default="models:/session-model@champion", metadata={"help": "the session model"})
    hierarchy_model: str | None = field(default=None, metadata={
        "help": "a hierarchy model: adds specificity and reformulation"})  # fmt: skip
    embeddings: bool = field(default=False, metadata={"help": "also write each query's vector (float16)"})
    backend: Backend = field(default="torch", metadata={
        "help": "the session encoder's runtime: torch (eager, the reference), onnx or onnx-int8 (ONNX Runtime, CPU; "
                "exported once and logged beside the model)"})  # fmt: skip
    workers: int = field(default=0, metadata={
        "help": "encoding actors of the ray engine (0: one per CPU, or per GPU share with "
                "--gpus-per-worker)"})  # fmt: skip
    gpus_per_worker: float = field(default=0.0, metadata={
        "help": "GPUs per encoding actor (0: CPU); a share runs several actors a GPU (0.25: four, 1.8x one actor's "
                "rate on an H200)"})  # fmt: skip
    batch_size: int = field(default=256, metadata={"help": "texts per forward pass"})
    buckets: int = field(default=0, metadata={
        "help": "buckets of users and of texts of the ray engine (0: 4 per CPU of the cluster)"})  # fmt: skip
    segment: SegmentConfig = field(default_factory=SegmentConfig, metadata={  # the time gap is only --method time's
        "prefix": "", "choices": {"method": SCORE_METHODS}, "omit": ("gap_minutes",)})  # fmt: skip
    missions: MissionConfig = field(default_factory=MissionConfig, metadata={"prefix": "mission-"})
    ratio: float = field(default=DEFAULT_RATIO, metadata={"help": f"with a hierarchy model: {RATIO_HELP}"})

    def __post_init__(self) -> None:
        if self.segment.method not in SCORE_METHODS:
            raise ValueError(f"scoring method {self.segment.method!r}: score with cascade (the model decides what "
                             "lexical evidence would break) or learned (the model decides every pair)")  # fmt: skip
        if self.buckets < 0:
            raise ValueError("buckets must not be negative")
        if not self.session_model or self.hierarchy_model == "":
            raise ValueError(
                "--session-model and --hierarchy-model name a registered model "
                "(models:/NAME@champion, models:/NAME/VERSION or runs:/ID/model), not an empty string"
            )
        check_ratio(self.ratio)
        if self.ratio != DEFAULT_RATIO and self.hierarchy_model is None:
            raise ValueError("--ratio types reformulations with a hierarchy model: give --hierarchy-model, or leave "
                             "--ratio out")  # fmt: skip
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for name in ("workers", "gpus_per_worker"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.backend != "torch" and self.gpus_per_worker:
            raise ValueError(f"--backend {self.backend} runs on CPUs; on GPUs score with --backend torch")

    def to_dict(self) -> dict:
        """The config as JSON-ready values (without `ratio` where no hierarchy model types reformulations)."""
        config = asdict(self)
        if self.hierarchy_model is None:
            del config["ratio"]
        return config


@dataclass(frozen=True)
class ScoreJob:
    """What `sessionflow score` reads, how it scores and where it writes."""

    inputs: tuple[str, ...] = common.inputs()
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    format: str | None = common.log_format()
    read: ReadOptions = common.read_options()
    score: ScoreConfig = field(default_factory=ScoreConfig, metadata={"prefix": ""})
    engine: common.Engine = common.engine()  # the ray engine resumes a killed job
    address: str | None = common.address()

    def __post_init__(self) -> None:
        common.check_engine(self.engine, self.address)


def run(job: ScoreJob) -> ScoreReport:
    """Score every row of `job.inputs` into OUTPUT/scores.parquet (see
    `workflows.distributed.score_job`); ValueError / FileNotFoundError for bad settings or inputs,
    and when no record could be read (what the job wrote is deleted again)."""
    from workflows.distributed.nodes import require_every_node_reaches
    from workflows.distributed.runtime import WITHOUT_RAY, ray_runtime, require_gpus
    from workflows.distributed.scoring import SCORES_FILE, WORK_DIR  # no ray: before the runtime's settings
    from workflows.tracking.store import require_model, use_store

    common.require(job.inputs, "inputs", argument=True)
    common.check_format(job.format, job.read, job.inputs)
    common.check_output(job.output, job.inputs)
    require_gpus(job.score.gpus_per_worker, job.address, "--gpus-per-worker", "score on CPUs: --gpus-per-worker 0")
    use_store(existing=True)
    for model, kind in ((job.score.session_model, "session"), (job.score.hierarchy_model, "hierarchy")):
        if model:
            require_model(model, (kind,))  # before the output is claimed
    common.check_log_inputs(job.inputs, job.format, options=job.read)
    engine, reason = common.choose_engine(job.engine, job.address, job.inputs, job.format)
    # `score` may resume there, from its WORK_DIR
    output = common.output_dir(job.output, SCORES_FILE, job.overwrite, job.inputs, also=[WORK_DIR])
    if engine == "local":
        report = score_in_process(job.inputs, job.format, output, job.score, options=job.read, overwrite=job.overwrite,
                                  reason=reason)  # fmt: skip
    else:
        with ray_runtime(job.address, without_ray=WITHOUT_RAY):
            require_every_node_reaches(output, job.inputs)
            from workflows.distributed.score_job import score  # imports ray: after the runtime's settings

            report = score(job.inputs, job.format, output, job.score, options=job.read, overwrite=job.overwrite,
                           reason=reason)  # fmt: skip
    common.require_rows_read(report.to_dict(), output)
    return report


def score_in_process(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    cfg: ScoreConfig,
    *,
    options: ReadOptions | None = None,
    overwrite: bool = False,
    reason: str = "",
) -> ScoreReport:
    """Score `inputs` (raw logs or an ingest directory) in this process into `output`:
    the same `scores.parquet`, `rejected.parquet` and `report.json` as the Ray engine,
    the same scores row for row (the same reading, the same `TextEncoders`, the same
    `score_events` over all users at once). Every distinct text is encoded once, with
    every CPU's thread; the events and the texts' vectors are held in memory, which is
    why `--engine auto` takes it for small logs only. ValueError when `output` holds
    another job's output and not `overwrite`; RuntimeError when the scored rows do not
    add up to the accepted events (a bug, not a user's error)."""
    from models.calibration import Calibration
    from sessions import storage
    from sessions.formats.options import DEFAULT_READ
    from sessions.ingest import REJECTED_FILE, REPORT_FILE
    from sessions.io import claim_output, part_name, prepare_dataset, publish_dataset, run_id, write_report
    from sessions.pipeline import load_events
    from workflows.distributed.scoring import (
        SCORES_FILE,
        WORK_DIR,
        ScoreReport,
        TextEncoders,
        TextTable,
        distinct_count,
        empty_scores,
        job_settings,
        score_events,
        write_part,
    )

    start = time.perf_counter()
    options = options or DEFAULT_READ
    out = claim_output(output, SCORES_FILE, overwrite, inputs, also=[WORK_DIR])
    storage.remove(storage.join(out, WORK_DIR))  # an interrupted Ray job's work: stale once this job writes here
    unused = [f"--{name}" for name in ("workers", "buckets") if getattr(cfg, name)]  # the ray engine's settings
    if unused:
        reason += f"; {' and '.join(unused)} {'are' if len(unused) > 1 else 'is'} the ray engine's: not used"
    settings = {**job_settings(inputs, fmt, options, cfg), "engine": "local", "engine_reason": reason}
    report = ScoreReport(ingest={}, backend=cfg.backend, config=settings)
    events, report.ingest = load_events(inputs, fmt, out, options=options)
    phases = {"read": time.perf_counter() - start}

    tick = time.perf_counter()
    hierarchy = cfg.hierarchy_model is not None
    if not events.height:  # nothing read: an empty table (the caller says why, from the rejected rows)
        scored = empty_scores(hierarchy)
    else:
        encoders = TextEncoders(cfg, threads=os.cpu_count() or 1, gpu=bool(cfg.gpus_per_worker))
        texts = events["query"].unique().sort()
        table = TextTable.of(encoders.encode(texts, cfg.batch_size), Calibration(**encoders.calibration))
        report.distinct_texts, report.unread_texts = len(texts), table.unread
        phases["encode"] = time.perf_counter() - tick
        tick = time.perf_counter()
        # the log's common terms: counted over these events, the whole log
        geometry = encoders.hierarchy_geometry()
        scored = score_events(events, table, cfg.segment, cfg.missions, hierarchy=geometry, ratio=cfg.ratio,
                              embeddings=cfg.embeddings)  # fmt: skip
    target = storage.join(out, SCORES_FILE)
    prepare_dataset(target)
    part = part_name(run_id(), 0)
    write_part(scored, target, part)
    publish_dataset(target, [(part, scored.num_rows)])
    phases["score"] = time.perf_counter() - tick

    report.rows_out = scored.num_rows
    if report.rows_out != report.ingest["rows_ok"]:
        raise RuntimeError(f"{report.rows_out} scored rows for {report.ingest['rows_ok']} accepted events")
    report.sessions, report.missions = (distinct_count(scored, c) for c in ("session_id", "mission_id"))
    report.outputs = {name: storage.join(out, name) for name in (SCORES_FILE, REJECTED_FILE, REPORT_FILE)}
    report.seconds = round(time.perf_counter() - start, 3)
    report.phase_seconds = {k: round(v, 3) for k, v in phases.items()}
    write_report(report.to_dict(), out)
    return report
