"""What counts as a user's error, for every layer of `workflows`: the errors a command
ends in one line (exit 2), leaving no output, rather than in a traceback."""

from __future__ import annotations

import _thread
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

# Bad settings or inputs (ValueError) and files or storage that cannot be read or
# written (OSError, `sessions.storage.StorageError`): what a user can put right
USER_ERRORS = (ValueError, OSError)

# How Ray Data's advice on retries starts, appended to a failed task's exception message
# (ray.data._internal.util._annotate_exception_with_retry_context).
RAY_DATA_RETRY_ADVICE = "\nFailed to "


def user_error(err: BaseException) -> BaseException | None:
    """`err` when it is a user's error (`USER_ERRORS`), or the user's error a Ray task
    raised and Ray handed back (`ray.exceptions.RayTaskError`, whose text is the task's
    whole traceback: its `cause`, without the retry advice Ray Data appends to a failed
    task's message); None for anything else."""
    exceptions = sys.modules.get("ray.exceptions")  # no Ray imported: no Ray error
    unwrapped = False
    while exceptions is not None and isinstance(err, exceptions.RayTaskError) and err.cause is not None:
        err, unwrapped = err.cause, True
    if not isinstance(err, USER_ERRORS):
        return None
    if unwrapped and err.args and isinstance(err.args[0], str):
        err.args = (err.args[0].split(RAY_DATA_RETRY_ADVICE, 1)[0], *err.args[1:])
    return err


class Stopped(KeyboardInterrupt):
    """A command stopped by SIGTERM (`kill`, `timeout`, a batch scheduler), raised in the
    main thread as Ctrl-C raises KeyboardInterrupt, so that what a job started ends the
    same way: its MLflow run marked FAILED, its Ray shut down. (Inside a blocking Ray
    call Ray raises a plain KeyboardInterrupt in its place: `stopped_by` says which.)"""


class Interrupted(KeyboardInterrupt):
    """A command stopped by Ctrl-C (SIGINT), as `stop_on_signals` raises it.

    A KeyboardInterrupt of its own class, not Python's: CPython since 3.8 (bpo-1054041;
    `run_eval_code_obj` in Python/pythonrun.c) marks the process "ended by an unhandled
    Ctrl-C" whenever a plain KeyboardInterrupt leaves code run from a string, which
    `exec(str)` is (the code `dataclasses` and `namedtuple` make while a module is
    imported), and a process run as `python -m` then kills itself with SIGINT at exit,
    the interrupt caught or not: `python -m workflows` stopped during its imports said
    `stopped by Ctrl-C` and died of the signal (status -2, not 130). CPython checks for
    the class itself, not its subclasses."""


_received: list[int] = []


def stopped_by() -> str:
    """What stopped this command, for its last line: `SIGTERM` once the handler of
    `stop_on_signals` has run, else `Ctrl-C`."""
    return "SIGTERM" if signal.SIGTERM in _received else "Ctrl-C"


def stop_status() -> int:
    """The exit status of a command that a stop ended: 128 + the signal's number, as a
    shell reports a process the signal killed (143 for SIGTERM, 130 for Ctrl-C); once
    told (`tell_stop`), that of the stop told, whatever came after: a SIGTERM 10 ms
    after a Ctrl-C, between the line and the exit, made it `stopped by Ctrl-C`, exit 143."""
    by = _told[0] if _told else stopped_by()
    return 128 + (signal.SIGTERM if by == "SIGTERM" else signal.SIGINT)


def tell_stop() -> int:
    """Say on stderr what stopped the command (`stopped by SIGTERM`, `stopped by Ctrl-C`);
    returns its exit status (`stop_status`). `stop_told` says whether it was said."""
    by = stopped_by()
    print(f"stopped by {by}", file=sys.stderr, flush=True)
    _told.append(by)
    return stop_status()


def stop_told() -> bool:
    """Whether this process has said what stopped it (`tell_stop`)."""
    return bool(_told)


_told: list[str] = []  # the stop told (`stopped_by`)


def stop_on_signals() -> None:
    """From now on SIGTERM raises `Stopped` in the main thread, and Ctrl-C (SIGINT) its
    KeyboardInterrupt, each noted (`note_signal`), so that a command tells a stop from a
    failure wherever it lands (typer ends a KeyboardInterrupt it catches as exit 130,
    without a word). Python's default for SIGTERM ends the process at once, with no
    cleanup: a training stopped so (before its Ray started, whose driver handler exits
    in its own way) left its MLflow run RUNNING for good. A SIGINT that is ignored (a
    job started in the background by a shell, or under `nohup`) stays ignored.

    A stop raised where Python ignores exceptions (a fork hook, such as `logging`'s
    while Ray starts its processes; a `__del__`; a weakref callback) is not lost: it
    reaches `sys.unraisablehook`, which delivers the signal again, to be raised in the
    main thread's next line. Before, such a SIGTERM printed "Exception ignored in:
    <function _releaseLock ...>" and the training went on."""
    signal.signal(signal.SIGTERM, _raise_stopped)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)
    if sys.unraisablehook is not _deliver_again:
        global _unraisablehook
        _unraisablehook = sys.unraisablehook
        sys.unraisablehook = _deliver_again


