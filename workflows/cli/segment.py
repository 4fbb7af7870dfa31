"""`sessionflow segment`: canonical events -> sessions and missions."""

from __future__ import annotations

from workflows.cli.common import engine_text, peak_rss_mib
from workflows.cli.ingest import ingest_rows
from workflows.cli.progress import out, rows_done, summary_table
from workflows.jobs.segment import SegmentJob


def segment(job: SegmentJob) -> None:
    """Cut each user's queries into sessions and link sessions into missions.

    Writes OUTPUT/sessions.parquet (row_id, user_id, ts, query, session_id,
    session_seq, mission_id) for every accepted row, OUTPUT/rejected.parquet and
    OUTPUT/report.json (the ingest accounting, sessions, missions, resolved config).
    Methods: time (gap threshold), lexical (3-gram Jaccard and term overlap with the
    previous query and the session so far), cascade (short gaps join, long gaps
    break, lexical evidence decides in between; after Hagen et al. 2013), learned
    (--model decides each consecutive pair: a segmenter model from `train
    segmenter`, or a session model's p_same). With
    --engine ray users are hash-shuffled into buckets and segmented by Ray tasks;
    --engine local runs one process; both give the same sessions. --engine auto (the
    default) runs inputs of at most 16 MiB of text in one process, larger ones and any
    job given a cluster on Ray.
    """
    from workflows.jobs.segment import run

    with rows_done(f"segment ({job.segment.method})", show=job.engine != "ray") as on_rows:  # Ray: Ray's bars
        report = run(job, on_rows)
    rows = {
        **ingest_rows(report.to_dict()),
        "engine": engine_text(report.config),
        "sessions": report.sessions,
        "missions": report.missions,
        "seconds": report.seconds,
        "peak RSS (MiB)": peak_rss_mib(),
    }
    out.print(summary_table(f"segment ({job.segment.method})", {**rows, **report.outputs}))
