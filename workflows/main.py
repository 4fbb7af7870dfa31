"""The `sessionflow` console script: the stop handlers first, then the command line.

`workflows.cli` imports every job's config (typer, rich, polars, ...: a second or more),
so a stop during those imports came before any handler: Ctrl-C printed a
KeyboardInterrupt traceback from an import, and SIGTERM ended the process with no
word. This module imports nothing heavy before installing them.
"""

from __future__ import annotations

import sys

from workflows.errors import signals_noted, stop_on_signals, stop_told, tell_stop


def main() -> None:
    """Run the command line. A stop anywhere ends it as a stop during a job does (where
    what the job started is ended first: `workflows.cli.options`): `stopped by SIGTERM`
    or `stopped by Ctrl-C` on stderr, exit 143 or 130 (`workflows.errors.tell_stop`),
    also while the command line is imported or parsed."""
    stop_on_signals()
    try:
        from workflows.cli import app

        app(prog_name="sessionflow")  # its name in help and errors, run as `python -m workflows` too
    except KeyboardInterrupt:  # (`Stopped` is one) before typer's handling began
        sys.exit(tell_stop())
    except SystemExit:
        if signals_noted() and not stop_told():  # a stop typer caught: it ends one as exit 130, without a word
            sys.exit(tell_stop())
        raise
