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
    it), lines and files that are not records or logs (skipped), each file none of whose
    records was read (NOT READ, with why: `common.file_not_read`, the words the file
    named alone would fail with; past `NOT_READ_SHOWN` of them, how many more), and each
    damaged file with where its stream broke off, and each table whose user ids are text as
    pandas writes floats, `FLOAT_USERS` (what a report holds of them: `mine` of sessions has rows alone)."""
    from workflows.jobs.common import file_not_read, none_read

    rejected, lines = report.get("rejected_by_reason", {}), report.get("rejected_lines_by_reason", {})
    not_read = [f for f in report.get("files", []) if none_read(f)]
    rows = {
        "rows in": report["rows_in"],
        "rows ok": report["rows_ok"],
        "rows rejected": report["rows_rejected"],
        **{f"  {reason}": _with_lines(n, lines.get(reason, n)) for reason, n in rejected.items()},
        **{f"lines skipped ({kind})": n for kind, n in report.get("skipped_lines", {}).items()},
        **{f"times in a repeated hour, read {how}": n for how, n in report.get("repeated_hour", {}).items() if n},
        **({"files": len(report["files"])} if "files" in report else {}),  # a table of events has none
    }
    elsewhere = [f for f in report.get("files", []) if not none_read(f)]  # those named NOT READ below say theirs
    if (
        sum(f.get("rejected_by_reason", {}).get("bad_encoding", 0) for f in elsewhere)
        if "files" in report
        else rejected.get("bad_encoding")
    ):  # a file of accented rows lost them quietly
        from sessions.records import not_utf8_advice

        rows["  bad_encoding: records not UTF-8 text"] = not_utf8_advice(b"")
    if report.get("rejected_by_reason", {}).get("backslash_escape"):  # Spark's, R's rows in an RFC 4180 file
        from workflows.jobs.common import BACKSLASH_ADVICE

        rows["  backslash_escape: quotes escaped with a backslash"] = BACKSLASH_ADVICE
    for skipped in report.get("skipped_files", []):
        rows[f"  skipped {skipped['path']}"] = skipped["reason"]
    rows.update({f"  NOT READ {f['path']}": file_not_read(f, report) for f in not_read[:NOT_READ_SHOWN]})
    if len(not_read) > NOT_READ_SHOWN:  # a directory of many: the first ones tell what the rest most likely are
        rows[f"  NOT READ {len(not_read) - NOT_READ_SHOWN:,} more files"] = (
            "none of their records read either: each is in report.json's files, rows_ok 0, with its first_rejected"
        )
    read_as: dict[str, list[str]] = {}  # how a TSV table was read: each file's, a count where many read alike
    floats: dict[str, int] = {}  # user ids as pandas' floats, by file: each file's, a count where many
    for f in report.get("files", []):
        if f.get("damage"):
            rows[f"  DAMAGED {f['path']}"] = f"read up to the damage: {f['damage']}"
        if f.get("read_as"):
            read_as.setdefault(f["read_as"], []).append(f["path"])
        if f.get("float_users"):  # a table's text is its text: 599381.0 is not the user 599381 of another file
            floats[f["path"]] = f["float_users"]
    for how, paths in read_as.items():
        named = paths if len(paths) <= 3 else [f"{len(paths):,} files ({paths[0]}, ...)"]
        rows.update({f"  {path}": how for path in named})
    if len(floats) > 3:
        first = next(iter(floats))
        floats = {f"{len(floats):,} files ({first}, ...)": sum(floats.values())}
    rows.update({f"  {path}: user ids": FLOAT_USERS.format(n) for path, n in floats.items()})
    return rows


NOT_READ_SHOWN = 5  # files none of whose records was read, named each with why; the rest counted
# A table whose user ids are text in whole-float notation (`Parsed.float_users`), as pandas writes an integer column
# with a missing value: read as written, they are other users than the same ids written as integers.
FLOAT_USERS = ("{:,} rows' user ids written as whole floats (599381.0), read as written: another user than 599381 "
               "(pandas writes an integer column with a missing value so: write it with .astype('Int64'), or as "
               "Parquet, where 599381.0 is 599381)")  # fmt: skip


def _with_lines(rows: int, lines: int) -> int | str:
    """A count of rejected rows, with the lines they took where more than one a row."""
    return rows if lines <= rows else f"{rows:,} ({lines:,} lines of the file)"
