"""A stop (SIGTERM, Ctrl-C) that arrives where Python ignores exceptions still stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# A command's process (workflows.main installs the handlers), in which the signal
# arrives inside code whose exceptions Python ignores, then work goes on for 20 s.
PROGRAM = """
import os, signal, sys, time, weakref
from workflows.errors import stop_on_signals, stopped_by

stop_on_signals()
kind, sent = sys.argv[1], getattr(signal, sys.argv[2])
try:
    if kind == "fork hook":  # logging's, while Ray starts its processes: what CI met
        os.register_at_fork(after_in_parent=lambda: signal.raise_signal(sent))
        if (pid := os.fork()) == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    elif kind == "__del__":
        class Dying:
            def __del__(self):
                signal.raise_signal(sent)
        Dying()
    else:
        class Referent:
            pass
        referent = Referent()
        ref = weakref.ref(referent, lambda _: signal.raise_signal(sent))
        del referent
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pass
    print("went on")
except KeyboardInterrupt:
    print("stopped by", stopped_by())
"""


@pytest.mark.parametrize("kind", ["fork hook", "__del__", "weakref callback"])
@pytest.mark.parametrize(("sent", "said"), [("SIGTERM", "SIGTERM"), ("SIGINT", "Ctrl-C")])
def test_a_stop_raised_where_python_ignores_exceptions_still_stops(kind, sent, said):
    """CI met it: a SIGTERM that came while Ray forked its processes raised `Stopped`
    inside logging's fork hook, Python printed "Exception ignored in: <function
    _releaseLock>", and `train hierarchy` trained on (the test waited 120 s for it)."""
    done = subprocess.run([sys.executable, "-c", PROGRAM, kind, sent], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"stopped by {said}", done.stderr
    assert "Exception ignored" not in done.stderr


# `sessionflow` itself (workflows.main), with the signal raised at one point of its start:
# while the command line is imported, while typer builds the command's config (in plain
# code, or in code run from a string, as `dataclasses` runs its own), or inside a
# library that makes its own error of the KeyboardInterrupt (pyo3's PanicException, a
# BaseException; numba's SystemError), while the config is built or the job runs.
STARTING = """
import signal, sys
import workflows.config
import workflows.jobs.synth
from workflows.main import main

point, sent = sys.argv[1], getattr(signal, sys.argv[2])

class PanicException(BaseException):
    pass

def library(error):
    def raising(*args, **kwargs):
        try:
            signal.raise_signal(sent)
        except KeyboardInterrupt as err:
            raise error("the library's own words") from err
    return raising

build = workflows.config.build
if point == "import":
    class RaiseOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == "workflows.cli.options":
                signal.raise_signal(sent)
            return None
    sys.meta_path.insert(0, RaiseOnImport())
elif point == "parse":
    def raising(*args, **kwargs):
        signal.raise_signal(sent)
        return build(*args, **kwargs)
    workflows.config.build = raising
elif point == "parse, in exec(str)":
    def raising(*args, **kwargs):
        exec("signal.raise_signal(sent)")
        return build(*args, **kwargs)
    workflows.config.build = raising
elif point == "parse, in a library":
    workflows.config.build = library(PanicException)
elif point == "parse, then a SIGTERM as it ends":
    def raising(*args, **kwargs):
        signal.raise_signal(sent)
    workflows.config.build = raising
    change = signal.signal
    def changing(signum, handler):  # as CPython runs the handler of a signal that came just before
        if handler is signal.SIG_IGN and callable(waiting := signal.getsignal(signal.SIGTERM)):
            waiting(signal.SIGTERM, None)
        return change(signum, handler)
    signal.signal = changing
else:
    workflows.jobs.synth.run = library(SystemError)
sys.argv = ["sessionflow", "synth", "-o", "never.tsv", "--users", "3"]
main()
"""


STARTS = [
    "import",
    "parse",
    "parse, in exec(str)",
    "parse, in a library",
    "job, in a library",
    "parse, then a SIGTERM as it ends",
]


@pytest.mark.parametrize("point", STARTS)
@pytest.mark.parametrize(("sent", "said", "status"), [("SIGTERM", "SIGTERM", 143), ("SIGINT", "Ctrl-C", 130)])
def test_a_stop_while_the_command_starts_is_told_as_a_stop(tmp_path, point, sent, said, status):
    """A stop in the first second or two (the imports) gave a KeyboardInterrupt traceback
    (Ctrl-C) or ended with no word (SIGTERM), and one while typer built the command's
    config ended as exit 130 with no word (typer's own catch), for SIGTERM too. CI met
    the exec(str) one: `stopped by Ctrl-C`, then the process died of SIGINT (status -2,
    CPython's mark of an unhandled Ctrl-C); what a library made of the stop was a
    traceback (exit 1)."""
    (tmp_path / "starting.py").write_text(STARTING)  # run as `python -m`, as CPython ends `-m workflows`
    done = subprocess.run([sys.executable, "-m", "starting", point, sent], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert (done.returncode, done.stderr.strip()) == (status, f"stopped by {said}"), done.stderr
    assert not (tmp_path / "never.tsv").exists()


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler of its own for `signum` (proc(5): SigCgt in
    /proc/PID/status, the caught signals as a hex mask, bit signum - 1)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            mask = next(line.split()[1] for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):  # exited
        return False
    return bool(int(mask, 16) >> (signum - 1) & 1)


def handled(job: subprocess.Popen) -> None:
    """Wait until `sessionflow` in `job` has its first stop handler in place (SIGTERM's,
    installed by `workflows.main` before any other import), or has exited: the
    earliest moment a stop can be told, ~50 ms on a quiet machine, more on a busy one."""
    deadline = time.monotonic() + 60
    while not catches(job.pid, signal.SIGTERM) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_at_any_moment_ends_in_one_line(tmp_path, sent):
    """The real command, stopped at moments from its first imports to its work: each
    time one line on stderr, `stopped by ...`, and the signal's exit status."""
    said = "SIGTERM" if sent == signal.SIGTERM else "Ctrl-C"
    # Counted from the earliest moment (`handled`), before which no handler of the program
    # can exist (the interpreter's start, site, the editable install's finder). A delay
    # from the process's start (50 ms, what `python -c pass` took) fell before it when
    # the machine was busy: the process died of the signal, as any process would.
    for delay in (0.0, 0.3, 0.8, 2.0):
        job = subprocess.Popen([sys.executable, "-m", "workflows", "synth", "-o", "s.tsv", "--users", "20000"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        handled(job)
        time.sleep(delay)
        job.send_signal(sent)
        _, err = job.communicate(timeout=120)
        assert (job.returncode, err.strip()) == (128 + sent, f"stopped by {said}"), (delay, err)


@pytest.mark.parametrize(("sent", "then"), [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT),
                                            (signal.SIGINT, signal.SIGTERM)])  # fmt: skip
def test_a_second_stop_while_the_command_ends_changes_nothing(tmp_path, sent, then):
    """A second Ctrl-C (or SIGTERM) soon after the first came while the interpreter
    finalized, where Python has set the signal back to its default: the process died of
    it after saying `stopped by ...` (status -2 or -15), every second or third time; a
    SIGTERM 20 ms after a Ctrl-C raised from the handlers' removal, a traceback."""
    said = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}
    for gap in (0.0, 0.01, 0.02, 0.04, 0.08, 0.15):
        job = subprocess.Popen([sys.executable, "-m", "workflows", "synth", "-o", "s.tsv", "--users", "20000"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        handled(job)
        time.sleep(2.0)
        job.send_signal(sent)
        time.sleep(gap)
        if job.poll() is None:
            job.send_signal(then)
        _, err = job.communicate(timeout=120)
        told = {(128 + signum, f"stopped by {said[signum]}") for signum in (sent, then)}
        assert (job.returncode, err.strip()) in told, (gap, err)


def test_the_exit_status_is_that_of_the_stop_told_whatever_comes_after():
    """CI's find: a SIGTERM 10 ms after a Ctrl-C, between the line `stopped by Ctrl-C`
    and the exit, made the status 143 (SIGTERM's): the line and the status disagreed."""
    code = ("from workflows import errors; errors.note_signal(2); told = errors.tell_stop(); "
            "errors.note_signal(15); print(told, errors.stop_status())")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.stdout.split(), done.stderr.strip()) == (["130", "130"], "stopped by Ctrl-C"), done.stderr


def test_python_m_workflows_is_the_sessionflow_command(tmp_path):
    """`python -m workflows` (a cluster's job, benchmarks/gpu.sh) runs the command that
    the console script runs, under the same name."""
    done = subprocess.run([sys.executable, "-m", "workflows", "synth", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("Usage: sessionflow synth"), done.stdout[:200]


# A Ray job's end: Ray's core worker sets SIGTERM back to its default while it shuts down.
RAY_END = """
import os, signal, time
import ray
from workflows.distributed.runtime import ray_runtime
from workflows.errors import Stopped, stop_on_signals

stop_on_signals()
real_shutdown = ray.shutdown

def shutdown_then_stop():
    real_shutdown()  # the disposition is the default from about 0.3 s into it
    os.kill(os.getpid(), signal.SIGTERM)  # a stop in the shutdown's last moments
    time.sleep(0.3)

ray.shutdown = shutdown_then_stop
try:
    with ray_runtime(num_cpus=1):
        pass
    print("went on")
except Stopped:
    print("stopped after the shutdown; Ray still up:", ray.is_initialized())
"""


@pytest.mark.slow
def test_a_stop_while_ray_shuts_down_is_a_stop_not_a_silent_kill(tmp_path):
    """The breaking helper's find: SIGTERM half a second after a Ray job wrote its report
    ended the process with exit -15 and no word, Ray's shutdown having set SIGTERM back
    to its default behind Python's back; now it is a stop, raised once Ray is down."""
    done = subprocess.run([sys.executable, "-c", RAY_END], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"}, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip().splitlines()[-1] == "stopped after the shutdown; Ray still up: False"


TWICE_IN_RAY_INIT = """
import os, signal, sys, threading, time
keep = signal.signal
def watched(signum, handler):  # SIGTERM as Ray's handler is put in place, and again 5 ms later
    done = keep(signum, handler)
    if signum == signal.SIGTERM and "ray" in str(getattr(handler, "__module__", "")):
        again = lambda: (time.sleep(0.005), os.kill(os.getpid(), signal.SIGTERM))
        threading.Thread(target=again, daemon=True).start()
        os.kill(os.getpid(), signal.SIGTERM)
    return done
signal.signal = watched
sys.argv = ["sessionflow", "ingest", "log.tsv", "-f", "aol", "-o", "out", "--engine", "ray"]
from workflows.main import main
main()
"""


def test_a_sigterm_sent_twice_while_ray_starts_is_told_as_one_stop(tmp_path):
    """The fourth breaking helper's find: SIGTERM twice, milliseconds apart, while a job
    started its Ray: the first went to Ray's handler (caught: the command's is put back
    after `ray.init`), the second came while what Ray had started shut down, with Ray's
    handler still in place, and the command ended with status 15 and no word."""
    (tmp_path / "log.tsv").write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\ta\t2006-03-01 00:00:00\t\t\n")
    done = subprocess.run([sys.executable, "-c", TWICE_IN_RAY_INIT], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"}, cwd=tmp_path)  # fmt: skip
    assert (done.returncode, done.stderr.strip().splitlines()[-1:]) == (143, ["stopped by SIGTERM"]), done.stderr


DEFERRED = """
import signal, sys
from workflows.errors import Interrupted, Stopped, stop_on_signals, stops_deferred, stopped_by

stop_on_signals()
sent = [getattr(signal, name) for name in sys.argv[1:]]
try:
    with stops_deferred():
        for signum in sent:
            signal.raise_signal(signum)
        print("the block ran to its end")
    print("went on")
except (Interrupted, Stopped) as err:
    print(type(err).__name__, "after the block; stopped by", stopped_by())
"""


@pytest.mark.parametrize(
    ("sent", "said"),
    [(["SIGINT"], "Interrupted after the block; stopped by Ctrl-C"),
     (["SIGTERM"], "Stopped after the block; stopped by SIGTERM"),
     (["SIGINT", "SIGTERM"], "Stopped after the block; stopped by SIGTERM")],
)  # fmt: skip
def test_a_stop_while_the_command_line_imports_is_raised_after_the_imports(sent, said):
    """CI met it: a Ctrl-C 0.3 s into `sessionflow synth` was raised inside a C
    extension's import and left it half made; glibc aborted at exit (`free(): invalid
    pointer`, status -6). While `workflows.main` imports the command line a stop is
    only noted, and raised once the imports are done: the same line, the same status."""
    done = subprocess.run([sys.executable, "-c", DEFERRED, *sent], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines() == ["the block ran to its end", said], done.stderr


def test_a_trainings_ctrl_c_asks_the_controller_to_abort_once_and_waits_no_longer_than_its_bound(monkeypatch):
    """One Ctrl-C asks Ray Train's controller to abort, waiting at most `ABORT_WAIT_S`
    (a controller waiting for resources never answers: the job had ignored Ctrl-C for
    minutes), then ends the command; a second raises at once (it waited another bound)."""
    import ray

    from workflows.errors import signals_noted
    from workflows.training.loop import ABORT_WAIT_S, ctrl_c_handler

    asked = []

    class Abort:
        def remote(self):
            return "abort-ref"

    class Controller:
        abort = Abort()

    def get(ref, timeout):  # the controller, busy waiting for resources, does not answer
        asked.append((ref, timeout))
        raise ray.exceptions.GetTimeoutError("no answer")

    monkeypatch.setattr("workflows.errors._received", [])  # this process's record of stops, left as it was
    handler, before = ctrl_c_handler(Controller(), get), signals_noted()
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
    assert asked == [("abort-ref", ABORT_WAIT_S)] and signals_noted() == before + 2
