"""`sessionflow score`: a whole log scored with the registered models, on Ray, resumably.

The Ray job itself is `workflows.distributed.score_job`; this module holds its
settings (`ScoreConfig`, which the demo holds too) and the job's entry point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from sessions.formats.options import ReadOptions
from sessions.missions import MissionConfig
from sessions.reformulation import DEFAULT_THRESHOLD
from sessions.segment import SegmentConfig
from workflows.jobs import common
from workflows.jobs.annotate import THRESHOLD_HELP

SCORE_METHODS = ("cascade", "learned")  # the session model takes part in both
# how the session model's encoder runs: eager torch (the reference), or its ONNX export on
# ONNX Runtime, float or int8 (`models.onnx_encoder`; exported once, logged beside the model)
Backend = Literal["torch", "onnx", "onnx-int8"]


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
        "help": "encoding actors (0: one per CPU, or per GPU share with --gpus-per-worker)"})  # fmt: skip
    gpus_per_worker: float = field(default=0.0, metadata={"help": "GPUs per encoding actor (0: CPU)"})
    batch_size: int = field(default=256, metadata={"help": "texts per forward pass"})
    buckets: int = field(default=0, metadata={"help": "buckets of users and of texts (0: 4 per CPU of the cluster)"})
    segment: SegmentConfig = field(default_factory=SegmentConfig, metadata={
        "prefix": "", "choices": {"method": SCORE_METHODS}})  # fmt: skip
    missions: MissionConfig = field(default_factory=MissionConfig, metadata={"prefix": "mission-"})
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata={"help": THRESHOLD_HELP})

    def __post_init__(self) -> None:
        if self.segment.method not in SCORE_METHODS:
            raise ValueError(f"scoring method {self.segment.method!r}: score with cascade (the model decides what "
                             "lexical evidence would break) or learned (the model decides every pair)")  # fmt: skip
        if self.buckets < 0 or self.threshold < 0:
            raise ValueError("buckets and threshold must not be negative")
        if self.batch_size < 1 or self.workers < 0 or self.gpus_per_worker < 0:
            raise ValueError("batch_size must be at least 1, workers and gpus_per_worker at least 0")
        if self.backend != "torch" and self.gpus_per_worker:
            raise ValueError(f"--backend {self.backend} runs on CPUs; on GPUs score with --backend torch")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ScoreJob:
    """What `sessionflow score` reads, how it scores and where it writes."""

    inputs: tuple[str, ...] = common.inputs()
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    format: str | None = common.log_format()
    read: ReadOptions = common.read_options()
    score: ScoreConfig = field(default_factory=ScoreConfig, metadata={"prefix": ""})
    address: str | None = common.address()


def run(job: ScoreJob):  # -> ScoreReport
    """Score every row of `job.inputs` into OUTPUT/scores.parquet (see
    `workflows.distributed.score_job`); ValueError / FileNotFoundError for bad settings or inputs,
    and when no record could be read (what the job wrote is deleted again)."""
    from workflows.distributed.runtime import ray_runtime
    from workflows.distributed.scoring import SCORES_FILE  # no ray: before the runtime's settings
    from workflows.tracking.store import require_model, use_store

    common.require(job.inputs, "inputs", argument=True)
    common.check_format(job.format, job.read)
    common.check_output(job.output, job.inputs)
    use_store(existing=True)
    for model, kind in ((job.score.session_model, "session"), (job.score.hierarchy_model, "hierarchy")):
        if model:
            require_model(model, (kind,))  # before the output is claimed
    common.check_log_inputs(job.inputs, job.format)
    output = common.output_dir(job.output, SCORES_FILE, job.overwrite, job.inputs)  # `score` may resume there
    with ray_runtime(job.address):
        from workflows.distributed.score_job import score  # imports ray: after the runtime's settings

        report = score(job.inputs, job.format, output, job.score, options=job.read, overwrite=job.overwrite)
    common.require_rows_read(report.to_dict(), output)
    return report
