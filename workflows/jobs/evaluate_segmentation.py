"""Segmentation methods scored against a log's ground truth, next to time-gap baselines.

`evaluate_methods` serves `sessionflow evaluate segmentation` (`run`) and the demo: every method
segments the labelled events (sessions, then missions; `groupings`), the time gaps of
`sessions.metrics.BASELINE_GAP_MINUTES` segment them alone, and
`sessions.metrics.compare` scores each against every gold level the log has (`run`
also by users' history size, `compare_by_user_size`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.metrics import (
    BASELINE_GAP_MINUTES,
    compare,
    compare_by_user_size,
    gold_levels,
    require_something_to_score,
)
from sessions.missions import MissionConfig
from sessions.pipeline import embedder_of, sessions_with_missions
from sessions.schema import REJECTED_SCHEMA
from sessions.segment import PairScorer, SegmentConfig, SessionClassifier, segment
from workflows.jobs import common
from workflows.jobs.segment import LEXICAL_METHODS, MODEL_HELP, NEEDS_MODEL, check_method, session_scorer

WITH_MODEL = ("cascade", "learned")  # the methods a session model takes part in


def has_gold(events: pl.DataFrame) -> bool:
    """Whether `events` carry gold sessions or missions to score against."""
    return bool(gold_levels(events))


def evaluate_methods(
    gold: pl.DataFrame,
    methods: Mapping[str, tuple[SegmentConfig, MissionConfig]],
    scorer: PairScorer | SessionClassifier | None = None,
    systems: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """`compare`'s rows for every grouping `groupings` makes of `gold`."""
    return compare(gold, groupings(gold, methods, scorer, systems))


def groupings(
    gold: pl.DataFrame,
    methods: Mapping[str, tuple[SegmentConfig, MissionConfig]],
    scorer: PairScorer | SessionClassifier | None = None,
    systems: Mapping[str, pl.DataFrame] | None = None,
) -> dict[str, pl.DataFrame]:
    """Every method's sessions and missions of `gold` (its name -> its configs), the
    groupings made elsewhere (`systems`: name -> frame with row_id, session_id[,
    mission_id]) and the time-gap baselines, by name. With `scorer` (a session model,
    or a segmenter model's classifier) the methods it takes part in also run with it,
    as `<name> + model`; `learned` only so. ValueError when `gold` has nothing to
    score against."""
    if not has_gold(gold):
        raise ValueError("the log has no gold sessions or missions to score against")
    systems = dict(systems or {})
    with_model = ("learned",) if isinstance(scorer, SessionClassifier) else WITH_MODEL
    for name, (seg, missions) in methods.items():
        if seg.method != "learned":
            systems[name] = sessions_with_missions(gold, seg, missions)
        if scorer is not None and seg.method in with_model:
            systems[f"{name} + model"] = sessions_with_missions(gold, seg, missions, scorer, embedder_of(scorer))
    for minutes in BASELINE_GAP_MINUTES:
        systems[f"time-gap {minutes} min"] = segment(gold, SegmentConfig(method="time", gap_minutes=minutes))
    return systems


def require_rows_of(gold: pl.DataFrame, predicted: pl.DataFrame, name: str) -> None:
    """ValueError in one line unless `predicted` (a `segment` output) holds the rows of
    `gold` and no others: under each row_id the same user, time (UTC) and text. Scores
    join the two on row_id, so a segmentation of another log, of part of this one, or
    of this one read with other times (`--timezone`) would be scored on whatever ids
    they share. So is a row without a `session_id` (or `mission_id`): no grouping says
    where it belongs."""
    keys = ["row_id", "user_id", "ts", "query"]
    ours, theirs = gold.select(keys), predicted.select(keys)
    missing, extra = ours.join(theirs, on=keys, how="anti"), theirs.join(ours, on=keys, how="anti")
    if missing.height or extra.height:
        first = (missing if missing.height else extra).row(0, named=True)
        raise ValueError(
            f"{name} segments another log: {missing.height:,} of the ground truth's {ours.height:,} rows are not in "
            f"it and {extra.height:,} of its {theirs.height:,} are not in the ground truth (the first: row "
            f"{first['row_id']}, user {first['user_id']}, {first['ts']:%Y-%m-%d %H:%M:%S}, {first['query']!r}); "
            "segment the ground-truth file itself, read as here (`sessionflow segment GT --format FORMAT`)"
        )
    for column in ("session_id", "mission_id"):  # boundary scores pass over a null, pair counting groups them
        if column in predicted.columns and (nulls := predicted[column].null_count()):
            row = predicted.filter(pl.col(column).is_null()).row(0, named=True)["row_id"]
            raise ValueError(f"{name}: {nulls:,} rows without a {column} (the first: row {row}); `segment` writes "
                             "one for every row")  # fmt: skip


