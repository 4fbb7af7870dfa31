"""The `sessionflow` console script: the stop handlers first, then the command line.

`workflows.cli` imports every job's config (typer, rich, polars, ...: a second or more),
so a stop during those imports came before any handler: Ctrl-C printed a
KeyboardInterrupt traceback from an import, and SIGTERM ended the process with no
word. This module imports nothing heavy before installing them.
"""

from __future__ import annotations

import signal
import sys


def main() -> None:
    """Run the command line. A stop anywhere ends it as a stop during a job does (where
    what the job started is ended first: `workflows.cli.options`): `stopped by SIGTERM`
    or `stopped by Ctrl-C` on stderr, exit 143 or 130 (`workflows.errors.tell_stop`),
    also while the command line is imported or parsed, and whatever a library made of
    the stop (`workflows.errors.ends_in_a_stop`). Once it has ended, a stop more is
    ignored (`workflows.errors.ignore_stops`): the process only exits."""
    # A stop while `workflows.errors` itself imports (typing, contextlib: about 10 ms)
    # came before any handler of ours: noted by handlers of `signal` alone, and raised
    # again once `errors.stop_on_signals` has put the real ones in place.
    early: list[int] = []
    int_handler = signal.getsignal(signal.SIGINT)  # SIG_IGN for a background job: stays ignored
    signal.signal(signal.SIGTERM, lambda signum, frame: early.append(signum))
    ours = int_handler is signal.default_int_handler
    if ours:
        signal.signal(signal.SIGINT, lambda signum, frame: early.append(signum))
    from workflows import errors

    if ours:
        signal.signal(signal.SIGINT, int_handler)  # Python's default: what stop_on_signals replaces
    errors.stop_on_signals()
    try:
        for signum in early[:1]:  # a stop before the handlers: raised now, by them
            signal.raise_signal(signum)
        with errors.stops_deferred():  # raised inside a C extension's import, a stop could corrupt it
            from workflows.cli import app

        app(prog_name="sessionflow")  # its name in help and errors, run as `python -m workflows` too
    except BaseException as err:
        errors.ignore_stops()  # it has ended: from here it only says how, and exits
        stopped = errors.signals_noted() if isinstance(err, SystemExit) else errors.ends_in_a_stop(err)
        if not stopped:
            raise
        # (typer ends a stop it caught as exit 130, without a word, for SIGTERM too)
        sys.exit(errors.stop_status() if errors.stop_told() else errors.tell_stop())
    finally:
        errors.ignore_stops()
