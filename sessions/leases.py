"""An output lock on S3: a lease object made and kept by conditional writes.

`sessions.io.lock_output` makes a local output directory one job's with a file created
exclusively (O_EXCL), which names the process holding it. pyarrow's filesystems have no
exclusive create on an object store, but S3 has had conditional writes since 2024: a
PutObject with `If-None-Match: *` fails (412 Precondition Failed) when the key exists,
and one with `If-Match: <ETag>` when the object is no longer the version read. Those
make a lock that two machines cannot both take.

A job on another machine cannot be asked whether it still runs, so the lock is a
*lease* (Gray & Cheriton 1989): its holder rewrites it every `RENEW_S` seconds, and a
lock not rewritten for `LEASE_S` seconds belongs to a job that is gone (killed, its
machine lost). Its age is judged by the store's own clock (the object's LastModified
against the Date of the store's answer), never by this machine's. A gone holder's lock
is taken over by a conditional write on the version read, so that of two jobs taking
over one stale lock only one wins. Where the holder ran on this very machine (the same
host, boot and PID namespace) and is no longer running, the lock is taken over at once.

Credentials and the endpoint come from the standard AWS variables and files, as for
pyarrow's S3 filesystem (`AWS_ENDPOINT_URL` for an S3-compatible store). A store that
does not implement conditional writes answers 501 Not Implemented, or ignores the
condition (a second conditional write of the new lock is taken): the job then runs
unlocked, with a warning (`NotSupported`).

A job that stalls past `LEASE_S` (paused, swapped out, cut off from the store) may find
its lock taken over: `Lease.confirm`, asked before each change to the output (each
object moved or deleted, each file put in place: `sessions.io`), then raises
`LeaseLost`, and the job stops without touching the output again. A lease cannot fence
a change already under way when it lapses, since no object store checks a token on
every write (Kleppmann's fencing tokens): a job that stalls for `LEASE_S` between its
check and the one change that follows it still makes that change on waking (a part file
lands beside the other job's tables, under a name no manifest lists; one object moved
or deleted). The window is one request long; the stall must outlast the lease.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from email.utils import parsedate_to_datetime
from typing import Any

LEASE_S = 60.0  # a lock not rewritten for this long (the store's clock) is a gone job's
RENEW_S = 15.0  # how often the holder rewrites its lock
_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404")  # another writer got there first
_UNSUPPORTED = ("NotImplemented", "501")


class Held(Exception):
    """The lock is another job's: `holder` is what it says of the process (its record,
    {} when unreadable) and `age_s` how long ago, in seconds by the store's clock, it was
    last rewritten."""

    def __init__(self, holder: dict, age_s: float) -> None:
        super().__init__(holder, age_s)
        self.holder, self.age_s = holder, age_s


class NotSupported(Exception):
    """The store does not implement conditional writes: it answers 501 to them, or takes
    a write that its condition should have refused. No lock can be made there."""


class LeaseLost(OSError):
    """This job's lock is no longer its own: another job took it over (it was not renewed
    for `LEASE_S` seconds: the job stalled, paused or cut off from the store), or it was
    deleted, or it could not be confirmed. The job must stop without touching the output,
    which may be the other job's now."""


