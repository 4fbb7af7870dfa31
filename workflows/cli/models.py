"""`sessionflow compare` and `sessionflow promote`: the registered models in MLflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from workflows.cli.common import fail
from workflows.cli.progress import out


def compare(
    experiment: Annotated[
        str, typer.Option(help="MLflow experiment: session-model or hierarchy-model [session-model].")
    ] = "session-model",
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics to show [the experiment's key metrics].")
    ] = None,
    params: Annotated[
        str | None, typer.Option(help="Comma-separated parameters to show [the key ones that differ].")
    ] = None,
    max_runs: Annotated[int, typer.Option(help="Show the latest this many runs [20].")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The runs of an experiment side by side: the parameters that differ between them,
    the key metrics, the version each registered and which one holds `champion`.

    Reads the store of MLFLOW_TRACKING_URI (default: ./mlflow.db). For curves and
    artifacts open the same store in the MLflow UI: mlflow ui --backend-store-uri
    sqlite:///mlflow.db.
    """
    from workflows.tracking.compare import compare as compare_runs
    from workflows.tracking.store import use_store

    try:
        chosen = [m.strip() for m in metrics.split(",")] if metrics else None
        shown = [p.strip() for p in params.split(",")] if params else None
        result = compare_runs(use_store(), experiment, max_runs, chosen, shown)
    except ValueError as err:
        raise fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    champion = f"* = champion, version {result.champion}" if result.champion else "no champion"
    table = Table(title=f"{experiment}: {len(result.rows)} runs, newest first ({champion})", box=box.SIMPLE_HEAD)
    for header in ("run", "started (UTC)", "status", "version", *result.params, *result.metrics):
        table.add_column(header, justify="right" if header in result.metrics else "left", no_wrap=True)
    for row in result.rows:
        started = datetime.fromtimestamp(row["started"] / 1000, UTC).strftime("%m-%d %H:%M")
        version = "" if row["version"] is None else f"v{row['version']}" + ("*" if row["champion"] else "")
        table.add_row(
            row["run_id"][:8], started, row["status"].lower(), version,
            *(str(row[p]) if row[p] is not None else "" for p in result.params),
            *(_number(row[m]) for m in result.metrics),
        )  # fmt: skip
    # as wide as the table needs: a comparison cut at the terminal's edge compares nothing
    width = Measurement.get(out, out.options.update_width(10_000), table).maximum
    Console(width=max(out.width, width)).print(table)


def promote(
    name: Annotated[str, typer.Argument(help="Registered model: session-model or hierarchy-model.")],
    version: Annotated[str, typer.Argument(help="The version to give the `champion` alias.")],
) -> None:
    """Give VERSION of the registered model NAME the `champion` alias, whatever its
    metrics (training moves it only to a better run on the same data)."""
    from mlflow.exceptions import MlflowException

    from workflows.tracking.store import CHAMPION, use_store
    from workflows.tracking.store import promote as set_champion

    client = use_store()
    try:
        before = client.get_model_version_by_alias(name, CHAMPION).version
    except MlflowException:
        before = None
    try:
        set_champion(client, name, version)
    except MlflowException as err:
        raise fail(f"{name} version {version}: {err.message}") from None
    was = f" (was version {before})" if before is not None else ""
    out.print(f"models:/{name}@{CHAMPION} -> models:/{name}/{version}{was}")


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if abs(value) < 1000 and value != int(value) else f"{value:,.0f}"
