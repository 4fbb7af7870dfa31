"""`sessionflow annotate` and `evaluate reformulation`: specificity and reformulation
types of the queries of a log, from a registered hierarchy model (one process).

    annotate_logs(["aol.tsv.gz"], "aol", "out/annotated", "models:/hierarchy-model@champion")

Sessions come from a `sessionflow segment` output directory or a sessions table of
one's own (a Parquet file of `segment`'s columns, given by its path without --format or
in a directory as `sessions.parquet`, as `mine` reads it), or are found first (the
default cascade) when raw logs or an ingest directory are given.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sessions import storage
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.ingest import REPORT_FILE
from sessions.io import (
    ParquetSink,
    claim_output,
    job_output,
    parquet_rows,
    read_json,
    remove_table,
    scan_table,
    write_report,
)
from sessions.pipeline import SESSIONS_FILE, is_ingest_output, load_events, segment_logs
from sessions.reformulation import (
    DEFAULT_RATIO,
    JUDGED,
    RATIO_GRID,
    REFORMULATIONS,
    Geometry,
    TermCount,
    accuracy,
    annotate,
    best_ratio,
    check_ratio,
    session_starts,
)
from sessions.segment import user_time_order
from workflows.jobs import common

ANNOTATIONS_FILE = "annotations.parquet"
SEGMENT_RUN_KEYS = ("outputs", "config", "seconds", "command", "versions")  # of a segment report: that run's own


def hierarchy_geometry(uri: str) -> Geometry:
    """A logged hierarchy model as a `sessions.reformulation.Geometry` (each distinct text encoded once a call)."""
    from workflows.tracking.hierarchy_model import HierarchyGeometry
    from workflows.tracking.store import use_store

    use_store(existing=True)
    return HierarchyGeometry.load(uri)


def sessions_input(inputs: Sequence[str | Path], fmt: str | None) -> tuple[str, dict | None] | None:
    """The sessions table that annotate reads as it is, not segmented again, when `inputs`
    is one: (its location, the report of the `segment` job that wrote it, or None for a
    table of one's own). A `segment` output directory; a directory without a report that
    holds `sessions.parquet` as a file (written back by pandas); a Parquet file given by
    its path without `fmt` that has `segment`'s `session_id` column (with --format table
    it is a log, segmented). None otherwise: the inputs are logs. IncompleteOutputError
    for a directory whose job did not finish. Where it is, only: a table of one's own is
    checked where it is read (`check_own_sessions`), once."""
    from sessions.formats.table import named_table_kind

    if len(inputs) != 1:
        return None
    given = str(inputs[0])
    if storage.is_dir(given):
        if not storage.exists(storage.join(given, SESSIONS_FILE)):
            parent = storage.parent(storage.absolute(given))
            if storage.name(given) == SESSIONS_FILE and storage.exists(storage.join(parent, REPORT_FILE)):
                job_output(given, SESSIONS_FILE, own_file=True)  # a segment output's table, said as `mine` says it
                # (it said "raw logs need --format": a new user's find)
            return None
        table = job_output(given, SESSIONS_FILE, own_file=True)
        if storage.exists(report := storage.join(given, REPORT_FILE)):
            return table, read_json(report)
    elif fmt is None and storage.is_file(given) and named_table_kind(given) == "parquet":
        table = given
        if "session_id" not in scan_table(table).collect_schema():
            return None  # a log in Parquet, which needs its --format
    else:
        return None
    return table, None


def check_own_sessions(table: str, given: str) -> None:
    """ValueError in one line for a sessions table of one's own (`sessions_input` of the
    input `given`) that `segment` would not write (`sessions.pairs.check_sessions`); a
    file given by its path may be a log in Parquet instead, which its --format would read."""
    from sessions.pairs import check_sessions

    try:
        check_sessions(scan_table(table), table, "annotate")
    except ValueError as err:
        if storage.is_dir(given):  # its sessions.parquet: a sessions table, whatever it holds
            raise
        raise ValueError(f"{err}; or, a log, give its --format (table, with a --map)") from None


def annotate_logs(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    model_uri: str,
    ratio: float = DEFAULT_RATIO,
    options: ReadOptions = DEFAULT_READ,
) -> dict:
    """Sessions of `inputs` (see the module) -> `output/annotations.parquet`: the session
    rows plus `specificity` and `reformulation`; the report gains an `annotate` part.

    ValueError / FileNotFoundError for inputs, an output or a model that will not do (as
    `segment_logs`, `claim_output` and `hierarchy_geometry` raise them); RuntimeError when
    the annotated rows do not add up to the accepted events (a bug, not a user's error)."""
    from sessions.missions import MissionConfig
    from sessions.segment import SegmentConfig
    from workflows.tracking.store import pinned

    start, out = time.perf_counter(), str(output)
    given = sessions_input(inputs, fmt)
    if given is None:
        remove_table(storage.join(out, ANNOTATIONS_FILE))  # its own, from a run before: segment_logs claims `out`
        segment_logs(inputs, fmt, out, SegmentConfig(), MissionConfig(), options=options)
        table = storage.join(out, SESSIONS_FILE)
        report = read_json(storage.join(out, REPORT_FILE))
        storage.remove(storage.join(out, REPORT_FILE))  # until the annotations are there too
    else:
        table, segmented = given
        if segmented is None:  # a table of one's own, checked before the output is claimed
            check_own_sessions(table, str(inputs[0]))
        claim_output(out, ANNOTATIONS_FILE, inputs=inputs, also=[SESSIONS_FILE])
        if segmented is not None:  # the segment output's accounting of rows stands; that job's own run named apart
            report = segmented
            report["segmented"] = {"output": str(inputs[0]), **{key: report.pop(key, None) for key in SEGMENT_RUN_KEYS}}
        else:  # a sessions table of one's own: every row is a segmented event, none rejected
            rows = parquet_rows(table)
            report = {"rows_in": rows, "rows_ok": rows, "rows_rejected": 0, "source": table}
        report["outputs"] = {REPORT_FILE: storage.join(out, REPORT_FILE)}
    sessions = user_time_order(scan_table(table).collect())
    annotated = annotate(sessions, hierarchy_geometry(model_uri), ratio)
    with ParquetSink(storage.join(out, ANNOTATIONS_FILE), annotated.schema) as sink:
        sink.write(annotated)
    if annotated.height != report["rows_ok"]:
        raise RuntimeError(f"{annotated.height} annotated rows for {report['rows_ok']} accepted events")
    counts = annotated["reformulation"].fill_null("start").value_counts()  # start: a session's first query
    report["annotate"] = {
        "model": model_uri, "model_run": pinned(model_uri), "ratio": ratio, "rows": annotated.height,
        "reformulations": {t: int(n) for t, n in counts.iter_rows() if t in (*REFORMULATIONS, "start")},
        # queries the model cannot read (`models.encoder.unread_texts`): no specificity, as `score` counts them
        "unread_texts": annotated["specificity"].null_count(),
        "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip
    report["outputs"] = {ANNOTATIONS_FILE: storage.join(out, ANNOTATIONS_FILE), **report["outputs"]}
    write_report(report, out)
    return report


def gold_sessions(log: str | Path, fmt: str) -> pl.DataFrame:
    """A synthetic log's rows in its gold sessions: session_id = gold_session, and gold_reformulation."""
    columns = ("row_id", "user_id", "ts", "query", "gold_session", "gold_reformulation")
    with tempfile.TemporaryDirectory() as scratch:
        events, _ = load_events([log], fmt, scratch, columns=columns)
    if events["gold_reformulation"].null_count() == events.height:
        raise ValueError(f"{log}: no gold_reformulation column (write one with `sessionflow synth`)")
    if not events["gold_reformulation"].is_in(JUDGED).any():  # every score would be 0 of 0
        raise ValueError(f"{log}: no query in it is a {', '.join(JUDGED[:-1])} or {JUDGED[-1]} reformulation of the "
                         "one before it in its gold session: nothing to judge (a log of sessions of two or more "
                         "queries has them)")  # fmt: skip
    return user_time_order(events).rename({"gold_session": "session_id"})


def evaluate_reformulations(
    log: str | Path,
    model_uri: str,
    fmt: str = "aol",
    tune_on: str | Path | None = None,
    ratio: float = DEFAULT_RATIO,
) -> dict[str, dict]:
    """Reformulation types against the gold of a synthetic log, in its gold sessions (so
    that only the types are judged): from the hierarchy model at `ratio`, from the
    number of terms (`TermCount`, which no ratio changes), and always `lateral` (the
    majority type). With `tune_on` (another synthetic log) the model's ratio is the best
    of `RATIO_GRID` there, and the model's `ratio_at_grid_end` says whether that best is
    one of the grid's ends (the best may then lie beyond it). Per method: `ratio` and
    `sessions.reformulation.accuracy`."""
    test = gold_sessions(log, fmt)  # the logs are checked before the model loads
    tuning = gold_sessions(tune_on, fmt) if tune_on is not None else None
    model = hierarchy_geometry(model_uri)
    if tuning is not None:
        ratio = best_ratio(tuning, model)
    tuned = {"ratio_at_grid_end": ratio in (RATIO_GRID[0], RATIO_GRID[-1])} if tuning is not None else {}
    results = {
        "hierarchy model": {"ratio": ratio, **tuned, **accuracy(annotate(test, model, ratio))},
        "term count": {"ratio": None, **accuracy(annotate(test, TermCount()))},
    }
    lateral = test.with_columns(reformulation=pl.when(~session_starts(test)).then(pl.lit("lateral")))
    results["always lateral"] = {"ratio": None, **accuracy(lateral)}
    return results


HIERARCHY_MODEL_HELP = "a hierarchy model: models:/hierarchy-model@champion, models:/NAME/VERSION or runs:/..."
RATIO_HELP = (
    "in (0, 1]: terms replaced by ones further from the origin by at least this share of their distance are a "
    "specialisation (nearer: a generalisation; else lateral); 0.1 suits the default recipe, 0.3 a model with "
    "HiT's head"
)


@dataclass(frozen=True)
class AnnotateJob:
    """What `sessionflow annotate` reads, with which model, and where it writes."""

    inputs: tuple[str, ...] = common.inputs(
        "a `segment` output directory, a sessions table of your own (a Parquet file of segment's columns), raw log "
        "files, or an `ingest` directory"
    )
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    model: str = field(default="models:/hierarchy-model@champion", metadata={"help": HIERARCHY_MODEL_HELP})
    format: str | None = common.log_format()
    read: ReadOptions = common.read_options()
    ratio: float = field(default=DEFAULT_RATIO, metadata={"help": RATIO_HELP})

    def __post_init__(self) -> None:
        check_ratio(self.ratio)


def run(job: AnnotateJob) -> dict:
    """`annotate_logs` with the job's settings: the report (also OUTPUT/report.json).

    ValueError / FileNotFoundError for bad settings or inputs.
    """
    common.require(job.inputs, "inputs", argument=True)
    common.check_format(job.format, job.read, job.inputs)
    from workflows.tracking.store import require_model, use_store

    if len(job.inputs) == 1:
        given = job.inputs[0]  # an unfinished `segment` or `ingest` output: IncompleteOutputError from these
        ingested = is_ingest_output(given)
        another = storage.exists(storage.join(given, REPORT_FILE)) and not ingested
        table = sessions_input(job.inputs, job.format)
        if another and table is None:
            raise ValueError(f"{given}: the output of another job; annotate reads a `segment` output, a sessions "
                             "table, an `ingest` output or raw logs (with --format)")  # fmt: skip
        if table is not None or ingested:
            if ingested or another:
                kind = "an `ingest` output" if ingested else "a `segment` output"
                common.refuse_read_settings(given, kind, job.format, job.read)
            else:  # a table of one's own: no job's settings read it
                common.refuse_read_settings(given, "a sessions table", job.format, job.read, "by whatever wrote it")
    common.check_output(job.output, job.inputs)
    use_store(existing=True)
    require_model(job.model, ("hierarchy",))  # before the output is claimed
    output = common.output_dir(job.output, ANNOTATIONS_FILE, job.overwrite, job.inputs, also=[SESSIONS_FILE])
    report = annotate_logs(job.inputs, job.format, output, job.model, job.ratio, job.read)
    common.require_rows_read(report, output)
    return report
