"""`sessionflow synth`: synthetic logs with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import fail, peak_rss_mib
from workflows.cli.progress import out, row_progress, summary_table


def synth(
    users: Annotated[int, typer.Option(help="Number of users.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output: .tsv/.txt[.gz] (aol) or .parquet (prompt).")],
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
    from synth import SynthConfig, Taxonomy, write_log
    from synth.generate import user_budgets

    try:
        cfg = SynthConfig(users=users, rows=rows, style=style, seed=seed)  # type: ignore[arg-type]
    except ValueError as err:
        raise fail(str(err)) from None
    taxonomy = Taxonomy.wordnet()
    total = rows if rows is not None else int(user_budgets(cfg).sum())
    with row_progress(f"synth {style}", total=total) as progress:
        summary = write_log(cfg, taxonomy, output, on_chunk=lambda chunk: progress.advance(0, chunk.rows.height))
    table = {
        "rows": summary.rows,
        "users": summary.users,
        "sessions": summary.sessions,
        "missions": summary.missions,
        "seconds": summary.seconds,
        "peak RSS (MiB)": peak_rss_mib(),
        "output": summary.path,
    }
    out.print(summary_table(f"synth {style}", table))
