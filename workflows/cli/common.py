"""What the commands share: error exits, resource readings, option texts."""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

import typer
from rich.text import Text

from workflows.cli.progress import console

FORMAT_HELP = "aol, webis-smc, gayo-avello, diffusiondb, midjourney or table"


def echo_json(value: Any) -> None:
    """Print `value` as strict JSON (RFC 8259) on one line: a float that is not finite
    (an ROC threshold of inf, a metric of nothing: nan) is written null, where
    `json.dumps` wrote Infinity / NaN, which strict parsers (jq, JavaScript) refuse."""
    import json
    import math

    def finite(v: Any) -> Any:
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, Mapping):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [finite(x) for x in v]
        return v

    typer.echo(json.dumps(finite(value), allow_nan=False))


def engine_text(record: Mapping[str, Any]) -> str:
    """The engine a job ran on and why, from its report's `config`: `engine` and
    `engine_reason` (`workflows.jobs.common.choose_engine`)."""
    return f"{record['engine']} ({record['engine_reason']})"


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def fail(message: str) -> typer.Exit:
    """Print an error and give the exit to raise (status 2, as for bad usage)."""
    say_error(message)
    return typer.Exit(code=2)


def say_error(message: str) -> None:
    """Print `error: message`, the one line every refusal of a command ends in."""
    console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True, highlight=False)