@dataclass(frozen=True)
class GoldLog:
    """A ground-truth file as read: its events (`gold_session` and/or `gold_mission`,
    null where a row has no label), the rows not read, by reason, and how the file's
    fields were read where the file decided it (a raw or CSV-quoted TSV: the report's
    `read_as`; None where the format says it), and what else the reading noted
    (`common.reading_notes`: user ids written as pandas writes floats, a damaged stream,
    ...), as lines to show."""

    events: pl.DataFrame
    rejected: dict[str, int]
    read_as: str | None = None
    notes: tuple[str, ...] = ()

    def unlabelled(self, events: pl.DataFrame | None = None) -> dict[str, int]:
        """Rows read without a label, by gold level: they are segmented, not scored (of
        `events`, some of the rows read; default: all of them)."""
        events = self.events if events is None else events
        return {name: int(events[col].null_count()) for col, name in gold_levels(events)}

    def accounting(self, scored: pl.DataFrame | None = None) -> str:
        """What was not scored, in words ('' when every row was): the rows rejected, and
        the rows without a label of `scored` (default: every row read; cross-validation
        gives the rows of its labelled users, and names the users it left out apart)."""
        parts = [f"{n:,} row{'s' * (n != 1)} rejected ({', '.join(f'{r} {c:,}' for r, c in self.rejected.items())})"
                 for n in [sum(self.rejected.values())] if n]  # fmt: skip
        unlabelled = self.unlabelled(scored).items()
        parts += [f"{n:,} row{'s' * (n != 1)} without a gold {level[:-1]}" for level, n in unlabelled if n]
        return "; ".join(parts)


def read_gold(gt: str, fmt: str, options: ReadOptions = DEFAULT_READ) -> GoldLog:
    """The labelled events of a ground-truth file (read with `options`: a `table`'s
    --map, times) and the rows rejected, by reason. ValueError for an unknown format or
    a file without labels."""
    from sessions.ingest import read_logs
    from sessions.io import MemorySink

    common.check_format(fmt, options)
    events, rejected = MemorySink(), MemorySink()
    report = read_logs([gt], fmt, events, rejected, options=options)
    gold = events.frame()
    if not gold.height:
        raise ValueError(f"{gt}: {common.nothing_read(report.to_dict(), rejected.frame(REJECTED_SCHEMA))}")
    if not has_gold(gold):
        raise ValueError(common.no_labels(gt, ("session", "mission"), fmt, options))
    try:
        require_something_to_score(gold)
    except ValueError as err:
        raise ValueError(f"{gt}: {err} ({gold.height:,} read)") from None
    reasons = rejected.frame()
    counts = reasons.group_by("reason").len().sort("reason").iter_rows() if reasons.height else []
    read_as = sorted({f["read_as"] for f in report.to_dict().get("files", []) if f.get("read_as")})
    notes = tuple(f"{what}: {said}" for what, said in common.reading_notes(report.to_dict(), read_as=False).items())
    return GoldLog(gold, dict(counts), "; ".join(read_as) or None, notes)


ALL = "all"
METHOD_HELP = (
    "time, lexical, cascade, learned (needs --model) or all; repeatable (none given: cascade, and learned with --model)"
)


