"""What every node of a Ray cluster must reach before a job's work starts there.

A cluster shares no disk and no environment: a job's tasks and Ray Train's workers read
and write its locations from every node, each with that node's own file system and the
object store credentials and network of that node's Ray (the environment `ray start`
had there, and the job's own `env_vars` where it was submitted with some: `ray job
submit --runtime-env-json`). Variables set only in the shell that starts the job reach
neither. A node that could not reach a location failed the job late, in its first task
or first checkpoint, with a worker's traceback (a cluster user's: 140 lines ending in
ACCESS_DENIED during PutObject, and a FAILED MLflow run). `require_every_node_reaches`
asks every node first, in one task each, and refuses in one line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessions.storage import Cause

NODES_TIMEOUT_S = 60.0  # how long `require_every_node_reaches` waits for a busy node's answer


@dataclass(frozen=True)
class Reach:
    """One location every node must reach, as the driver sees it."""

    what: str  # how the job names it: "--output", "--storage", "input"
    location: str  # a local path (resolved: the same name on every node) or a URI
    write: bool = False  # a directory a probe is written to and deleted from (URIs); else a file read
    size: int = -1  # the file's size for the driver (-1: any)
    env: tuple[tuple[str, str | None], ...] = ()  # variables the job's processes reach it with there (None: unset)
    named: str = ""  # the location as the job names it, where that is not `location` (a local output: its marker)

    @property
    def shown(self) -> str:
        return self.named or self.location


def require_every_node_reaches(output: str | None, inputs: Sequence[str] = (), *, what: str = "--output") -> None:
    """On a Ray cluster of more than one node, refuse in one line a location of the job
    that some node does not reach as the driver does, before the job's work: a zero-CPU
    task on every node checks them there.

    - `output` (named `what`: `--output`, or `--storage` for Ray Train's checkpoints), a
      local path: a directory the driver has made; a marker the driver writes there must
      be seen by every node (ValueError: nodes that share no file system there wrote
      parts the driver never saw, and the job failed with "cannot concat empty list");
      a URI: every node writes a probe there and deletes it (`storage.check_writable_dir`,
      with the node's own credentials and network). `--storage` is written by Ray Train
      through the filesystem the driver made (`loop.checkpoint_storage`), which carries
      the driver's S3 endpoint to every node: its probe asks that endpoint too.
    - `inputs`: every local input file must be seen by every node, of the same size
      (ValueError); of each input a URI names, its first file must be read there, of the
      same size.
    A node that cannot reach a URI raises StorageError, one line naming the location,
    the node, its own reason (in `sessions.storage`'s words: credentials refused, the
    endpoint unreachable, no such bucket) and what to do about its cause (`_advice`). A
    single node is asked too, unless it is the local Ray this driver started
    (`runtime.started_here`: its workers have the driver's environment): a one-node
    cluster's workers have what its `ray start` had (the score breaker's: variables set
    in the driver's shell alone, and a Ray task failed on the store with storage's advice
    to set them, set as they were). A node that does not answer within `NODES_TIMEOUT_S` seconds (busy),
    or is lost meanwhile, is not waited for.
    """
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from sessions import storage
    from workflows.distributed.runtime import started_here

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) < 2 and started_here():
        return
    marker = None
    reaches = []
    if output is not None and storage.is_local(output):
        marker = os.path.join(storage.resolve(output)[1], f".sessionflow-seen-{uuid.uuid4().hex}")
        reaches.append(Reach(what, marker, named=output))
    elif output is not None:
        endpoint = {name: os.environ.get(name) for name in storage.S3_ENDPOINT_VARIABLES}
        env = tuple(endpoint.items()) if what == "--storage" and storage.scheme(output) == "s3" else ()
        reaches.append(Reach(what, output, write=True, env=env))
    for item in inputs:
        files = storage.expand([item])
        local = [storage.resolve(f)[1] for f in files if storage.is_local(f)]
        reaches += [Reach("input", path, size=os.path.getsize(path)) for path in local]
        if not local:  # an object store's: its first file (credentials and endpoint hold for the others alike)
            reaches.append(Reach("input", files[0], size=storage.size_and_mtime(files[0])[0]))
    if not reaches:
        return
    if marker is not None:
        with open(marker, "w"):
            pass
    try:
        ask = ray.remote(num_cpus=0, max_retries=0)(unreached)
        asked = [ask.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                 .remote(reaches) for node in nodes]  # fmt: skip
        ready, _ = ray.wait(asked, num_returns=len(asked), timeout=NODES_TIMEOUT_S)
        failed = []
        for node, ref in zip(nodes, asked, strict=True):
            try:
                answer = ray.get(ref) if ref in ready else None
            except ray.exceptions.RayTaskError as err:  # it ran there and failed: that node runs other code
                raise could_not_check(node["NodeManagerAddress"], err, len(nodes)) from None
            except ray.exceptions.RayError:  # a node lost while it answered: not waited for either
                answer = None
            if answer is not None and not _is_answer(answer, len(reaches)):  # its `unreached` is another's
                raise could_not_check(node["NodeManagerAddress"], f"it answered {answer!r}", len(nodes))
            if answer is not None:
                failed.append((node["NodeManagerAddress"], answer))
        if failed:
            address, (index, why, cause) = failed[0]
            raise refusal(reaches[index], address, why, cause, len(nodes), len(failed))
    finally:
        if marker is not None:
            with contextlib.suppress(OSError):
                os.remove(marker)


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"


def could_not_check(node: str, err: BaseException | str, nodes: int) -> ValueError:
    """The one-line error for a node at `node` where the check itself failed (`err`, Ray's
    RayTaskError: its `cause` the exception raised there), or answered what this driver's
    `unreached` never answers (`err`, a text saying what it answered): such a node runs
    other code than the driver (a breaker's nodes held an older sessionflow:
    `ModuleNotFoundError`; a node of stop 70's answered (index, why) alone), and the job's
    own tasks would fail there later, in a worker's traceback naming no node."""
    from sessions.storage import first_line

    cause = getattr(err, "cause", None)
    if isinstance(err, str):
        said = first_line(err)
    elif isinstance(cause, BaseException):
        said = f"{type(cause).__name__}: {first_line(cause)}"
    else:
        said = first_line(err)
    return ValueError(
        f"node {node} could not run the job's check of its locations ({said}); every node runs the job's code: "
        f"install the driver's sessionflow on each node, or submit the job with `ray job submit --working-dir .` "
        f"(this Ray cluster has {_nodes(nodes)})"
    )


def _is_answer(answer: object, reaches: int) -> bool:
    """Whether `answer` is one `unreached` of this code gives for `reaches` locations:
    (index, why, cause), index within them, why text, cause one of `StorageError`'s."""
    from typing import get_args

    from sessions.storage import Cause

    if not (isinstance(answer, tuple) and len(answer) == 3):
        return False
    index, why, cause = answer
    return isinstance(index, int) and 0 <= index < reaches and isinstance(why, str) and cause in get_args(Cause)


def unreached(reaches: Sequence[Reach]) -> tuple[int, str, Cause] | None:
    """Run on a node: (index, why, cause) of the first of `reaches` this process does not
    reach as the driver does (why: `sessions.storage`'s reason for a URI, without its
    advice; "" for a local path not seen, or not of its size; cause: its
    `StorageError.cause`); None when it reaches them all. Plain values, not the error: they
    come back to the driver from a Ray task on another node."""
    import pyarrow.fs as pafs

    from sessions import storage

    for i, reach in enumerate(reaches):
        if storage.is_local(reach.location):
            if not _sees(reach.location, reach.size):
                return i, "", ""
            continue
        try:
            with _environment(dict(reach.env)):
                if reach.write:
                    storage.check_writable_dir(reach.location, reach.what)
                    continue
                found = storage.info(reach.location)
                if found.type == pafs.FileType.NotFound:
                    bucket = storage.why_missing(reach.location, "")  # "" where the bucket is there
                    return i, f"{reach.location}: {bucket or 'no such file there'}", "bucket" if bucket else ""
                if reach.size >= 0 and found.size != reach.size:
                    return i, f"{reach.location}: a file of {found.size:,} bytes there, not {reach.size:,}", ""
        except storage.StorageError as err:
            return i, err.reason, err.cause
        except (OSError, ValueError) as err:
            return i, str(err), ""
    return None


def _sees(path: str, size: int) -> bool:
    """Whether this process sees the file `path` (of `size` bytes unless -1)."""
    try:
        return os.path.isfile(path) and (size < 0 or os.path.getsize(path) == size)
    except OSError:
        return False


@contextlib.contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """This process's environment with `values` set (None: unset), as it was afterwards."""
    kept = {name: os.environ.get(name) for name in values}

    def put(chosen: Mapping[str, str | None]) -> None:
        for name, value in chosen.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    put(values)
    try:
        yield
    finally:
        put(kept)


def refusal(reach: Reach, node: str, why: str, cause: Cause, nodes: int, failed: int = 1) -> Exception:
    """The one-line error for a `reach` that the node at `node` did not reach, `why` and
    `cause` being its answer (`unreached`), on a cluster of `nodes` nodes of which `failed`
    answered so: ValueError for a local path, StorageError for a URI (advised by `cause`)."""
    from sessions import storage

    others = f"; {failed - 1} other node{'s' if failed > 2 else ''} cannot either" if failed > 1 else ""
    if storage.is_local(reach.location):
        return ValueError(
            f"{reach.what} {reach.shown}: a local path that node {node} does not see as this one does (this Ray "
            f"cluster has {_nodes(nodes)}{others}); give a URI every node reaches (s3://BUCKET/...), or a file system "
            "mounted alike on every node"
        )
    said = why.removeprefix(f"{reach.what} ").removeprefix(f"{reach.location}: ").rstrip(".")
    verb = "write there" if reach.write else "read it"
    return storage.StorageError(
        f"{reach.what} {reach.location}: node {node} cannot {verb}: {said}",
        f"; {_advice(cause, reach)} (this Ray cluster has {_nodes(nodes)}{others}; the job's driver reaches it)",
        cause,
    )


def _advice(cause: Cause, reach: Reach) -> str:
    """What to do about a node's `cause` of failing to reach `reach` (`StorageError.cause`).

    A node's processes see the environment of that node's Ray (what `ray start` had there)
    and the job's `env_vars` (`ray job submit --runtime-env-json`: Ray sets them for the
    job's driver and for every task and actor of the job, Ray Train's workers included),
    never the environment of the shell that started the job. An S3 endpoint is the node's
    own (AWS_ENDPOINT_URL there) for a data job's tasks; Ray Train's workers ask the
    driver's (`Reach.env`)."""
    from sessions import storage

    s3 = storage.scheme(reach.location) == "s3"
    own_endpoint = s3 and not reach.env
    if cause == "unreachable":
        if not own_endpoint:
            return "every node must reach the store: check that node's network"
        return (f"every node must reach the store: check that node's network and its AWS_ENDPOINT_URL (set it on each "
                f"node, or pass it with `{_submit('AWS_ENDPOINT_URL')}`)")  # fmt: skip
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if s3 else ()
    if cause == "credentials":
        return (f"every node needs the store's credentials: set them on each node (or give the nodes an instance "
                f"role), or pass them with `{_submit(*keys)}`")  # fmt: skip
    # a bucket or a file the driver finds and that node does not: it asks another store, or as another account
    endpoint = ("AWS_ENDPOINT_URL",) if own_endpoint else ()
    return (f"that node asks another store than the driver does: give every node the driver's "
            f"{'endpoint and ' if own_endpoint else ''}credentials (set them on each node, or pass them with "
            f"`{_submit(*endpoint, *keys)}`)")  # fmt: skip


def _submit(*names: str) -> str:
    """`ray job submit --runtime-env-json '{"env_vars": {"NAME": ..., ...}}'` for `names`."""
    listed = ", ".join(f'"{name}": ...' for name in names) or "..."
    return f"ray job submit --runtime-env-json '{{\"env_vars\": {{{listed}}}}}'"
