"""The `sessionflow` command line.

sessionflow ingest ../shared/data/aol/aol-top1000-clicked.tsv.gz --format aol --output out/aol
sessionflow synth --users 1000 --rows 400000 --style aol --output out/synth.tsv.gz
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Annotated

import typer

from workflows.progress import console, row_progress, summary_table

app = typer.Typer(
    name="sessionflow",
    help="Find search sessions and missions in query and prompt logs, mine query pairs, "
    "train session and hierarchy encoders, and score whole logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

FORMAT_HELP = "aol, webis-smc, gayo-avello, diffusiondb, midjourney or table"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Log files or directories (their files, by name), in order.")],
    format: Annotated[str, typer.Option("--format", "-f", help=f"Input format: {FORMAT_HELP}.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    map: Annotated[
        str | None,
        typer.Option(
            "--map", help="Columns of a --format table: user=COL,time=COL,text=COL[,session=COL][,mission=COL]."
        ),
    ] = None,
    block_mb: Annotated[int, typer.Option(help="Read this many MiB at a time (bounds memory).")] = 64,
) -> None:
    """Read raw logs into canonical events.

    Writes OUTPUT/events.parquet (row_id, source, user_id, ts, query, click_rank,
    click_url, gold_*), OUTPUT/rejected.parquet (source_file, line_no, raw, reason:
    every record that could not be read, with why) and OUTPUT/report.json. row_id
    counts records across the inputs in the order given. Fails if
    rows_in != rows_ok + rows_rejected.
    """
    from sessions.formats import FORMAT_NAMES, ColumnMap
    from sessions.ingest import ingest as run_ingest

    if format not in FORMAT_NAMES:
        raise _fail(f"unknown --format {format!r}; choose one of {', '.join(FORMAT_NAMES)}")
    try:
        mapping = ColumnMap.parse(map) if map else None
        with row_progress(f"ingest {format}") as progress:
            report = run_ingest(
                inputs, format, output, mapping=mapping, block_bytes=block_mb << 20,
                on_block=lambda path, parsed: progress.advance(0, parsed.rows_read),
            )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise _fail(str(err)) from None
    rows = {
        "rows in": report.rows_in,
        "rows ok": report.rows_ok,
        "rows rejected": report.rows_rejected,
        **{f"  {reason}": n for reason, n in report.rejected_by_reason.items()},
        "files": len(report.files),
        "seconds": report.seconds,
        "peak RSS (MiB)": round(_peak_rss_mib()),
        **report.outputs,
    }
    console.print(summary_table(f"ingest {format}", rows))


@app.command()
def synth(
    users: Annotated[int, typer.Option(help="Number of users.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file: .tsv/.txt[.gz] (aol) or .parquet (prompt).")
    ],
    rows: Annotated[int | None, typer.Option(help="Total rows (default: each user's activity drawn alone).")] = None,
    style: Annotated[str, typer.Option(help="aol: AOL TSV with clicks; prompt: DiffusionDB metadata.parquet.")] = "aol",
    seed: Annotated[int, typer.Option(help="Random seed; the same arguments give the same log.")] = 0,
) -> None:
    """Generate a synthetic log with known sessions, missions and reformulations.

    Topics and reformulations come from WordNet's nouns (specialise = hyponym,
    generalise = hypernym, lateral = sibling) plus typos, added or dropped terms
    and repeated navigational queries. Gold columns: gold_session, gold_mission,
    gold_depth (WordNet depth of the query's concept), gold_reformulation.
    """
    from hierarchies.wordnet import noun_concepts, noun_graph
    from sessions.synth import SynthConfig, Taxonomy, write_log
    from sessions.synth.generate import user_budgets

    try:
        cfg = SynthConfig(users=users, rows=rows, style=style, seed=seed)  # type: ignore[arg-type]
    except ValueError as err:
        raise _fail(str(err)) from None
    graph = noun_graph()
    taxonomy = Taxonomy(noun_concepts(graph), graph.edges)
    total = rows if rows is not None else int(user_budgets(cfg).sum())
    with row_progress(f"synth {style}", total=total) as progress:
        summary = write_log(cfg, taxonomy, output, on_chunk=lambda chunk: progress.advance(0, chunk.rows.height))
    table = {
        "rows": summary.rows,
        "users": summary.users,
        "sessions": summary.sessions,
        "missions": summary.missions,
        "seconds": summary.seconds,
        "peak RSS (MiB)": round(_peak_rss_mib()),
        "output": summary.path,
    }
    console.print(summary_table(f"synth {style}", table))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
