"""What the commands share: error exits, resource readings, option texts."""

from __future__ import annotations

import resource

import typer

from workflows.cli.progress import console

FORMAT_HELP = "aol, webis-smc, gayo-avello, diffusiondb, midjourney or table"


def engine_text(engine: str, why: str) -> str:
    """The engine a job ran on and why (`workflows.jobs.common.choose_engine`), for a summary table."""
    return f"{engine} ({why})"


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def fail(message: str) -> typer.Exit:
    """Print an error and give the exit to raise (status 2, as for bad usage)."""
    console.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)
