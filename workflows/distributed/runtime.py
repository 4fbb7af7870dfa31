"""Ray for a job that runs on it (which engine runs a job: `workflows.jobs.common`).

A job joins the cluster it is given (`--address`), or the one it runs under (`ray
job submit` sets RAY_ADDRESS), or else starts a private local Ray for its own
duration (`ray.init(address="local")`: never one found running on the machine).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from workflows.reach import CONNECT_TIMEOUT_S, unanswered

LOOPBACK = "127.0.0.1"
WITHOUT_RAY = "run the job with --engine local"  # a data job's way without Ray (`ray_runtime`)
_started_here = False  # inside a `ray_runtime` whose local instance this process started


@contextmanager
def ray_runtime(
    address: str | None = None, num_cpus: int | None = None, worker_output: bool = True, *,
    without_ray: str | None = None,
) -> Iterator[None]:  # fmt: skip
    """Ray for the duration of a job.

    A local instance (no cluster named: `named_cluster`) gets `num_cpus` (all by default),
    runs without the dashboard (so without the state API: see `quiet_local_workers`),
    without token authentication (which protects shared clusters, not a private
    local one) and on the loopback address only; it is shut down afterwards. From a
    cluster the job only disconnects. Without `worker_output` the workers' stdout and
    stderr stay in Ray's log files (a local Ray's: /tmp/ray/session_latest/logs) instead of the driver's terminal
    (their errors still reach the driver, as the exceptions of their tasks). OSError in one
    line when a local instance does not start (Ray's own bare Exception: its processes did
    not come up in time, as on an overloaded machine), advising `without_ray` where the
    job has a way to run without Ray (a data job's `--engine local`; a training has none).
    """
    cluster = named_cluster(address)
    if cluster is None:
        use_loopback_only()
        without_preemption_watcher()
    import ray

    if cluster is None:
        _single_machine_mode()

    if cluster is not None and not ray.is_initialized():
        require_cluster(cluster, "--address" if address else "RAY_ADDRESS")
    _report_tasks_errors()
    _quiet_ray_data_console()
    if ray.is_initialized():
        yield
        return
    with _driver_sigterm_kept():
        if cluster is not None:
            ray.init(address=cluster, logging_level=logging.WARNING, log_to_driver=worker_output)
        else:
            hook = f"{__name__}.quiet_local_workers"
            try:
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                         runtime_env={"worker_process_setup_hook": hook}, _node_ip_address=LOOPBACK,
                         log_to_driver=worker_output)  # fmt: skip
            except Exception as err:  # Ray raises a bare Exception when its processes do not start in time
                if type(err) is not Exception:
                    raise
                why = (str(err).strip().splitlines() or ["no reason given"])[0]
                advice = "on a loaded machine try again" + (f", or {without_ray}" if without_ray else "")
                raise OSError(f"a local Ray could not start ({why}); {advice}") from None
    global _started_here
    _started_here = cluster is None
    try:
        yield
    finally:
        _started_here = False
        _shut_down_keeping_handlers()


def started_here() -> bool:
    """Whether the Ray this process is connected to is the local instance `ray_runtime`
    started for it: its workers are children of this process's raylet, started with this
    process's environment. A cluster's (`ray start`, even on this machine) are not: they
    have the environment its `ray start` had, and a job's `env_vars`."""
    return _started_here


def _shut_down_keeping_handlers() -> None:
    """`ray.shutdown()`, with this process's stop handlers in force throughout. Ray's
    core worker, shutting down, sets SIGTERM's disposition back to the default behind
    Python's back (`signal.getsignal` still names the handler), about 0.3 s into a
    shutdown of 1.5 s: a SIGTERM then, just after a Ray job had written its report,
    ended the process with exit -15 and no word (the breaking helper's find). So the
    shutdown runs in a thread while the main thread puts the handlers back every 5 ms
    (only the main thread may), and a stop that arrives meanwhile is raised once the
    shutdown is over, so that nothing Ray started outlives the command."""
    import ray

    if threading.current_thread() is not threading.main_thread():
        ray.shutdown()
        return
    failed: list[BaseException] = []

    def shut_down() -> None:
        try:
            ray.shutdown()
        except BaseException as err:  # raised in the main thread below
            failed.append(err)

    worker = threading.Thread(target=shut_down, name="ray-shutdown")
    worker.start()
    stop: BaseException | None = None
    while worker.is_alive():
        _handlers_reinstalled()
        try:
            worker.join(0.005)
        except BaseException as err:  # a stop (our handlers raise it here): told after the shutdown
            stop = stop or err
    _handlers_reinstalled()
    if stop is not None:
        raise stop
    if failed:
        raise failed[0]


def _handlers_reinstalled() -> None:
    """Put the Python handlers of SIGTERM and SIGINT back at the C level, where another
    library's C code may have set them to their default (the main thread only)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(signum)
        if handler is not None:  # None: a handler Python did not install, left as it is
            signal.signal(signum, handler)


@contextmanager
def _driver_sigterm_kept() -> Iterator[None]:
    """`ray.init` inside: a SIGTERM handler the driver had (a CLI's, `workflows.errors.
    stop_on_signals`) is put back afterwards, and a SIGTERM during the init ends as that
    handler ends one (`Stopped`), as the stop told, whatever stop follows while what Ray
    started shuts down. Ray replaces the driver's handler with its own, which exits
    (sys.exit) with no word of why."""
    from workflows.errors import sigterm_received

    kept = signal.getsignal(signal.SIGTERM)
    if not callable(kept) or threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        yield
    except SystemExit:  # Ray's handler, during the init: what it started goes too
        # noted, and the driver's handler back, before the shutdown: a second stop during it (a SIGTERM sent
        # twice) raised Ray's SystemExit(15) again, and the command ended with status 15 and no word
        stopped = sigterm_received()
        signal.signal(signal.SIGTERM, kept)
        _shut_down_keeping_handlers()
        raise stopped from None
    finally:
        signal.signal(signal.SIGTERM, kept)


def named_cluster(address: str | None) -> str | None:
    """The Ray cluster a job joins: `address` (`--address`), else RAY_ADDRESS (which
    `ray job submit` sets to the cluster's address for the job it starts), else None: a
    private local Ray (also for `local`, given either way: Ray's word for a new one). A
    RAY_ADDRESS that is an http(s) URL is the Jobs API's, set in a shell for `ray job
    submit` itself (`export RAY_ADDRESS=http://127.0.0.1:8265`), not a cluster a job can
    join: it names none. An http(s) `address`: ValueError."""
    if address == "local":  # what Ray's `address="local"` means: a new local Ray, as for RAY_ADDRESS=local
        return None
    if address:
        if address.lower().startswith(_JOBS_API):
            raise ValueError(f"--address {address}: that is the Jobs API's address, for `ray job submit`; "
                             "give the cluster's (host:6379, or ray://host:10001)")  # fmt: skip
        return address
    from_env = os.environ.get("RAY_ADDRESS")
    if not from_env or from_env == "local" or from_env.lower().startswith(_JOBS_API):  # "local": a new local Ray
        return None
    return from_env


_JOBS_API = ("http://", "https://")


def _report_tasks_errors() -> None:
    """Ray Data settings of this driver, which its datasets carry to their tasks:
    progress bars, and a task's own exception handed back (as the `cause` of Ray's
    `RayTaskError`, which `workflows.errors.user_error` unwraps) rather than
    Ray Data's `UserCodeException`, which keeps only its text: a bad input read by a
    Ray task then ends in the one-line error the one-process engine gives."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = True
    context.raise_original_map_exception = True


def _quiet_ray_data_console() -> None:
    """Ray Data's INFO lines ("Starting execution of Dataset ...", its plan, its progress
    logged line by line where stdout is no terminal: some 10 lines a dataset) off the
    console: a job reports what it did itself. Its log file in the Ray session
    directory (`logs/ray-data/ray-data.log`) keeps them, and its warnings and errors
    still reach the console, as do its progress bars on a terminal."""
    import ray.data  # noqa: F401  (configures the `ray.data` logger and its handlers)

    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):  # the console; the session file is not one
            handler.setLevel(logging.WARNING)


