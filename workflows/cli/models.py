"""`sessionflow compare` and `sessionflow promote`: the registered models in MLflow."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from workflows.cli.common import echo_json
from workflows.cli.progress import out
from workflows.jobs.registry import CompareJob, PromoteJob


def compare(
    job: CompareJob, as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False
) -> None:
    """The runs of an experiment side by side: the parameters that differ between them,
    the key metrics, the version each registered and which one holds `champion`.

    Reads the store of MLFLOW_TRACKING_URI (default: ./mlflow.db). For curves and
    artifacts open the same store in the MLflow UI: mlflow ui --backend-store-uri
    sqlite:///mlflow.db.
    """
    from workflows.jobs.registry import compare as compare_runs

    result = compare_runs(job)
    experiment = job.experiment
    if as_json:
        echo_json(result.to_dict())
        return
    champion = f"* = champion, version {result.champion}" if result.champion else "no champion"
    table = Table(title=f"{experiment}: {len(result.rows)} run(s), newest first ({champion})", box=box.SIMPLE_HEAD)
    for header in ("run", "started (UTC)", "status", "version", *result.params, *result.metrics):
        table.add_column(header, justify="right" if header in result.metrics else "left", no_wrap=True)
    metrics = {m: _numbers([row[m] for row in result.rows]) for m in result.metrics}
    for i, row in enumerate(result.rows):
        started = datetime.fromtimestamp(row["started"] / 1000, UTC).strftime("%m-%d %H:%M")
        version = "" if row["version"] is None else f"v{row['version']}" + ("*" if row["champion"] else "")
        table.add_row(
            row["run_id"][:8], started, row["status"].lower(), version,
            *("" if row[p] in (None, "None") else str(row[p]) for p in result.params),  # MLflow logs None as "None"
            *(metrics[m][i] for m in result.metrics),
        )  # fmt: skip
    if result.not_shown:
        table.caption = f"{result.not_shown} more metric(s) logged: choose with --metrics NAME,NAME"
    # as wide as the table needs: a comparison cut at the terminal's edge compares nothing
    width = Measurement.get(out, out.options.update_width(10_000), table).maximum
    Console(width=max(out.width, width), markup=False).print(table)


def promote(job: PromoteJob) -> None:
    """Give VERSION of the registered model NAME the `champion` alias, whatever its
    metrics (training moves it only to a better run on the same data). The project's
    own names take a model of their own kind only (a session model is not made the
    champion of hierarchy-model); a name of your own takes any model."""
    from workflows.jobs.registry import promote as set_champion

    alias, version, before = set_champion(job)  # `01` is version 1: it was "-> .../01 (was version 1)"
    was = "" if before is None else " (already the champion)" if str(before) == version else (
        f" (was version {before})")  # fmt: skip
    out.print(f"models:/{job.name}@{alias} -> models:/{job.name}/{version}{was}")


def _numbers(values: list[float | None]) -> list[str]:
    """One metric's column, in one format: whole numbers (steps, counts) as such where
    every value is whole; else three decimals (a λ of 3 beside one of 3.9: 3.000,
    3.900), one where a value reaches 1,000 (pairs/s of 1,997.3 beside 50.5, never
    1,997 beside 50.452, which reads as fifty thousand)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    whole = all(v == int(v) for v in finite)
    decimals = 0 if whole else 1 if any(abs(v) >= 1000 for v in finite) else 3

    def cell(v: float | None) -> str:
        if v is None or not math.isfinite(v):
            return "" if v is None else str(v)  # nan, inf: as logged
        return f"{v:,.{decimals}f}"

    return [cell(v) for v in values]
