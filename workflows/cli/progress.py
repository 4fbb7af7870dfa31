"""Progress bars and end-of-job summaries on the terminal (rich)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

# Neither console reads rich markup: what they print holds the user's own text (paths, queries, values
# typed), where `[bold]` or `[/]` is text; markup had dropped it, or ended in a MarkupError traceback.
# Style is given as such (`rich.text.Text`), never inside a string.
console = Console(stderr=True, markup=False)  # progress and errors
out = Console(width=None if sys.stdout.isatty() else 160, markup=False)  # results: summaries, tables (not cut in logs)


@contextmanager
def row_progress(description: str, total: int | None = None, unit: str = "rows") -> Iterator[Progress]:
    """A progress bar counting rows, or another `unit` (a spinner when the total is unknown); task id 0.
    Shown on a terminal only: where stderr is a file or a pipe, a bar that vanishes
    when done (`transient`) left a blank line there."""
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        progress.add_task(description, total=total)
        yield progress


def summary_table(title: str, rows: Mapping[str, Any]) -> Table:
    """A two-column table of a job's numbers: integers with thousands separators,
    floats to three decimals (the figures' precision in the docs), a mapping as
    `key: value` pairs and a list as its items, each so, the rest as text."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(key, _cell(value))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, Mapping):  # {'15 min': 5} as 15 min: 5
        return ", ".join(f"{key}: {_cell(item)}" for key, item in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(item) for item in value) or "none"
    return str(value)


@contextmanager
def rows_done(description: str, show: bool = True, unit: str = "rows") -> Iterator[Callable[[int], None] | None]:
    """A callback advancing a row progress bar (counting `unit`), shown from the first
    rows on (so that an error found before reading is not preceded by one); None when
    `show` is false (a Ray job shows Ray's own bars)."""
    if not show:
        yield None
        return
    with ExitStack() as stack:
        bar: list[Progress] = []

        def advance(n: int) -> None:
            if not bar:
                bar.append(stack.enter_context(row_progress(description, unit=unit)))
            bar[0].advance(0, n)

        yield advance
