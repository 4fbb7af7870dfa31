"""`sessionflow ingest`: raw logs -> canonical events."""

from __future__ import annotations

from workflows.cli.common import engine_text, peak_rss_mib
from workflows.cli.progress import out, rows_done, summary_table
from workflows.jobs.ingest import IngestJob


def ingest(job: IngestJob) -> None:
    """Read raw logs into canonical events.

    Writes OUTPUT/events.parquet (row_id, source, user_id, ts, query, click_rank,
    click_url, gold_*), OUTPUT/rejected.parquet (row_id, source_file, line_no, raw,
    reason: every record that could not be read, with why) and OUTPUT/report.json.
    row_id counts records across the inputs in the order given. Fails if
    rows_in != rows_ok + rows_rejected.
    """
    from workflows.jobs.ingest import run

    with rows_done(f"ingest {job.format}", show=job.engine != "ray") as on_rows:  # Ray: Ray's bars
        report = run(job, on_rows)
    out.print(summary_table(f"ingest {job.format}", ingest_rows(report.to_dict())))
    out.print(summary_table("", {"engine": engine_text(report.config), "seconds": report.seconds,
                                 "peak RSS (MiB)": peak_rss_mib(), **report.outputs}))  # fmt: skip


def ingest_rows(report: dict) -> dict:
    """The row accounting of a report, for a summary table: rows by reason (with the
    lines they took, where more than one a row: a quote left open takes the lines after
    it), then what the reading noted (`common.reading_notes`: skipped files and lines,
    files none of whose records was read, damaged files, how a table's fields were read,
    user ids written as pandas writes floats, ...)."""
    from workflows.jobs.common import reading_notes

    rejected, lines = report.get("rejected_by_reason", {}), report.get("rejected_lines_by_reason", {})
    rows = {
        "rows in": report["rows_in"],
        "rows ok": report["rows_ok"],
        "rows rejected": report["rows_rejected"],
        **{f"  {reason}": _with_lines(n, lines.get(reason, n)) for reason, n in rejected.items()},
        **{f"lines skipped ({kind})": n for kind, n in report.get("skipped_lines", {}).items()},
        **{f"times in a repeated hour, read {how}": n for how, n in report.get("repeated_hour", {}).items() if n},
        **({"files": len(report["files"])} if "files" in report else {}),  # a table of events has none
    }
    return rows | {f"  {what}": said for what, said in reading_notes(report).items()}


def _with_lines(rows: int, lines: int) -> int | str:
    """A count of rejected rows, with the lines they took where more than one a row."""
    return rows if lines <= rows else f"{rows:,} ({lines:,} lines of the file)"
