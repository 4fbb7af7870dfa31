"""`sessionflow annotate`: the specificity of every query and the reformulation type of
every consecutive pair of a session, from a hierarchy model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sessions.reformulation import DEFAULT_THRESHOLD
from workflows.cli.common import FORMAT_HELP, fail, peak_rss_mib
from workflows.cli.ingest import MapOption, ingest_rows
from workflows.cli.progress import out, summary_table

HierarchyModelOption = Annotated[
    str,
    typer.Option(help="A hierarchy model: models:/hierarchy-model@champion, models:/NAME/VERSION or runs:/..."),
]
ThresholdOption = Annotated[
    float,
    typer.Option(
        help=f"Specificity change beyond which a pair is a specialisation or generalisation [{DEFAULT_THRESHOLD}]."
    ),
]


def annotate(
    inputs: Annotated[
        list[Path], typer.Argument(help="A `segment` output directory, raw log files, or an `ingest` directory.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    model: HierarchyModelOption = "models:/hierarchy-model@champion",
    format: Annotated[str | None, typer.Option("--format", "-f", help=f"Format of raw logs: {FORMAT_HELP}.")] = None,
    map: MapOption = None,
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
) -> None:
    """Read a log for specialisation and generalisation with a hierarchy model.

    Each query gets a specificity: its distance from the origin of the model's ball
    (general texts near 0). Each query after the first of a session gets a
    reformulation type against the query before it: repeat (the same normalised
    text), specialisation (specificity up by more than --threshold),
    generalisation (down by more than it) or lateral. Sessions come from a
    `segment` output directory, or are found with the default cascade first.
    Writes OUTPUT/annotations.parquet (the session columns plus specificity and
    reformulation, a row per accepted event) and OUTPUT/report.json. One process:
    for whole logs on a cluster see `sessionflow score`.
    """
    from sessions.formats import ColumnMap
    from workflows.jobs.annotate import annotate_logs

    try:
        mapping = ColumnMap.parse(map) if map else None
        report = annotate_logs(inputs, format, output, model, threshold, mapping)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    part = report["annotate"]
    rows = {**ingest_rows(report), **{f"queries: {t}": n for t, n in sorted(part["reformulations"].items())},
            "seconds": part["seconds"], "peak RSS (MiB)": peak_rss_mib(),
            "annotations.parquet": report["outputs"]["annotations.parquet"]}  # fmt: skip
    out.print(summary_table(f"annotate ({model}, threshold {threshold})", rows))
