"""`sessionflow evaluate ...`: scores against ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from workflows.commands.segment import (
    CLI_METHODS,
    BreakOption,
    ConfigOption,
    ContainOption,
    GapOption,
    JaccardOption,
    JoinOption,
    MissionJaccardOption,
    MissionWindowOption,
    OverlapOption,
    configs,
)
from workflows.common import fail
from workflows.progress import out

app = typer.Typer(help="Score results against ground truth.", no_args_is_help=True, rich_markup_mode=None)

GT_FORMATS = ("webis-smc", "gayo-avello")
METRIC_HEADERS = {
    "precision": "P", "recall": "R", "f1": "F1", "rand": "Rand",
    "boundary_precision": "bP", "boundary_recall": "bR", "boundary_f1": "bF1",
}  # fmt: skip


@app.command()
def segmentation(
    gt: Annotated[Path, typer.Option("--gt", help="A ground-truth file.")],
    format: Annotated[str, typer.Option("--format", "-f", help="webis-smc (missions) or gayo-avello (sessions).")],
    pred: Annotated[
        Path | None, typer.Option("--pred", help="A `segment` output directory to score (instead of --method).")
    ] = None,
    method: Annotated[
        list[str] | None, typer.Option("--method", help="time, lexical, cascade or all; repeatable [cascade].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object.")] = False,
    config: ConfigOption = None,
    gap_minutes: GapOption = None,
    join_within_s: JoinOption = None,
    break_after_minutes: BreakOption = None,
    min_overlap: OverlapOption = None,
    min_jaccard: JaccardOption = None,
    min_containment: ContainOption = None,
    mission_min_jaccard: MissionJaccardOption = None,
    mission_window: MissionWindowOption = None,
) -> None:
    """Pair-counting P/R/F1, Rand index and boundary P/R/F1 of sessions and missions.

    Scores per user over all pairs of a user's queries (positive: same gold
    session or mission), next to time-gap baselines of 5, 15, 26, 30 and 60
    minutes. Gayo-Avello has gold sessions, Webis-SMC-12 gold missions; both
    levels of every system are scored against the gold the file has.
    """
    from sessions.ingest import read_logs
    from sessions.io import MemorySink, read_table
    from sessions.metrics import BASELINE_GAP_MINUTES, compare
    from sessions.pipeline import SESSIONS_FILE, sessions_with_missions
    from sessions.segment import SegmentConfig, segment

    if format not in GT_FORMATS:
        raise fail(f"--format {format!r}: choose one of {', '.join(GT_FORMATS)}")
    if pred is not None and method:
        raise fail("--pred and --method exclude each other: score a segmentation, or run methods")
    try:
        events, rejected = MemorySink(), MemorySink()
        read_logs([gt], format, events, rejected)
        gold = events.frame()
        systems = {}
        if pred is not None:
            systems[f"pred:{pred}"] = read_table(pred / SESSIONS_FILE)
        else:
            methods = list(CLI_METHODS) if "all" in (method or []) else (method or ["cascade"])
            for m in methods:
                seg, missions = configs(
                    config, m, gap_minutes, join_within_s, break_after_minutes, min_overlap, min_jaccard,
                    min_containment, mission_min_jaccard, mission_window,
                )  # fmt: skip
                if seg.method not in CLI_METHODS:
                    raise ValueError(f"--method {m}: choose time, lexical, cascade or all")
                systems[m] = sessions_with_missions(gold, seg, missions)
        for minutes in BASELINE_GAP_MINUTES:
            systems[f"time-gap {minutes} min"] = segment(gold, SegmentConfig(method="time", gap_minutes=minutes))
        scores = compare(gold, systems)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    if as_json:
        result: dict = {}
        for row in scores.iter_rows(named=True):
            result.setdefault(row["system"], {})[row["level"]] = {k: round(row[k], 4) for k in METRIC_HEADERS}
        typer.echo(json.dumps({"gold": scores["gold"][0], "file": str(gt), "rows": gold.height, "scores": result}))
        return
    users = gold["user_id"].n_unique()
    table = Table(title=f"{gt.name}: {gold.height:,} queries, {users} users, gold {scores['gold'][0]}")
    table.add_column("system", no_wrap=True)
    table.add_column("level")
    for header in METRIC_HEADERS.values():
        table.add_column(header, justify="right")
    for row in scores.iter_rows(named=True):
        table.add_row(row["system"], row["level"], *(f"{row[k]:.3f}" for k in METRIC_HEADERS))
    out.print(table)
