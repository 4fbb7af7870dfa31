"""`sessionflow ingest`: raw logs -> canonical events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import FORMAT_HELP, AddressOption, EngineOption, fail, peak_rss_mib
from workflows.cli.progress import out, row_progress, summary_table
from workflows.distributed.runtime import check_engine, ray_runtime

MapOption = Annotated[
    str | None,
    typer.Option("--map", help="Columns of a --format table: user=COL,time=COL,text=COL[,session=COL][,mission=COL]."),
]


def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Log files or directories (their files, by name), in order.")],
    format: Annotated[str, typer.Option("--format", "-f", help=f"Input format: {FORMAT_HELP}.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    map: MapOption = None,
    block_mb: Annotated[int, typer.Option(help="Read this many MiB at a time (bounds memory).")] = 64,
    engine: EngineOption = "ray",
    address: AddressOption = None,
) -> None:
    """Read raw logs into canonical events.

    Writes OUTPUT/events.parquet (row_id, source, user_id, ts, query, click_rank,
    click_url, gold_*), OUTPUT/rejected.parquet (row_id, source_file, line_no, raw,
    reason: every record that could not be read, with why) and OUTPUT/report.json.
    row_id counts records across the inputs in the order given. Fails if
    rows_in != rows_ok + rows_rejected.
    """
    from sessions.formats import FORMAT_NAMES, ColumnMap
    from sessions.ingest import ingest as run_ingest

    if format not in FORMAT_NAMES:
        raise fail(f"unknown --format {format!r}; choose one of {', '.join(FORMAT_NAMES)}")
    try:
        mapping = ColumnMap.parse(map) if map else None
        if check_engine(engine) == "ray":
            with ray_runtime(address):
                from workflows.distributed import data as ray_pipelines  # imports ray: after the runtime's settings

                report = ray_pipelines.ingest(inputs, format, output, mapping=mapping, block_bytes=block_mb << 20)
        else:
            with row_progress(f"ingest {format}") as progress:
                report = run_ingest(
                    inputs, format, output, mapping=mapping, block_bytes=block_mb << 20,
                    on_block=lambda path, parsed: progress.advance(0, parsed.rows_read),
                )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    out.print(summary_table(f"ingest {format}", ingest_rows(report.to_dict())))
    out.print(summary_table("", {"seconds": report.seconds, "peak RSS (MiB)": peak_rss_mib(), **report.outputs}))


def ingest_rows(report: dict) -> dict:
    """The row accounting of a report, for a summary table."""
    return {
        "rows in": report["rows_in"],
        "rows ok": report["rows_ok"],
        "rows rejected": report["rows_rejected"],
        **{f"  {reason}": n for reason, n in report["rejected_by_reason"].items()},
        "files": len(report["files"]),
    }