class Lease:
    """A lock object this process made (`acquire`), rewritten every `RENEW_S` seconds by
    a daemon thread until `release`. `lost` says why it was lost meanwhile (another job
    took it over after `LEASE_S` without a rewrite, or it was deleted), else None;
    `confirm` is asked before each change to the output."""

    def __init__(self, location: str, record: dict, etag: str) -> None:
        self.location, self.record, self.etag = location, record, etag
        self._bucket, self._key = bucket_key(location)
        self._writes = 0  # the lock as `acquire` wrote it is `_body(record, 0)`
        self.lost: str | None = None
        self._renewed = _clock()  # when a write of it last succeeded
        self._writing = threading.Lock()  # one conditional rewrite at a time: each changes the ETag the next needs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="sessionflow-lease", daemon=True)
        self._thread.start()

    def _rewrite(self) -> None:
        """Rewrite the lock on the condition that it is still the version this process
        wrote last; `lost` set and LeaseLost raised when it is not. Network errors are raised."""
        from botocore.exceptions import ClientError

        with self._writing:
            if self.lost:
                raise LeaseLost(f"this job's lock {self.location} is no longer its own ({self.lost})")
            self._writes += 1  # each rewrite's body differs, so its ETag does: a taker's condition on the last fails
            try:
                self.etag = s3_client().put_object(Bucket=self._bucket, Key=self._key, IfMatch=self.etag,
                                                 Body=_body(self.record, self._writes))["ETag"]  # fmt: skip
            except ClientError as err:
                if _code(err) not in _RACE:
                    raise
                # a rewrite whose answer was lost, retried by the client: the lock is this one's all the same
                if (held := read(self.location)) is None or _identity(held[0]) != self.record:
                    self.lost = f"another job took it over after {LEASE_S:g} s without a renewal, or it was deleted"
                    raise LeaseLost(f"this job's lock {self.location} is no longer its own ({self.lost})") from None
                self.etag = held[2]
            self._renewed = _clock()

    def _renew(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        while not self._stop.wait(RENEW_S):
            try:
                self._rewrite()
            except LeaseLost:  # told by the job, which stops at its next change to the output (`confirm`)
                return
            except (ClientError, BotoCoreError, OSError):
                continue  # the store out of reach for a moment: the next rewrite may get through

    def fresh(self) -> bool:
        """Whether the lock was written less than `LEASE_S` / 2 ago by this machine's
        clock (`_clock`): no other job can have taken it over since (that takes `LEASE_S`
        without a write, by the store's clock)."""
        return not self.lost and _clock() - self._renewed < LEASE_S / 2

    def confirm(self) -> None:
        """LeaseLost unless the lock is still this process's: known at once while it is
        `fresh`, else by a conditional rewrite (a job that stalled past a renewal: paused,
        swapped out, cut off from the store). LeaseLost too when the store cannot be asked."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.fresh():
            return
        try:
            self._rewrite()
        except LeaseLost:
            raise
        except (ClientError, BotoCoreError, OSError) as err:
            raise LeaseLost(f"this job's lock {self.location} cannot be confirmed ({_message(err)})") from None

    def release(self) -> None:
        """Stop rewriting the lock and delete it, unless another job holds it now."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._stop.set()
        self._thread.join()
        if self.lost:
            return
        fresh = self.fresh()
        try:
            s3_client().delete_object(Bucket=self._bucket, Key=self._key, IfMatch=self.etag)
        except ClientError as err:
            # a store without conditional deletes: delete it only where no other job can hold it yet
            if _code(err) in _UNSUPPORTED and fresh:
                with suppress(ClientError, BotoCoreError):
                    s3_client().delete_object(Bucket=self._bucket, Key=self._key)
        except BotoCoreError:
            pass  # out of reach: the lease lapses by itself after LEASE_S


def acquire(location: str, record: dict, gone: Callable[[dict], bool]) -> Lease:
    """Take the lock object at `location` (`s3://bucket/key`) for this process, whose
    `record` (a JSON-ready dict) it holds. `gone(holder)` says whether the process a lock
    names is known to have ended (seen from here); a lock is taken over when it has, or
    when it was not rewritten for `LEASE_S` seconds.

    Raises Held when another job holds it; NotSupported when the store lacks conditional
    writes; OSError (the store's answer, one line) for any other failure, such as
    missing credentials or bucket."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = bucket_key(location)
    body = _body(record, 0)
    holder, age_s = {}, 0.0
    try:
        for _ in range(5):
            try:
                etag = s3_client().put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
                _refused_again(bucket, key, body)
                return Lease(location, record, etag)
            except ClientError as err:
                if _code(err) in _UNSUPPORTED:
                    raise NotSupported(location) from None
                if _code(err) not in _RACE:
                    raise
            held = read(location)
            if held is None:  # deleted since: try again
                continue
            holder, age_s, seen = held
            if _identity(holder) == record:  # made by this very call, its answer lost and the write retried
                return Lease(location, record, seen)
            if age_s < LEASE_S and not (holder and gone(holder)):
                raise Held(holder, age_s)
            try:
                etag = s3_client().put_object(Bucket=bucket, Key=key, Body=body, IfMatch=seen)["ETag"]
                return Lease(location, record, etag)
            except ClientError as err:
                if _code(err) not in _RACE:
                    raise
    except (ClientError, BotoCoreError) as err:
        raise OSError(f"{location}: {_message(err)}") from None
    raise Held(holder, age_s)  # taken and retaken while we looked, five times over


def _refused_again(bucket: str, key: str, body: bytes) -> None:
    """NotSupported (the lock deleted again) when the store takes a second write of the
    key just made on the condition that none is there: it ignores the condition, as a
    store predating S3's conditional writes may, and a lock there keeps no one out."""
    from botocore.exceptions import ClientError

    try:
        s3_client().put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as err:
        if _code(err) in _RACE:
            return
        raise
    s3_client().delete_object(Bucket=bucket, Key=key)
    raise NotSupported(f"s3://{bucket}/{key}")


def read(location: str) -> tuple[dict, float, str] | None:
    """The lock object at `location`: (its record, {} when unreadable; its age in seconds
    by the store's clock; its ETag), or None when there is none. OSError in one line when
    the store cannot be asked."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = bucket_key(location)
    try:
        got = s3_client().get_object(Bucket=bucket, Key=key)
        raw = got["Body"].read()
    except ClientError as err:
        if _code(err) in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise OSError(f"{location}: {_message(err)}") from None
    except BotoCoreError as err:
        raise OSError(f"{location}: {_message(err)}") from None
    try:
        holder = json.loads(raw)
        holder = holder if isinstance(holder, dict) else {}
    except (ValueError, RecursionError):  # garbled (RecursionError: nested past Python's limit)
        holder = {}
    date = got["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
    now = parsedate_to_datetime(date).timestamp() if date else time.time()
    return holder, max(0.0, now - got["LastModified"].timestamp()), got["ETag"]


def _body(record: dict, writes: int) -> bytes:
    """The lock's bytes: its holder's `record`, and how many times it rewrote it (`written`),
    so that every rewrite has an ETag of its own (S3's is the MD5 of the bytes): a taker's
    condition on a version read before a late renewal then fails."""
    return json.dumps({**record, "written": writes}).encode()


def _identity(holder: dict) -> dict:
    """A lock's record without its count of rewrites: the process that holds it."""
    return {key: value for key, value in holder.items() if key != "written"}


def _clock() -> float:
    """Seconds on a clock that goes on while the machine is suspended (a laptop asleep,
    a VM paused): Linux's CLOCK_BOOTTIME; `time.monotonic` elsewhere (which stops then
    on Linux, and would take a lease held across a suspend for a fresh one)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


def bucket_key(location: str) -> tuple[str, str]:
    """The bucket and the key of an `s3://bucket/key` location."""
    bucket, _, key = location.split("://", 1)[1].partition("/")
    return bucket, key


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _message(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


@functools.cache
def _client_for(endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(  # checksums only where an operation needs one: S3-compatible stores refuse the SDK's default CRCs
        connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"},
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )  # fmt: skip
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=config)


def s3_client() -> Any:
    """A boto3 S3 client for the endpoint of `AWS_ENDPOINT_URL` (AWS itself when it is not
    set), one per endpoint (boto3's clients are thread-safe): 5 s to connect, 20 s to read,
    three attempts."""
    return _client_for(os.environ.get("AWS_ENDPOINT_URL"))
