"""`sessionflow segment`: logs -> sessions and missions, on Ray or in one process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sessions.formats.options import ReadOptions
from sessions.missions import MissionConfig
from sessions.pipeline import SESSIONS_FILE, SegmentReport
from sessions.segment import METHODS, NEEDS_MODEL, SegmentConfig
from workflows.jobs import common

if TYPE_CHECKING:
    from sessions.learned import SameSessionClassifier
    from workflows.tracking.session_model import SessionScorer

LEXICAL_METHODS = tuple(m for m in METHODS if m not in NEEDS_MODEL)  # need no model
MODEL_HELP = (
    "a model URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/...): a segmenter model "
    "(models:/segmenter-model@champion, `train segmenter`) decides `learned`; a session model "
    "(models:/session-model@champion) decides `learned`, or the middle stage of `cascade`, and adds "
    "embedding links to missions"
)


@dataclass(frozen=True)
class SegmentJob:
    """What `sessionflow segment` reads, how it cuts sessions and links missions, and where it writes."""

    inputs: tuple[str, ...] = common.inputs()
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    format: str | None = common.log_format()
    read: ReadOptions = common.read_options()
    segment: SegmentConfig = field(default_factory=SegmentConfig, metadata={"prefix": ""})
    missions: MissionConfig = field(default_factory=MissionConfig, metadata={"prefix": "mission-"})
    model: str | None = field(default=None, metadata={"help": MODEL_HELP})
    engine: common.Engine = common.engine()
    address: str | None = common.address()

    def __post_init__(self) -> None:
        check_method(self.segment.method, self.model)
        common.check_engine(self.engine, self.address)
        unused = self.model is None or self.segment.method in ("time", "lexical")
        if unused and self.segment.min_p_same != SegmentConfig.min_p_same:
            without = "" if self.model else " without --model"
            raise ValueError(f"--min-p-same is a session model's threshold (--method learned or cascade with "
                             f"--model): --method {self.segment.method}{without} has none")  # fmt: skip


def check_method(method: str, model: str | None) -> None:
    """ValueError for a method that needs a session model when none is given."""
    if method in NEEDS_MODEL and model is None:
        raise ValueError(f"--method {method} needs --model (a segmenter model or a session model)")


def session_scorer(model: str | None) -> SameSessionClassifier | SessionScorer | None:
    """The model at `model` (an MLflow model URI) as segmentation takes it
    (`workflows.tracking.segmenter_model.segmentation_model`); None without one."""
    if model is None:
        return None
    from workflows.tracking.segmenter_model import segmentation_model
    from workflows.tracking.store import use_store

    use_store(existing=True)
    return segmentation_model(model)


def run(job: SegmentJob, on_rows: Callable[[int], None] | None = None) -> SegmentReport:
    """Segment `job.inputs` into OUTPUT/sessions.parquet, rejected.parquet and report.json.

    The ray engine hash-shuffles users into buckets segmented by Ray tasks; the local
    one works through chunks of whole users in threads (`on_rows(n)` after each block
    read). Both give the same sessions and the same report (`sessions.pipeline.
    write_segment_report`). ValueError / FileNotFoundError for bad settings or inputs,
    and when no record could be read (what the job wrote is deleted again).
    """
    common.require(job.inputs, "inputs", argument=True)
    common.check_format(job.format, job.read, job.inputs)
    if job.model:  # a missing or wrong model: refused before the output
        from workflows.tracking.segmenter_model import require_segmentation_model

        require_segmentation_model(job.model, [job.segment.method])
    common.check_log_inputs(job.inputs, job.format, options=job.read)
    engine, why = common.choose_engine(job.engine, job.address, job.inputs, job.format)
    config = common.as_run(job, engine, why)
    if job.model:  # the model the alias names now: the report still names it after the alias moves
        from workflows.tracking.store import pinned

        config["model_run"] = pinned(job.model)
    scorer = session_scorer(job.model) if engine == "local" else None
    output = common.output_dir(job.output, SESSIONS_FILE, job.overwrite, job.inputs)
    if engine == "ray":
        from workflows.distributed.nodes import require_every_node_reaches
        from workflows.distributed.runtime import WITHOUT_RAY, ray_runtime

        with ray_runtime(job.address, without_ray=WITHOUT_RAY):
            require_every_node_reaches(output, job.inputs)
            from workflows.distributed import data  # imports ray: after the runtime's settings

            report = data.segment(job.inputs, job.format, output, job.segment, job.missions, options=job.read,
                                  model_uri=job.model, config=config)  # fmt: skip
    else:
        from sessions.pipeline import embedder_of, segment_logs

        on_block = (lambda path, parsed: on_rows(parsed.rows_read)) if on_rows else None
        report = segment_logs(job.inputs, job.format, output, job.segment, job.missions, options=job.read,
                              scorer=scorer, embedder=embedder_of(scorer), config=config,
                              on_block=on_block)  # fmt: skip
    common.require_rows_read(report.to_dict(), output)
    return report