@dataclass(frozen=True)
class EvaluateSegmentationJob:
    """What `sessionflow evaluate segmentation` scores, against which truth."""

    gt: str | None = field(default=None, metadata={"help": "a ground-truth file"})
    format: str | None = common.log_format(common.GOLD_FORMAT_HELP)
    read: ReadOptions = common.read_options()
    pred: str | None = field(default=None, metadata={
        "help": "a `segment` output of the --gt file to score (instead of --method)"})  # fmt: skip
    methods: tuple[str, ...] = field(default=(), metadata={"help": METHOD_HELP, "option": "method"})
    model: str | None = field(default=None, metadata={"help": MODEL_HELP})
    figure: str | None = field(default=None, metadata={
        "help": "also draw every F1 as bars into this image file, a path or a URI (its suffix names the format: "
                ".png, .svg, .pdf, ...)"})  # fmt: skip
    segment: SegmentConfig = field(default_factory=SegmentConfig, metadata={"prefix": "", "omit": ("method",)})
    missions: MissionConfig = field(default_factory=MissionConfig, metadata={"prefix": "mission-"})

    def __post_init__(self) -> None:
        if self.pred is not None and (self.methods or self.model):
            given = "--method" if self.methods else "--model"
            raise ValueError(f"--pred and {given} exclude each other: score a segmentation, or run methods")
        known = (*LEXICAL_METHODS, *NEEDS_MODEL, ALL)
        for method in self.methods:
            if method not in known:
                raise ValueError(f"--method {method!r}: choose one of {', '.join(known)}")
            check_method(method, self.model)


@dataclass(frozen=True)
class SegmentationScores:
    """`compare`'s rows (system, level, gold, metrics), the same by users' history size
    (`compare_by_user_size`: heavy users apart) and the labelled events scored."""

    scores: pl.DataFrame
    by_user_size: pl.DataFrame
    gold: pl.DataFrame
    read: GoldLog
    notes: tuple[str, ...] = ()  # what the figures mean where a reader would take them otherwise


def run(job: EvaluateSegmentationJob) -> SegmentationScores:
    """Score `job.pred` or each of `job.methods` (with the job's settings) against `job.gt`.

    ValueError / FileNotFoundError for bad settings or inputs.
    """
    from sessions import storage
    from sessions.io import job_output, read_table
    from sessions.pipeline import SESSIONS_FILE

    gt = common.gold_log(job.gt)
    fmt = common.require(job.format, "format")
    if job.figure is not None:  # drawn last: a name or place it cannot take is told before the work
        from workflows.figures import figure_format

        figure_format(job.figure, "--figure")
        common.output_file(job.figure, "--figure", inputs=[gt, *([job.pred] if job.pred is not None else [])])
    # a segmentation to score is checked first: an unfinished one is named as such
    predicted = read_table(job_output(job.pred, SESSIONS_FILE, own_file=True)) if job.pred is not None else None
    read = read_gold(gt, fmt, job.read)
    gold, notes = read.events, ()
    if predicted is not None:
        require_rows_of(gold, predicted, f"--pred {job.pred}")
        systems = groupings(gold, {}, systems={f"pred:{job.pred}": predicted})
    else:
        everything = [*LEXICAL_METHODS, *(NEEDS_MODEL if job.model else ())]
        methods = everything if ALL in job.methods else (job.methods or ["cascade", *NEEDS_MODEL[: bool(job.model)]])
        if job.model:  # a model that no method takes is a mistake, not a silent no-op
            from workflows.tracking.segmenter_model import require_segmentation_model

            require_segmentation_model(job.model, methods)
            notes = model_level_notes(job.model, [level for _, level in gold_levels(gold)])
        configs = {m: (dataclasses.replace(job.segment, method=m), job.missions) for m in methods}
        systems = groupings(gold, configs, session_scorer(job.model))
    scores = compare(gold, systems)
    if job.figure is not None:
        from workflows.figures import segmentation_bars

        segmentation_bars(scores, f"{storage.name(gt)}: {gold.height:,} queries", job.figure)
    return SegmentationScores(scores, compare_by_user_size(gold, systems), gold, read, notes)


def model_level_notes(uri: str, levels: Sequence[str]) -> tuple[str, ...]:
    """A note where the segmenter model at `uri` was trained on missions and the gold has
    sessions (`levels`): its `learned + model` row then scores runs of one mission as
    sessions (a breaker's Webis-SMC-12 model scored 0.753 pair F1 on Gayo-Avello's
    sessions, where one trained on them scores 0.894, without a word). () otherwise."""
    from workflows.tracking.segmenter_model import segmenter_level

    if segmenter_level(uri) == "missions" and "sessions" in levels:
        return (f"{uri} was trained on gold missions: it joins consecutive queries of one mission, so its sessions "
                "are runs of one mission, scored here against gold sessions",)  # fmt: skip
    return ()
