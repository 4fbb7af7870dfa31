"""`sessionflow annotate` and `evaluate reformulation`: specificity and reformulation
types of the queries of a log, from a registered hierarchy model (one process).

    annotate_logs(["aol.tsv.gz"], "aol", "out/annotated", "models:/hierarchy-model@champion")

Sessions come from a `sessionflow segment` output directory, or are found first
(the default cascade) when raw logs or an ingest directory are given.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from sessions import storage
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.ingest import REPORT_FILE
from sessions.io import ParquetSink, claim_output, job_output, read_json, scan_table, write_report
from sessions.pipeline import SESSIONS_FILE, load_events, segment_logs
from sessions.reformulation import (
    DEFAULT_THRESHOLD,
    REFORMULATIONS,
    Specificity,
    accuracy,
    annotate,
    best_threshold,
    term_count,
)
from sessions.segment import user_time_order
from workflows.jobs import common

ANNOTATIONS_FILE = "annotations.parquet"
THRESHOLD_GRID = np.round(np.arange(0.0, 2.01, 0.05), 2)


def hierarchy_specificity(uri: str) -> Specificity:
    """The norm of a logged hierarchy model as a `Specificity` (each distinct text encoded once)."""
    from workflows.tracking.hierarchy_model import HierarchySpecificity
    from workflows.tracking.store import use_store

    use_store(existing=True)
    return HierarchySpecificity(uri)


def is_segment_output(path: str | Path) -> bool:
    """A directory written by `sessionflow segment` (its report marks it complete);
    IncompleteOutputError for one whose report is missing (its job did not finish)."""
    return storage.exists(storage.join(path, SESSIONS_FILE)) and bool(job_output(path, SESSIONS_FILE))


def annotate_logs(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    model_uri: str,
    threshold: float = DEFAULT_THRESHOLD,
    options: ReadOptions = DEFAULT_READ,
) -> dict:
    """Sessions of `inputs` (see the module) -> `output/annotations.parquet`: the session
    rows plus `specificity` and `reformulation`; the report gains an `annotate` part."""
    from sessions.missions import MissionConfig
    from sessions.segment import SegmentConfig

    start, out = time.perf_counter(), str(output)
    if len(inputs) == 1 and is_segment_output(inputs[0]):
        source = str(inputs[0])
        claim_output(out, ANNOTATIONS_FILE, inputs=inputs)
    else:
        segment_logs(inputs, fmt, out, SegmentConfig(), MissionConfig(), options=options)
        source = out
    report = read_json(storage.join(source, REPORT_FILE))
    if source == out:
        storage.remove(storage.join(out, REPORT_FILE))  # until the annotations are there too
    sessions = user_time_order(scan_table(storage.join(source, SESSIONS_FILE)).collect())
    annotated = annotate(sessions, hierarchy_specificity(model_uri), threshold)
    with ParquetSink(storage.join(out, ANNOTATIONS_FILE), annotated.schema) as sink:
        sink.write(annotated)
    if annotated.height != report["rows_ok"]:
        raise RuntimeError(f"{annotated.height} annotated rows for {report['rows_ok']} accepted events")
    counts = annotated["reformulation"].fill_null("start").value_counts()  # start: a session's first query
    report["annotate"] = {
        "model": model_uri, "threshold": threshold, "rows": annotated.height,
        "reformulations": {t: int(n) for t, n in counts.iter_rows() if t in (*REFORMULATIONS, "start")},
        "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip
    report.setdefault("outputs", {})[ANNOTATIONS_FILE] = storage.join(out, ANNOTATIONS_FILE)
    write_report(report, out)
    return report


def gold_sessions(log: str | Path, fmt: str) -> pl.DataFrame:
    """A synthetic log's rows in its gold sessions: session_id = gold_session, and gold_reformulation."""
    columns = ("row_id", "user_id", "ts", "query", "gold_session", "gold_reformulation")
    with tempfile.TemporaryDirectory() as scratch:
        events, _ = load_events([log], fmt, scratch, columns=columns)
    if events["gold_reformulation"].null_count() == events.height:
        raise ValueError(f"{log}: no gold_reformulation column (write one with `sessionflow synth`)")
    return user_time_order(events).rename({"gold_session": "session_id"})


def evaluate_reformulations(
    log: str | Path,
    model_uri: str,
    fmt: str = "aol",
    tune_on: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, dict]:
    """Reformulation types against the gold of a synthetic log, in its gold sessions (so
    that only the types are judged): the hierarchy model's norm, the number of terms,
    and always `lateral` (the majority type). With `tune_on` (another synthetic log)
    each method's threshold is the best there; else the model takes `threshold` and the
    term count 0.5 (one more term = more specific)."""
    methods: dict[str, tuple[Specificity, float]] = {
        "hierarchy model": (hierarchy_specificity(model_uri), threshold),
        "term count": (term_count, 0.5),
    }
    if tune_on is not None:
        dev = gold_sessions(tune_on, fmt)
        methods = {name: (s, best_threshold(annotate(dev, s, t), THRESHOLD_GRID)) for name, (s, t) in methods.items()}
    test = gold_sessions(log, fmt)
    results = {name: {"threshold": t, **accuracy(annotate(test, s, t))} for name, (s, t) in methods.items()}
    lateral = test.with_columns(specificity=pl.lit(0.0)).with_columns(
        reformulation=pl.when(pl.col("session_id") == pl.col("session_id").shift(1)).then(pl.lit("lateral"))
    )
    results["always lateral"] = {"threshold": None, **accuracy(lateral)}
    return results


HIERARCHY_MODEL_HELP = "a hierarchy model: models:/hierarchy-model@champion, models:/NAME/VERSION or runs:/..."
THRESHOLD_HELP = "specificity change beyond which a pair is a specialisation or generalisation"


@dataclass(frozen=True)
class AnnotateJob:
    """What `sessionflow annotate` reads, with which model, and where it writes."""

    inputs: tuple[str, ...] = common.inputs("a `segment` output directory, raw log files, or an `ingest` directory")
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    model: str = field(default="models:/hierarchy-model@champion", metadata={"help": HIERARCHY_MODEL_HELP})
    format: str | None = common.log_format()
    read: ReadOptions = common.read_options()
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata={"help": THRESHOLD_HELP})


def run(job: AnnotateJob) -> dict:
    """`annotate_logs` with the job's settings: the report (also OUTPUT/report.json).

    ValueError / FileNotFoundError for bad settings or inputs.
    """
    common.require(job.inputs, "inputs", argument=True)
    common.check_format(job.format, job.read)
    from workflows.tracking.store import require_model, use_store

    if len(job.inputs) == 1:
        is_segment_output(job.inputs[0])  # IncompleteOutputError for an unfinished one
    common.check_output(job.output, job.inputs)
    use_store(existing=True)
    require_model(job.model, ("hierarchy",))  # before the output is claimed
    output = common.output_dir(job.output, ANNOTATIONS_FILE, job.overwrite, job.inputs)
    report = annotate_logs(job.inputs, job.format, output, job.model, job.threshold, job.read)
    common.require_rows_read(report, output)
    return report