def note_signal(signum: int) -> None:
    """Note that `signum` arrived, for `stopped_by` and `signals_noted`: where another
    handler (Ray's, Ray Train's) takes the signal, the command still ends as stopped."""
    _received.append(signum)


def signals_noted() -> int:
    """How many stopping signals this process has noted."""
    return len(_received)


def sigterm_received() -> Stopped:
    """Note that SIGTERM arrived (for `stopped_by`); the exception to raise for it."""
    note_signal(signal.SIGTERM)
    return Stopped("SIGTERM")


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    _stop(signal.SIGTERM)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _stop(signal.SIGINT)


def _stop(signum: int) -> None:
    """The handlers' one rule: a stop is noted and raised (SIGTERM's `Stopped`, Ctrl-C's
    `Interrupted`); inside `stops_deferred` only noted; after `ignore_stops`, nothing."""
    if _ended and not _deferring:
        return
    note_signal(signum)
    if not _deferring:
        raise Stopped("SIGTERM") if signum == signal.SIGTERM else Interrupted


@contextmanager
def stops_deferred() -> Iterator[None]:
    """Within, a stop (`stop_on_signals`' handlers) is noted, not raised; on leaving, it
    is raised (SIGTERM's `Stopped` before Ctrl-C's `Interrupted`). For imports of C
    extensions: an exception raised inside one's module initialisation can leave it half
    made, and a Ctrl-C 0.3 s into `sessionflow synth`, while `workflows.cli` imported,
    ended in glibc's `free(): invalid pointer` and status -6 at exit (CI met it)."""
    noted = len(_received)
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.pop()
    sent = _received[noted:]  # the stops that came within
    if sent and not _deferring:
        raise Stopped("SIGTERM") if signal.SIGTERM in sent else Interrupted


_deferring: list[bool] = []  # inside `stops_deferred`


def ends_in_a_stop(err: BaseException) -> bool:
    """Whether `err` ends the command as a stop (`tell_stop`) rather than as a failure: a
    KeyboardInterrupt (`Stopped`, `Interrupted`, Ray's), or anything but an exit raised
    once a stopping signal has been noted. What the handler raised inside a library may
    come out as that library's error: pyo3's PanicException (a BaseException) from
    polars' import, numba's "SystemError: CPUDispatcher(...) returned a result with an
    exception set" from a compiled function's call; each printed a traceback."""
    return isinstance(err, KeyboardInterrupt) or (bool(_received) and not isinstance(err, SystemExit))


def ignore_stops() -> None:
    """Ignore SIGINT and SIGTERM from here on: the command has ended, and only says how
    and exits. A handler of Python's is set back to the signal's default while the
    interpreter finalizes (CPython's `_PySignal_Fini`), and a signal then, a second
    Ctrl-C or a SIGTERM in the half second that Ray's and torch's teardown take, killed
    the process after its last line (status -2 or -15) or after its summary; an ignored
    signal stays ignored. SIGKILL still ends it. A signal that came just before, whose
    handler Python runs only now (`signal.signal` runs those waiting), neither raises
    nor counts: a Ctrl-C then a SIGTERM 20 ms apart raised the SIGTERM's `Stopped`
    from here, a traceback."""
    _ended.append(True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


_ended: list[bool] = []  # `ignore_stops` has run


_unraisablehook = sys.__unraisablehook__


def _deliver_again(unraisable: Any) -> None:
    """`sys.unraisablehook`: a stop (`Stopped`, or Ctrl-C's KeyboardInterrupt) that Python
    would ignore is delivered again as the signal it came from, by a thread
    (`_thread.interrupt_main` runs that signal's handler in the main thread, as the
    signal itself would), so that it is raised once the code that ignores it has
    returned (from here, the handler would run inside this hook and be ignored again);
    anything else goes to the hook there was before. Where the main thread is still in
    such code when the signal comes again, it comes back here, and goes again."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        sent = signal.SIGTERM if isinstance(unraisable.exc_value, Stopped) else signal.SIGINT
        try:
            _thread.start_new_thread(_thread.interrupt_main, (sent,))  # (threading's start waits for it)
            return
        except RuntimeError:  # no new thread at interpreter shutdown: it is ending anyway
            pass
    _unraisablehook(unraisable)
