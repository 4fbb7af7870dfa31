"""What the commands share: error exits, resource readings, option texts."""

from __future__ import annotations

import resource
from typing import Annotated

import typer

from workflows.cli.progress import console

FORMAT_HELP = "aol, webis-smc, gayo-avello, diffusiondb, midjourney or table"

EngineOption = Annotated[
    str, typer.Option(help="ray (a local Ray, or the cluster of --address / `ray job submit`) or local (one process).")
]
AddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster address (ray://host:10001 or host:6379); default: RAY_ADDRESS or a local Ray."),
]


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def fail(message: str) -> typer.Exit:
    """Print an error and give the exit to raise (status 2, as for bad usage)."""
    console.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)
