"""What the commands share: error exits, resource readings, option texts."""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

import typer

from workflows.cli.progress import console

FORMAT_HELP = "aol, webis-smc, gayo-avello, diffusiondb, midjourney or table"


def engine_text(record: Mapping[str, Any]) -> str:
    """The engine a job ran on and why, from its report's `config`: `engine` and
    `engine_reason` (`workflows.jobs.common.choose_engine`)."""
    return f"{record['engine']} ({record['engine_reason']})"


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def fail(message: str) -> typer.Exit:
    """Print an error and give the exit to raise (status 2, as for bad usage)."""
    console.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)