def require_cluster(address: str, named_by: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, in one line, an address at which nothing listens.

    `address` is what `ray.init` is given: `host:port` of a cluster's GCS (what
    `ray start --head` prints and `ray job submit` sets in RAY_ADDRESS) or
    `ray://host:port` (Ray Client). Ray itself retries such an address for minutes
    (with `127.0.0.1:9`, over 200 s); this opens one TCP connection to it first, to
    the host as given and to the one Ray would dial (it replaces a loopback host
    with the node's address), and passes when either answers within `timeout_s`
    seconds. `auto`, `local` and any other form are left to Ray. `named_by` (`--address`,
    `RAY_ADDRESS`) is where the address came from, for the message.

    Raises:
        ConnectionError: neither answers (refused, unreachable, no such host).
    """
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host or "/" in target:
        return
    from ray._private.services import resolve_ip_for_localhost

    host = host.strip("[]")
    why = unanswered((host, resolve_ip_for_localhost(host)), int(port), timeout_s)
    if why is None:
        return
    raise ConnectionError(
        f"no Ray cluster answers at {address} ({named_by}: {why}); start one there with `ray start --head`, "
        "or name none to run on a private local Ray"
    )


def quiet_local_workers() -> None:
    """Run in every worker of a local Ray: without a dashboard there is no state API,
    and Ray Train's placement-group cleaner would warn about it once a second for
    the whole run. (It removes the placement groups of a crashed trainer; a local
    Ray is shut down with the job anyway.)

    The worker's own cluster is also its RAY_ADDRESS: Ray's state API, which the
    cleaner calls from a worker, otherwise looks for the cluster among the Ray
    instances running on the machine: with more than one (another job's local Ray
    beside this one) it took another's, or its thread died with a ConnectionError's
    traceback."""
    import ray

    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)


def use_loopback_only() -> None:
    """Make a Ray started by this process (or its children) listen on 127.0.0.1 only.

    Ray binds its services to the node's IP address, which it looks up unless its
    single-machine mode is on (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when `ray` is
    first imported: by the processes a local Ray starts, which inherit it from here):
    then the node's address is 127.0.0.1 and so is every listener. `ray_runtime` also
    gives the node address to `ray.init`, for a driver that imported `ray` before this
    was set. Ray Train's rendezvous store is bound by `workflows.training.rendezvous`.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def without_preemption_watcher() -> None:
    """No preemption watcher for Ray Train on a private local Ray (unless the variable is
    set): Ray Train 2.x starts one more actor per worker group to poll the cluster for
    nodes being drained (spot instances reclaimed), which a single machine never has;
    on every training it cost a worker process's start and printed an error-level line
    from Ray's core (ray-project/ray#53727). A cluster keeps it."""
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")


def _single_machine_mode() -> None:
    """Ray's single-machine mode for a driver that imported `ray` before
    `use_loopback_only` could set it: Ray read RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER into
    `ray_constants.ENABLE_RAY_CLUSTER` at import, and the driver consults that constant
    when it starts the local services (`ray._private.services`); the services
    themselves read the variable, which they inherit."""
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def require_gpus(needed: float, address: str | None, option: str, alternative: str) -> None:
    """Refuse, in one line, a job that asks for GPUs where it would start its own local
    Ray (no cluster named: `named_cluster`) on a machine whose torch sees fewer than
    `needed` (a training's workers, one GPU each; one scoring actor's share): Ray would
    wait for them for ever (score's actors pend; Ray Train retries its worker group every
    60 s). A named cluster is left to Ray: its autoscaler may add GPU nodes (cluster.yaml),
    and its jobs wait for them. `option` names the setting and `alternative` what to do
    instead, in the message. ValueError."""
    if needed <= 0 or named_cluster(address) is not None:
        return
    import torch

    have = torch.cuda.device_count()
    if have < needed:
        raise ValueError(f"{option}: the job needs {needed:g} GPU(s) and torch sees {have} on this machine "
                         f"({alternative}, or run it on a Ray cluster with GPUs: --address)")  # fmt: skip


def require_cpus(workers: int, address: str | None) -> None:
    """Refuse, in one line, a training of more `workers` than this machine has CPUs
    (`os.sched_getaffinity`: those this process may use) where it would start its own
    local Ray (no cluster named): each worker takes a CPU at least, and Ray Train would
    retry its worker group every 60 s for ever. A named cluster is left to Ray, as in
    `require_gpus`. ValueError."""
    if named_cluster(address) is not None:
        return
    have = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if workers > have:
        raise ValueError(f"--workers {workers}: each worker takes a CPU, and this machine has {have} (lower "
                         "--workers, or run it on a Ray cluster: --address)")  # fmt: skip


def cluster_cpus() -> int:
    """CPUs Ray can schedule on (the whole cluster)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def node_resources() -> list[dict[str, float]]:
    """What each live node of the Ray cluster offers now, as Ray counts it (`{"CPU": 2.0,
    "GPU": 1.0, "memory": ..., ...}`; a resource a node lacks is absent)."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


TRAIN_WAITS = "Ray Train waits until an autoscaler adds nodes, retrying every 60 s"


def workers_waiting(
    workers: int,
    per_worker: Mapping[str, float],
    nodes: Sequence[Mapping[str, float]],
    asked: str | None = None,
    waits: str = TRAIN_WAITS,
    instead: str | None = None,
) -> str | None:
    """A one-line warning when fewer than `workers` workers (Ray Train's, or a score's
    encoding actors), each asking for `per_worker` ({"CPU": 1, "GPU": 1}), fit on the
    live `nodes` (`node_resources`: what each offers, not what is free now), a worker on
    one node; None when all of them fit. The job then waits for an autoscaler to add
    nodes (`waits` says how): on a cluster without one (started by `ray start`), for
    ever. `asked` names the request (default `--workers N`), `instead` what to do instead
    (default: lower --workers, where some fit). (A local Ray is refused before it comes
    to this: `require_cpus`, `require_gpus`.)"""
    fit = sum(min(int(node.get(name, 0) // need) for name, need in per_worker.items() if need > 0) for node in nodes)
    if fit >= workers:
        return None
    each = " and ".join(f"{need:g} {name}" for name, need in per_worker.items() if need > 0)
    offered = "; ".join(
        f"{name} per node: {', '.join(f'{node.get(name, 0):g}' for node in nodes) or 'no node'}"
        for name, need in per_worker.items() if need > 0
    )  # fmt: skip
    instead = instead or ("lower --workers" if fit else None)
    lower = f"; or {instead}" if instead else ""
    return (f"warning: {asked or f'--workers {workers}'} of {each} each: the cluster's nodes hold {fit} such "
            f"worker(s) now ({offered}); {waits}, and on a cluster without one (started by `ray start`) for ever "
            f"(Ctrl-C stops it{lower})")  # fmt: skip


def cpus_per_worker(workers: int, nodes: Sequence[int]) -> int:
    """The most CPUs each of `workers` training workers can ask for such that all of them
    fit on nodes of `nodes` CPUs each (a worker runs on one node, `nodes[i] // t` workers
    of t CPUs on node i); at least 1. The cluster's total divided by the workers is no
    such number where nodes are many: one worker asked for the two CPUs of two one-CPU
    nodes, which no node has, and Ray Train retried its worker group every 60 s for ever
    without a word. Where not even 1 CPU a worker fits (fewer CPUs than workers), 1: the
    cluster's autoscaler may add nodes."""
    for t in range(max(1, sum(nodes) // max(1, workers)), 1, -1):
        if sum(n // t for n in nodes) >= workers:
            return t
    return 1
