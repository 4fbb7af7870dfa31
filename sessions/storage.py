"""Where files live: a local path or a URI of any filesystem pyarrow or fsspec knows.

Every input and output of sessionflow goes through this module, so a job reads
`s3://bucket/aol/*.gz` and writes `gs://bucket/out` exactly as it reads and writes
local paths. A location is a plain string:

- a local path (relative or absolute; `~` expanded), or `file:///abs/path`;
- `s3://`, `gs://` (`gcs://`), `abfs://` (`abfss://`), `hdfs://`: pyarrow's own
  filesystems (C++, multi-threaded), which take credentials, regions and endpoints
  from the providers' standard environment variables and files (`AWS_*`,
  `~/.aws/config`, `AWS_ENDPOINT_URL`; `GOOGLE_APPLICATION_CREDENTIALS`; ...);
- any other scheme fsspec has a registered implementation for (`memory://`,
  `http://`, ...), used through pyarrow's `FSSpecHandler`; the package it needs is
  named in the error when it is missing.

Object stores have no atomic rename, so outputs are published with markers, not
renames (see `sessions.io`): a single file is written under a temporary name and
moved into place (one atomic PUT on an object store), and a dataset directory is
complete only once its manifest is there.

Errors: `StorageError` (an `OSError`) with one line naming the location and what to
do (install a package, set credentials, create the bucket).
"""

from __future__ import annotations

import bz2
import errno
import fnmatch
import functools
import lzma
import os
import posixpath
import re
import stat
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Literal, Protocol, Self

import lz4.frame
import pyarrow as pa
import pyarrow.fs as pafs
import zstandard
from zlib_ng import zlib_ng

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# pyarrow's native filesystems; every other scheme goes through fsspec.
_NATIVE = {"s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs", "file"}
_GLOB = re.compile(r"[*?\[]")
_HINTS = {
    "s3": "set AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws) and, "
    "for another endpoint than AWS, AWS_ENDPOINT_URL",
    "gs": "set GOOGLE_APPLICATION_CREDENTIALS or log in with `gcloud auth application-default login`",
    "abfs": "set AZURE_STORAGE_ACCOUNT_NAME and a key or a login",
}
_HINTS["gcs"] = _HINTS["gs"]  # pyarrow's alias


# refused for want of credentials; `403` as a status, not inside a request id's hex (which made a missing bucket's
# error, now and then, read as one of credentials)
_AUTH = re.compile(r"ACCESS_DENIED|credentials|Forbidden|\b403\b|InvalidAccessKey|OAuth2|authenticate")
READ_AHEAD_BYTES = 8 << 20  # one request's worth of a remote file read sequentially
GCS_RETRY_SECONDS = 20  # how long a gs:// call retries before failing (pyarrow's default: 15 minutes)


_CHANGE_CHECKS: list[Callable[[str], None]] = []  # see `check_changes_with`


def check_changes_with(check: Callable[[str], None]) -> None:
    """Have `check(location)` called before every change that replaces, moves or deletes
    what is at a location (`open_output`'s move into place, `move`, `remove`,
    `remove_files`), in this process; an exception it raises stops the change.
    `sessions.io` confirms there that the lock of an S3 output is still the job's."""
    _CHANGE_CHECKS.append(check)


def _changing(*locations: str | os.PathLike) -> None:
    for check in _CHANGE_CHECKS:
        for location in locations:
            check(str(location))


Cause = Literal["unreachable", "bucket", "credentials", ""]


class StorageError(OSError):
    """A location that cannot be resolved, read or written; the message is one line
    naming it and what to do: `reason` (what happened, naming the location), then
    `advice` (what to do, as appended: `"; check the network ..."`, `" (set AWS
    credentials ...)"`; "" where the reason says it all). `cause` says what stood in the
    way: "unreachable" (the store did not answer, or not over HTTPS), "bucket" (none of
    that name), "credentials" (missing or refused), "" (anything else), for a caller that
    gives advice of its own (a cluster's node that cannot reach what the driver reaches:
    `workflows.distributed.nodes`). The fields pickle with the exception."""

    def __init__(self, reason: str, advice: str = "", cause: Cause = "") -> None:
        super().__init__(reason + advice)
        self.reason, self.advice, self.cause = reason, advice, cause

    def reworded(self, reason: str) -> StorageError:
        """This error with another `reason` (the same location named in a caller's
        words), its advice and cause kept."""
        return StorageError(reason, self.advice, self.cause)


def scheme(location: str | os.PathLike) -> str:
    """The URI scheme of a location (`s3`, `gs`, ...), `""` for a local path."""
    match = _SCHEME.match(str(location))
    return match.group(1).lower() if match else ""


def is_local(location: str | os.PathLike) -> bool:
    """Whether a location is on this machine's own filesystem."""
    return scheme(location) in ("", "file")


S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # the SDK's order (`s3_endpoint`)


def s3_endpoint() -> tuple[str, str] | None:
    """The S3 endpoint the AWS SDK asks, and the variable that sets it: `AWS_ENDPOINT_URL_S3`
    before `AWS_ENDPOINT_URL` (the SDK's own order); None where neither is set (AWS itself)."""
    for variable in S3_ENDPOINT_VARIABLES:
        if value := os.environ.get(variable):
            return variable, value
    return None


@functools.lru_cache(maxsize=64)
def _filesystem(kind: str, authority: str, endpoint: str | None) -> pafs.FileSystem:
    """One filesystem per scheme, bucket and S3 endpoint (`s3_endpoint`, as text: S3 looks
    the bucket's region up once; a process that changes the endpoint gets a filesystem
    that asks it)."""
    uri = f"{kind}://{authority}/"
    if kind in ("gs", "gcs"):  # without credentials its default retries go on for 15 minutes (gcs:// too)
        return pafs.GcsFileSystem(retry_time_limit=timedelta(seconds=GCS_RETRY_SECONDS))
    if kind in _NATIVE:
        return pafs.FileSystem.from_uri(uri)[0]
    import fsspec

    try:
        fs, _ = fsspec.core.url_to_fs(uri)
    except ImportError as err:
        raise StorageError(f"{uri}: {err} (pip install it)") from None
    except ValueError:
        raise StorageError(
            f"{uri}: no installed filesystem handles {kind}:// (pyarrow handles s3, gs, abfs, hdfs; "
            f"fsspec's other schemes need their package, e.g. pip install gcsfs, adlfs, s3fs)"
        ) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def resolve(location: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a location and the path within it (pyarrow's form: no scheme,
    `bucket/key` on object stores, absolute on the local filesystem).

    Raises StorageError for a scheme no installed filesystem handles."""
    text = str(location)
    kind = scheme(text)
    if kind in ("", "file"):
        path = text
        if kind:  # file:///p, file://localhost/p (RFC 8089); another host is not this machine
            host, slash, rest = text[len("file://") :].partition("/")
            if host not in ("", "localhost"):
                raise StorageError(f"{text}: a file:// URI of another host ({host}); give a path on this machine")
            path = slash + rest
        return pafs.LocalFileSystem(), absolute(path)
    rest = text[len(kind) + 3 :]
    authority, _, key = rest.partition("/")
    if any(part in ("", ".", "..") for part in key.rstrip("/").split("/")) and key.rstrip("/"):
        fixed = posixpath.normpath("/" + key).lstrip("/")
        raise StorageError(
            f"{text}: an object store's keys are names, not paths: a '.', '..' or empty part in one names "
            f"no folder there; write {kind}://{authority}/{fixed}"
        )
    try:
        fs = _filesystem(kind, authority, str(s3_endpoint()))
    except StorageError:
        raise
    except (OSError, pa.ArrowException, ValueError) as err:
        said, hint = first_line(err), _HINTS.get(kind)
        if hint is None:  # no store's advice: this is said with the reason, as a node's refusal quotes it
            said += "; check the URI"
        raise StorageError(f"{text}: {said}", f"; {hint}" if hint else "", _cause(said)) from None
    if kind in _NATIVE:
        return fs, f"{authority}/{key}".rstrip("/") if key else authority
    return fs, fs.handler.fs._strip_protocol(text).rstrip("/")  # type: ignore[attr-defined]


def first_line(err: BaseException) -> str:
    """An exception's message, its first line (the exception's type where it has none):
    for one-line errors that quote a library's reason (pyarrow, polars, fsspec)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _reason(err: BaseException, local: bool = True) -> str:
    """Why a filesystem call failed: for a `local` one the OS's words (`No such file or
    directory`), not the library's sentence naming the path again; else (or without an
    errno) the first line of the message."""
    if local and isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno)
    return re.sub(r"^\[Errno \d+\] ", "", first_line(err))


@contextmanager
def _errors(location: str | os.PathLike) -> Iterator[None]:
    """OSError / ArrowException of a filesystem call, as one StorageError line."""
    try:
        yield
    except (StorageError, FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise
    except (OSError, pa.ArrowException) as err:
        message = _reason(err, is_local(location)).split(" To create buckets")[0]
        hint = _HINTS.get(scheme(location))
        if not is_local(location) and (reason := next((w for w in _UNREACHABLE if w in str(err)), None)):
            raise _unreachable(str(location), reason) from None
        if scheme(location) == "s3" and _TLS.search(str(err)) and (told := _tls_refused(str(location))):
            raise told from None
        if len(message) > 240:  # cloud SDKs repeat their whole retry story
            message = message[:240].rsplit(" ", 1)[0] + " ..."
        cause = _cause(message)
        if cause == "bucket":  # the SDK's sentence names the request and the key it was at
            raise StorageError(f"{location}: {_no_bucket(str(location))}", _CREATE_BUCKET, cause) from None
        advice = f" ({hint})" if hint and cause == "credentials" else ""
        raise StorageError(f"{location}: {message}", advice, cause) from None


def _cause(said: str) -> Cause:
    """What stood in the way of a call that failed with a library's words `said`
    (`StorageError.cause`)."""
    if any(words in said for words in _UNREACHABLE):
        return "unreachable"
    if _NO_BUCKET.search(said):
        return "bucket"
    return "credentials" if _AUTH.search(said) else ""


# a missing bucket in the words of pyarrow (S3, GCS) and the AWS SDK; not a missing key ("NO_SUCH_KEY ...
# The specified key does not exist"), for which creating the bucket is no advice
_NO_BUCKET = re.compile(r"NoSuchBucket|NO_SUCH_BUCKET|bucket '[^']*' not found|bucket does not exist", re.IGNORECASE)
_UNREACHABLE = ("Couldn't resolve host", "Could not resolve host", "Couldn't connect", "Could not connect",
                "Name or service not known", "Connection refused", "timed out", "Timeout was reached")  # fmt: skip


# the AWS SDK's words (curl's) for a TLS handshake that met no TLS: an endpoint that speaks plain HTTP
_TLS = re.compile(r"SSL connect error|wrong version number|ssl3_get_record", re.IGNORECASE)


def _tls_refused(location: str) -> StorageError | None:
    """The error for an S3 endpoint (`s3_endpoint`) asked over TLS that answered without it
    (a local MinIO or moto given as `127.0.0.1:9000`: an endpoint without a scheme is
    asked over https), with the endpoint as http://; None where none is set or it is
    http:// already."""
    variable, endpoint = s3_endpoint() or ("", "")
    if not endpoint.strip() or endpoint.strip().startswith("http://"):
        return None
    plain = "http://" + endpoint.strip().removeprefix("https://")
    why = "" if endpoint.strip().startswith("https://") else " (an endpoint without http:// is asked over HTTPS)"
    # its fix names the endpoint the node asked: kept in the reason, which a node's refusal quotes
    return StorageError(f"{_bucket(location)}: the endpoint {endpoint} ({variable}) does not answer over HTTPS"
                        f"{why}; if it speaks plain HTTP, as a local MinIO or moto does, set {variable}={plain}",
                        cause="unreachable")  # fmt: skip


_CREATE_BUCKET = ": create the bucket first, or check its name"  # `_errors`' advice after `_no_bucket`


def _bucket(location: str) -> str:
    """`scheme://bucket` of an object store's location."""
    kind, rest = location.split("://", 1)
    return f"{kind}://{rest.split('/')[0]}"


def _unreachable(location: str, reason: str) -> StorageError:
    """The error for an object store that does not answer: the bucket (not the key a job
    happened to probe first, such as an input's `events.parquet`) and, for S3, the
    endpoint asked."""
    kind, bucket = scheme(location), _bucket(location)
    variable, endpoint = (s3_endpoint() if kind == "s3" else None) or ("AWS_ENDPOINT_URL", None)
    where = f"the endpoint {endpoint} ({variable})" if endpoint else "its object store"
    hint = f"check the network and {variable}" if kind == "s3" else "check the network"
    return StorageError(f"{bucket}: cannot reach {where}: {reason.lower()}", f"; {hint}", "unreachable")


def absolute(location: str | os.PathLike) -> str:
    """A local path made absolute (against this process's working directory, so that a
    Ray worker, whose working directory differs, finds the same file); URIs as they are.
    A `..` goes where the system takes it: after a symbolic link, to the parent of the
    link's target (`link/../x`), not lexically to the link's own directory, where the job
    would have written what `ls link/../x` does not show. ValueError in one line for a
    `..` after a link that leads nowhere (a missing target, a loop)."""
    text = str(location)
    if kind := scheme(text):
        return kind + text[len(kind) :]  # the scheme in lower case (S3:// is s3://)
    parts = os.path.join(os.getcwd(), os.path.expanduser(text)).split(os.sep)
    if ".." not in parts:
        return os.path.normpath(os.sep.join(parts))  # os.path.abspath
    last = len(parts) - 1 - parts[::-1].index("..")
    head = os.sep.join(parts[: last + 1])
    try:
        resolved = os.path.realpath(head, strict=True)
    except OSError:  # a part missing (taken lexically, as `mkdir -p` makes it), or a link that leads nowhere
        for i in range(1, last + 1):
            if os.path.islink(link := os.sep.join(parts[:i]) or os.sep) and not os.path.exists(link):
                raise ValueError(
                    f"{text}: {link} is a symbolic link that leads nowhere ({os.readlink(link)}: missing, or a "
                    "loop of links), so the `..` after it names no directory"
                ) from None
        resolved = os.path.realpath(head)
    return os.path.normpath(os.path.join(resolved, *parts[last + 1 :]))


def join(location: str | os.PathLike, *names: str) -> str:
    """`location/name/...`, keeping a URI a URI (`os.path.join` for local paths)."""
    text = str(location)
    if is_local(text) and not scheme(text):
        return os.path.join(text, *names)
    return posixpath.join(text.rstrip("/"), *names)


def name(location: str | os.PathLike) -> str:
    """The last component of a location."""
    return posixpath.basename(str(location).rstrip("/"))


def parent(location: str | os.PathLike) -> str:
    """The location a location is in."""
    text = str(location).rstrip("/")
    return os.path.dirname(text) if not scheme(text) else posixpath.dirname(text)


def _rebuild(location: str, fs_path: str, path: str) -> str:
    """The location of `path`, a path under `fs_path` (what `location` resolved to), in
    the location's own form: a relative local path stays relative, a URI a URI."""
    relative = path[len(fs_path) :].lstrip("/")
    return join(location, *relative.split("/")) if relative else location


def info(location: str | os.PathLike) -> pafs.FileInfo:
    """pyarrow's `FileInfo` of a location (type NotFound when nothing is there); StorageError,
    one line, when its filesystem cannot be reached or asked."""
    fs, path = resolve(location)
    with _errors(location):
        return fs.get_file_info(path)


def exists(location: str | os.PathLike) -> bool:
    """Whether a file or a directory is at `location` (`info`, whose errors it raises)."""
    return info(location).type != pafs.FileType.NotFound


def why_missing(location: str | os.PathLike, otherwise: str) -> str:
    """Why nothing is at `location` (where `exists` said so), for a one-line error: that
    its bucket does not exist (`_no_bucket`), for an object-store URI whose bucket is not
    there (a job had said "no sessions here; run segment first" of a mistyped bucket),
    else `otherwise`."""
    missing = _missing_bucket(str(location))  # " (the bucket B does not exist ...)" or ""
    return missing.removeprefix(" (").removesuffix(")") if missing else otherwise


def is_dir(location: str | os.PathLike) -> bool:
    """Whether a directory is at `location` (`info`, whose errors it raises)."""
    return info(location).type == pafs.FileType.Directory


def is_file(location: str | os.PathLike) -> bool:
    """Whether a file is at `location` (`info`, whose errors it raises)."""
    return info(location).type == pafs.FileType.File


def list_files(
    location: str | os.PathLike, *, recursive: bool = False, suffix: str = "", hidden: bool = False
) -> list[str]:
    """Files under a directory, sorted by location; names starting with `.` or `_`
    (temporary files, markers) are left out unless `hidden`. Empty for a missing directory."""
    fs, path = resolve(location)
    with _errors(location):
        if recursive and isinstance(fs, pafs.LocalFileSystem):
            found = _local_files(path)
        else:
            entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive))
            # an object store's object named like a folder (`logs/sub/`, holding bytes) beside the folder's
            # objects is listed as a file of the folder's name: kept as its key, `/` and all (`is_hidden`)
            folders = {entry.path for entry in entries if entry.type == pafs.FileType.Directory}
            found = [entry.path + ("/" if entry.path in folders else "") for entry in entries
                     if entry.type == pafs.FileType.File]  # fmt: skip
    files = []
    for file in found:
        if (hidden or not is_hidden(file[len(path) :])) and file.endswith(suffix):
            files.append(_rebuild(str(location), path, file))
    return sorted(files)


def is_hidden(relative: str) -> bool:
    """Whether a path under a directory (relative to it) is hidden: a name on it starts
    with `.` or `_` (temporary files, markers: `.DS_Store`, Spark's `_SUCCESS`), or it
    ends with `/` (an object store's folder marker that holds bytes: `list_files`)."""
    return relative.endswith("/") or any(part[:1] in "._" for part in relative.strip("/").split("/"))


def _local_files(root: str) -> list[str]:
    """Every file below the local directory `root`, following links to directories
    outside it, each directory entered once (by device and inode); a link to a directory
    inside `root` is not entered, its files are listed under their own path. pyarrow's
    recursive selector follows every link to about 40 levels, so a link back to an
    ancestor listed the same files 40 times, and two such links 2^40 times."""
    top = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    files = []
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(subdirectories):
            full = os.path.join(directory, name)
            if os.path.islink(full) and (os.path.realpath(full) + "/").startswith(top + "/"):
                continue
            try:
                st = os.stat(full)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                kept.append(name)
        subdirectories[:] = kept
        files += [f for f in (os.path.join(directory, n) for n in names) if os.path.isfile(f)]
    return files


def list_dirs(location: str | os.PathLike) -> list[str]:
    """The directories directly under a directory, sorted (hidden ones left out)."""
    fs, path = resolve(location)
    with _errors(location):
        entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(
        _rebuild(str(location), path, e.path)
        for e in entries
        if e.type == pafs.FileType.Directory and not e.base_name.startswith((".", "_"))
    )


def list_names(location: str | os.PathLike) -> list[str]:
    """The names of the files and directories directly under a directory, sorted (hidden
    ones, starting with `.` or `_`, left out). Empty for a missing directory."""
    fs, path = resolve(location)
    with _errors(location):
        entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(e.base_name for e in entries if not e.base_name.startswith((".", "_")))


ANY_NAME = re.compile(r".*", re.S)  # every name (`hidden_names`)
TEMPORARY = re.compile(r"\..+\.tmp-[0-9a-f]{12}")  # `open_output`'s temporary name of a file it writes


def remove_leftovers(
    location: str | os.PathLike, patterns: Sequence[re.Pattern] = (), marker: str | None = None
) -> list[str]:
    """Delete what killed runs left directly under a directory: temporary files of
    `open_output` (`TEMPORARY`) and entries whose whole names match one of `patterns`
    (a name a job makes, with its random id: a user's `.staging-photos/` or
    `.vimrc.tmp-1` is no job's), holding the file `marker` where one is given (a
    user's `.staging-20261205abcd/` has none). Returns the names deleted."""

    def ours(name: str) -> bool:  # one listing, each name judged
        if TEMPORARY.fullmatch(name):
            return True
        return any(p.fullmatch(name) for p in patterns) and (marker is None or exists(join(location, name, marker)))

    names = [name for name in hidden_names(location, ANY_NAME) if ours(name)]
    for leftover in names:
        remove(join(location, leftover))
    return names


def is_pattern(location: str | os.PathLike) -> bool:
    """Whether `expand` takes `location` for a glob pattern: it holds `*`, `?` or `[`,
    and no file is there by that very name."""
    return bool(_GLOB.search(str(location))) and not exists(location)


def expand(inputs: Sequence[str | os.PathLike], hidden: list[str] | None = None) -> list[str]:
    """Input files in the order given: a directory stands for its files (recursively,
    sorted by name; hidden files left out, and appended to `hidden` where given: one
    listing serves both), a glob pattern (`*`, `?`, `[...]` in the last components) for
    its matches, sorted.

    Raises FileNotFoundError for a missing file (or one that is not a regular file:
    a pipe, a device), an empty directory or a pattern matching nothing; ValueError
    for a directory of a Delta Lake or Iceberg table (`refuse_table_formats`)."""
    files: list[str] = []
    for item in map(absolute, inputs):
        if is_pattern(item):
            matches = _glob(item)
            if not matches:
                raise FileNotFoundError(f"{item}: no file matches{_missing_bucket(item)}")
            files += matches
            continue
        kind = info(item).type
        if kind == pafs.FileType.Directory:
            found = list_files(item, recursive=True, hidden=True)
            refuse_table_formats(item, found)
            if hidden is not None:
                hidden += [f for f in found if is_hidden(f[len(item) :])]
            found = [f for f in found if not is_hidden(f[len(item) :])]
            if not found:
                raise FileNotFoundError(f"{item}: empty directory")
            files += found
        elif kind == pafs.FileType.File:
            files.append(item)
        elif is_local(item) and os.path.exists(resolve(item)[1]):  # a FIFO, a socket, a device
            raise FileNotFoundError(f"{item}: not a regular file (a pipe, socket or device): write it to a file")
        else:
            raise FileNotFoundError(
                f"{item}: {broken_link(item) or 'no such file or directory'}{_missing_bucket(item)}"
            )
    return files


# A directory of a table format: its files include those of rows since removed or rewritten,
# which only its log tells apart (Delta Lake's `_delta_log/`, Apache Iceberg's `metadata/`).
_TABLE_FORMATS = (
    (re.compile(r"(?:^|/)_delta_log/[^/]+\.json$"), "a Delta Lake table (its _delta_log)",
     "deltalake: DeltaTable(PATH).to_pyarrow_table(), or Spark"),
    (re.compile(r"(?:^|/)metadata/[^/]*\.metadata\.json$"), "an Apache Iceberg table (its metadata/)",
     "pyiceberg: load_table(...).scan().to_arrow(), or Spark"),
)  # fmt: skip


def refuse_table_formats(directory: str, files: Sequence[str]) -> None:
    """ValueError, one line, when the listing `files` of `directory` (hidden files
    included) is that of a Delta Lake or Iceberg table: its part files would all be read,
    those of rows deleted or rewritten since included, with nothing to say so."""
    for pattern, what, tool in _TABLE_FORMATS:
        if any(pattern.search(f[len(directory) :]) for f in files):
            raise ValueError(f"{directory}: {what}, whose directory also holds the files of rows since deleted or "
                             f"rewritten, which would be read as well: write its current rows as Parquet first "
                             f"({tool}) and give that")  # fmt: skip


def link_target(location: str | os.PathLike) -> str:
    """Where a local symbolic link at `location` points (as written in the link); "" for
    anything else, object stores' keys included (they have no links)."""
    if not is_local(location) or not os.path.islink(path := resolve(location)[1]):
        return ""
    return os.readlink(path)


def broken_link(location: str) -> str:
    """Why a local `location` that is a symbolic link reaches no file: "a symbolic link
    that loops" or "a symbolic link to TARGET, which does not exist"; "" otherwise."""
    if scheme(location) not in ("", "file") or not os.path.islink(location):
        return ""
    try:
        os.stat(location)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link that loops"
        return f"a symbolic link to {os.readlink(location)}, which does not exist"
    return ""  # it reaches its target


def _missing_bucket(location: str) -> str:
    """` (the bucket B does not exist)` when that is why an object store location is
    missing, naming the S3 endpoint when AWS_ENDPOINT_URL sets one."""
    kind = scheme(location)
    if kind in ("", "file") or kind not in _NATIVE:
        return ""
    bucket = location[len(kind) + 3 :].split("/")[0]
    if exists(f"{kind}://{bucket}"):
        return ""
    return f" ({_no_bucket(location)})"


def _no_bucket(location: str) -> str:
    """ "the bucket B does not exist", naming the S3 endpoint when AWS_ENDPOINT_URL sets one
    (a wrong one finds no bucket either)."""
    kind = scheme(location)
    bucket = location[len(kind) + 3 :].split("/")[0]
    variable, endpoint = (s3_endpoint() if kind == "s3" else None) or ("", None)
    return f"the bucket {bucket} does not exist{f' at {variable} {endpoint}' if endpoint else ''}"


def _glob(pattern: str) -> list[str]:
    """Files matching a pattern, as a shell with `globstar` matches them: wildcards match
    within one path component, `**` any number of directories; names starting with `.`
    or `_` only where the pattern's component starts so too."""
    parts = pattern.rstrip("/").split("/")
    fixed = next(i for i, p in enumerate(parts) if _GLOB.search(p))
    base = "/".join(parts[:fixed]) or ("/" if pattern.startswith("/") else ".")
    wanted = parts[fixed:]
    out = []
    for file in list_files(base, recursive=len(wanted) > 1 or "**" in wanted, hidden=True):
        relative = file[len(base.rstrip("/")) :].lstrip("/") if base != "." else os.path.relpath(file, ".")
        if _match(relative.split("/"), wanted):
            out.append(file)
    return sorted(out)


def _match(got: list[str], wanted: list[str]) -> bool:
    """Whether path components match pattern components (`**`: zero or more of them)."""
    if not wanted:
        return not got
    if wanted[0] == "**":
        return any(_match(got[i:], wanted[1:]) for i in range(len(got) + 1) if not _hidden(got[:i]))
    return bool(got) and _match_name(got[0], wanted[0]) and _match(got[1:], wanted[1:])


def _hidden(names: list[str]) -> bool:
    return any(name[:1] in "._" for name in names)


def _match_name(name: str, pattern: str) -> bool:
    if name[:1] in "._" and pattern[:1] != name[:1]:
        return False
    return fnmatch.fnmatchcase(name, pattern)


def open_input(location: str | os.PathLike, *, compression: str | None = "detect") -> BinaryStream:
    """A sequential binary stream over a file. With `compression="detect"`, gzip, bz2,
    xz, zstd and LZ4 data are decompressed on the fly, told by the file's first bytes
    whatever its name (`compression_in`), by `DecompressingStream`, which hands out
    every byte before damage in the file (a download cut short, corrupt data) and then
    raises `DamagedStreamError`. `compression=None` gives the bytes as stored, a kind
    of `DecompressingStream.KINDS` decompresses that. Streams: nothing is read whole.

    FileNotFoundError when `location` is not a file (missing, or a directory);
    StorageError, one line, when its filesystem cannot be reached.
    """
    fs, path = resolve(location)
    with _errors(location):
        if fs.get_file_info(path).type != pafs.FileType.File:
            raise FileNotFoundError(f"{location}: no such file")
        # On object stores each read of the raw stream is one ranged GET: read ahead in
        # large requests (pyarrow reads 64 KiB at a time otherwise: ~800 GETs per 50 MB).
        buffer = None if isinstance(fs, pafs.LocalFileSystem) else READ_AHEAD_BYTES
        raw = fs.open_input_stream(path, compression=None, buffer_size=buffer)
        if compression != "detect":
            return raw if compression is None else DecompressingStream(raw, compression)
        head = b""  # the first bytes tell the compression; they are handed out (or decompressed) first
        while len(head) < HEAD_BYTES and (more := raw.read(HEAD_BYTES - len(head))):
            head += more
        kind = compression_in(head, path)
        if kind == LZ4_LEGACY:
            raw.close()
            return _Refused(LZ4_LEGACY_REFUSAL)
        return _Prefixed(raw, head) if kind is None else DecompressingStream(raw, kind, head=head)


# a suffix -> the compression it names (what `open_input` undoes, whatever the name says)
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".lz4": "lz4"}


def compression_of(path: str | os.PathLike) -> str | None:
    """The compression a file's name says it is in (`COMPRESSIONS`), or None."""
    return COMPRESSIONS.get(posixpath.splitext(str(path))[1].lower())


def uncompressed_name(path: str | os.PathLike) -> str:
    """A file's name without the compression suffixes it ends with (`x.tsv.bz2`: `x.tsv`):
    the name its kind (a table's, a README's) is told by."""
    base = name(path)
    while compression_of(base):
        base = posixpath.splitext(base)[0]
    return base


HEAD_BYTES = 16  # of a file, what `compression_in` looks at
LZ4_LEGACY = "lz4-legacy"  # what `compression_in` says of LZ4's legacy format, which is not read
LZ4_LEGACY_REFUSAL = (
    "LZ4's legacy format (what `lz4 -l` writes) is not read: decompress it with `lz4 -d`, or recompress it without -l"
)
# The first bytes of each compression's data: gzip (RFC 1952: ID1 ID2 and deflate's CM),
# xz (the .xz file format, 2.1.1.1), zstd (RFC 8878), the LZ4 frame format
# (lz4_Frame_format.md), bzip2 ("BZh", the block size 1-9, then the magic of a block, or
# of the end of an empty stream).
_MAGIC = ((b"\x1f\x8b\x08", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
          (b"\x04\x22\x4d\x18", "lz4"), (b"\x02\x21\x4c\x18", LZ4_LEGACY))  # fmt: skip
_BZ2 = re.compile(rb"BZh[1-9](?:\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")
_SKIPPABLE = re.compile(rb"[\x50-\x5f]\x2a\x4d\x18")  # a skippable frame (pzstd's first): zstd's and LZ4's alike


def compression_in(head: bytes, path: str | os.PathLike = "") -> str | None:
    """The compression of a file whose first bytes are `head` (`HEAD_BYTES` of them, or
    the whole file), one of `DecompressingStream.KINDS`, `LZ4_LEGACY`, or None for data
    as stored. The data decide, whatever the name says, as polars and `zcat -f` tell it:
    a gzip log named `.txt` is decompressed, and a `.gz` that a browser decompressed on
    download is read as the bytes it holds (text in any encoding, an archive: what the
    readers then say of them). A skippable frame, which zstd and LZ4 share (pzstd writes
    one first), is told by the frame after it where `head` holds its start, else by the
    name (`compression_of`; a name of neither: zstd)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if _BZ2.match(head):
        return "bz2"
    if _SKIPPABLE.match(head):
        after = 8 + int.from_bytes(head[4:8], "little")  # the frame's magic and size, then its data
        told = compression_in(head[after:]) if after < len(head) else None
        named = compression_of(path) if path else None
        return told if told in ("zstd", "lz4") else named if named in ("zstd", "lz4") else "zstd"
    return None


class _Closing:
    """What `open_input`'s own streams share: leaving a `with` block closes them."""

    def close(self) -> None:
        """Close what the stream reads from."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Prefixed(_Closing):
    """A raw stream whose first bytes (`head`) were read already: they come first."""

    def __init__(self, raw: pa.NativeFile, head: bytes) -> None:
        self.raw, self._head = raw, head

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self.raw.read(size)
        if 0 <= size <= len(self._head):
            out, self._head = self._head[:size], self._head[size:]
            return out
        out, self._head = self._head + self.raw.read(-1 if size < 0 else size - len(self._head)), b""
        return out

    def close(self) -> None:
        self.raw.close()


class _Refused(_Closing):
    """A stream of a file that is not read: its first `read` raises `DamagedStreamError`
    with the reason, so that the file is reported as the readers report damage."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def read(self, size: int = -1, /) -> bytes:
        raise DamagedStreamError(self.reason)


class _Decompressor(Protocol):
    """What `DecompressingStream` asks of an incremental decompressor (zlib's, bz2's,
    lzma's, python-zstandard's `decompressobj()`, python-lz4's `LZ4FrameDecompressor`)."""

    eof: bool  # the member or frame ended
    unused_data: bytes | None  # the input given after its end (python-lz4: None for none)

    def decompress(self, data: bytes, /) -> bytes: ...


class DamagedStreamError(OSError):
    """A compressed file breaks off or is corrupt; every byte before the damage was read."""


class BinaryStream(Protocol):
    """What `open_input` returns: a sequential binary stream (pyarrow's, or a
    `DecompressingStream`) that closes on leaving a `with` block."""

    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...
    def __enter__(self) -> BinaryStream: ...
    def __exit__(self, *exc: object) -> None: ...


class DecompressingStream(_Closing):
    """A gzip, bz2, xz, zstd or LZ4 stream over a raw byte stream (any number of
    members, streams or frames, as `cat a.gz b.gz` makes), decompressed with
    incremental decompressors, so that a damaged file yields every byte before the
    damage: `read` returns them, and the next `read` raises `DamagedStreamError` saying
    where the damage is (decompressed and compressed offsets). The decompressors:
    zlib-ng's drop-in `zlib` for gzip (twice as fast as the standard library's here),
    the standard library's bz2 and lzma (xz), python-zstandard and python-lz4's LZ4
    frame format (what the `zstd` and `lz4` tools write; pyarrow's own streams for these
    lose every byte of a read that meets the damage, which was the whole of a file under
    one read). Data comes out as the format decodes it: a zstd or LZ4 block, a bz2 block
    at a time, xz as it goes, and damage loses the blocks that the 4 KiB of compressed
    data fed with it completes (`PIECE`; less where a byte decompresses to much, so that
    a small file of a huge ratio is decompressed a few MiB at a time as it is read); the
    gzip chunk that holds corrupt data is salvaged byte by byte. Zero bytes after a
    member (padding some tools write) are no data. `head`: bytes of `raw` read already
    (`open_input`'s look at the first ones), decompressed first. ValueError for another
    `kind`."""

    KINDS = ("gzip", "bz2", "xz", "zstd", "lz4")
    RAW_CHUNK = 1 << 18
    PIECE = 1 << 12  # compressed bytes fed at a time to a decompressor but gzip's, at most
    MIN_PIECE = 64  # and at least, where each byte decompresses to much (`OUTPUT_PIECE`)
    OUTPUT_PIECE = 1 << 22  # the output aimed at by each piece fed
    # what each decompressor raises on corrupt data (python-lz4: RuntimeError)
    _ERRORS = (zlib_ng.error, OSError, EOFError, lzma.LZMAError, zstandard.ZstdError, RuntimeError)

    def __init__(self, raw: pa.NativeFile, kind: str, *, head: bytes = b"") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"no decompressor for {kind!r}: one of {', '.join(self.KINDS)}")
        self.raw, self.kind = raw, kind
        self._decompressor = self._new()
        self._chunks: deque[bytes | memoryview] = deque()  # decompressed, not yet handed out
        self._pending = 0  # their bytes
        self._raw: memoryview = memoryview(head)  # read (`head`: by the caller), not yet fed to the decompressor
        self._members = 0  # members or frames ended
        self._piece = self.MIN_PIECE  # compressed bytes fed next (`_feed`): a little, until the ratio is seen
        self._error: str | None = None
        self._eof = False
        self._raw_offset = 0
        self._offset = 0  # decompressed bytes handed out
        self._started = False  # whether the current member received any input

    def _new(self) -> _Decompressor:
        if self.kind == "gzip":
            return zlib_ng.decompressobj(wbits=16 + zlib_ng.MAX_WBITS)
        if self.kind == "zstd":  # windows up to 2 GiB, as `zstd -d --long=31` reads (Pushshift's Reddit dumps)
            return zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj()
        if self.kind == "lz4":
            return lz4.frame.LZ4FrameDecompressor()
        if self.kind == "xz":
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        return bz2.BZ2Decompressor()

    def _fill(self, size: int) -> None:
        """Decompress until `size` bytes are pending (all, for a negative size), the
        stream ends or damage is met. Compressed data is fed no further than that, so
        that a small file of a huge ratio (a gigabyte of one byte in 60 KB of zstd) is
        decompressed as it is read, not a 256 KiB read's worth at once."""
        while not self._eof and self._error is None and (size < 0 or self._pending < size):
            if not len(self._raw):
                chunk = self.raw.read(self.RAW_CHUNK)
                if not chunk:
                    self._eof = True
                    if self._started and not self._decompressor.eof:
                        self._error = "the compressed stream ends before its end marker (a truncated file)"
                    break
                self._raw = memoryview(chunk)
            self._feed(size)

    def _feed(self, size: int) -> None:
        """Feed the raw bytes held (`_raw`) to the decompressor until `size` bytes are
        pending, they run out, or damage is met (`_fill`)."""
        while len(self._raw) and self._error is None and (size < 0 or self._pending < size):
            if self._members and not self._started and self._raw[0] == 0:  # after a member: zero padding is no data
                rest = bytes(self._raw).lstrip(b"\0")
                self._raw_offset += len(self._raw) - len(rest)
                self._raw = memoryview(rest)
                if not rest:
                    break
            # gzip's decompressor is fed all that is held and salvaged on damage; the others,
            # which cannot be copied, a piece at a time, so that damage loses one piece's output
            fed = self._raw if self.kind == "gzip" else self._raw[: self._piece]
            self._raw = self._raw[len(fed) :]
            self._raw_offset += len(fed)
            backup = self._decompressor.copy() if self.kind == "gzip" else None
            try:
                out = self._decompressor.decompress(fed)
            except self._ERRORS as err:
                self._error = f"corrupt {self.kind} data ({err})"
                if backup is not None:  # what the chunk held before the damage
                    self._decompressor = backup
                    self._chunks.append(self._salvage(fed))
                    self._pending += len(self._chunks[-1])
                break
            self._chunks.append(out)
            self._pending += len(out)
            self._started = True
            if self.kind != "gzip" and out:  # OUTPUT_PIECE out of each piece: a huge ratio is fed a little at a time
                ratio = len(out) / len(fed)
                self._piece = max(self.MIN_PIECE, min(self.PIECE, int(self.OUTPUT_PIECE / max(ratio, 1))))
            elif self.kind != "gzip":  # no output yet (a header, a block begun): the ratio is not seen, grow slowly
                self._piece = min(self.PIECE, 2 * self._piece)
            if self._decompressor.eof:  # the next member or frame: what this one left, then the rest held
                left = self._decompressor.unused_data or b""  # python-lz4: None for none
                self._raw_offset -= len(left)
                self._raw = memoryview(left + self._raw) if left else self._raw
                self._decompressor, self._started, self._members = self._new(), False, self._members + 1

    def _salvage(self, chunk: bytes | memoryview, piece: int = 512) -> bytes:
        """The bytes `chunk` decompresses to before the damage: fed `piece` bytes at a
        time, then the failing piece a byte at a time, so that nothing before the
        damaged byte is lost (a gzip trailer with a wrong checksum loses no data)."""
        out = []
        for start in range(0, len(chunk), piece):
            backup = self._decompressor.copy()
            try:
                out.append(self._decompressor.decompress(chunk[start : start + piece]))
                continue
            except self._ERRORS:
                self._decompressor = backup
            for i in range(start, min(start + piece, len(chunk))):
                try:
                    out.append(self._decompressor.decompress(chunk[i : i + 1]))
                except self._ERRORS:
                    break
            break
        return b"".join(out)

    def read(self, size: int = -1, /) -> bytes:
        self._fill(size)
        if not self._pending and self._error is not None:
            raise DamagedStreamError(
                f"{self._error}, after {self._offset:,} decompressed bytes "
                f"(within the first {self._raw_offset:,} compressed bytes)"
            )
        if size < 0 or size >= self._pending:
            taken, self._chunks = list(self._chunks), deque()
        else:  # whole chunks up to `size`, and the part of the next one that fills it (one copy of the data)
            taken, held = [], 0
            while held + len(self._chunks[0]) <= size:
                held += len(self._chunks[0])
                taken.append(self._chunks.popleft())
            if held < size:  # a view of the rest: a huge chunk read in small pieces is not copied again each time
                head = memoryview(self._chunks[0])
                taken.append(head[: size - held])
                self._chunks[0] = head[size - held :]
        out = b"".join(taken)
        self._pending -= len(out)
        self._offset += len(out)
        return out

    def close(self) -> None:
        self.raw.close()


def open_random_access(location: str | os.PathLike) -> pa.NativeFile:
    """A seekable file (what Parquet readers need)."""
    fs, path = resolve(location)
    with _errors(location):
        return fs.open_input_file(path)


def read_bytes(location: str | os.PathLike) -> bytes:
    """A whole file's bytes as stored (not decompressed); errors as `open_input`."""
    with open_input(location, compression=None) as stream:
        return stream.read()


def read_text(location: str | os.PathLike) -> str:
    """A whole file as UTF-8 text; errors as `read_bytes`, UnicodeDecodeError for other bytes."""
    return read_bytes(location).decode("utf-8")


@contextmanager
def open_output(location: str | os.PathLike) -> Iterator[pa.NativeFile]:
    """A stream writing a file that appears at `location` only once it is complete.

    The bytes go to a temporary name beside it (`.NAME.tmp-ID`) and are moved into
    place on success (a rename on local disks; one copy on object stores, whose
    objects appear whole or not at all); on an exception the temporary file is
    removed and `location` is left as it was. A local symbolic link is written
    through, as a shell's `>` writes it: its target is replaced, the link kept (the
    rename replaced the link itself with a file).
    """
    fs, path = resolve(written_at(location))
    tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    with _errors(location):
        if _keeps_dirs(location):
            fs.create_dir(posixpath.dirname(path), recursive=True)
        stream = fs.open_output_stream(tmp)
    try:
        yield stream
        stream.close()
        _changing(location)
        with _errors(location):
            if fs.get_file_info(path).type == pafs.FileType.Directory:  # an older dataset of the same name
                fs.delete_dir(path)
            fs.move(tmp, path)
    except BaseException:
        if not stream.closed:
            stream.close()
        _delete_quietly(fs, tmp)
        raise


def written_at(location: str | os.PathLike) -> str:
    """Where a file written at `location` lands (`open_output`): the target of a local
    symbolic link (followed to its end, made if dangling), else `location` itself."""
    if is_local(location) and os.path.islink(path := resolve(location)[1]):
        return os.path.realpath(path)
    return str(location)


def write_bytes(data: bytes, location: str | os.PathLike) -> str:
    """Write a whole file atomically (see `open_output`); returns the location."""
    with open_output(location) as stream:
        stream.write(data)
    return str(location)


def write_text(text: str, location: str | os.PathLike) -> str:
    """Write `text` as UTF-8, atomically (`write_bytes`); returns the location."""
    return write_bytes(text.encode("utf-8"), location)


def _keeps_dirs(location: str | os.PathLike) -> bool:
    """Whether directories are made before files are written in them: everywhere but S3,
    whose directories are key prefixes (`make_dirs`)."""
    return scheme(location) != "s3"


def make_dirs(location: str | os.PathLike) -> None:
    """Create a directory and its parents where the filesystem keeps directories. Nothing
    on S3, whose directories are key prefixes: pyarrow's `create_dir` would write an empty
    marker object for each level, the bucket's existing folders included, which stay
    after the job (a failed one, too); other stores get what their filesystem does."""
    if not _keeps_dirs(location):
        return
    fs, path = resolve(location)
    with _errors(location):
        fs.create_dir(path, recursive=True)


def check_writable_dir(location: str | os.PathLike, what: str = "output") -> None:
    """Make sure a directory can be written at `location` (made if missing), by writing
    and deleting a small probe file. ValueError when a file is there; StorageError (one
    line, naming `what`) when the filesystem refuses (missing bucket, no permission, a
    file above it)."""
    probe = join(location, f".probe-{os.getpid()}-{uuid.uuid4().hex[:12]}")  # unique: other machines probe it too
    try:
        if exists(location) and not is_dir(location):  # a file, or a device such as /dev/null
            raise ValueError(f"{what} {location}: a file is there; a directory is needed")
        make_dirs(location)
        write_bytes(b"", probe)
        fs, path = resolve(probe)
        with _errors(probe):  # this process's own probe: deleted whatever else may hold the directory now
            fs.delete_file(path)
    except StorageError as err:  # named by the directory: the probe is not the user's file
        raise err.reworded(f"{what} {err.reason.replace(probe, str(location))}") from None
    except OSError as err:
        local = local_path(location)
        above = next((p for p in local.parents if p.is_file()), None) if local is not None else None
        reason = f"{above} is a file, not a directory" if above is not None else _reason(err)
        raise StorageError(f"{what} {location}: cannot be written ({reason})") from None


def check_writable_file(location: str | os.PathLike, what: str = "output") -> None:
    """Make sure a file can be written at `location` before a job's work, which writes it
    last (`check_writable_dir` of its directory: made if missing). ValueError when a
    directory is there, something that is not a regular file (a device such as
    /dev/null, a pipe, a socket: writing replaces a file by renaming onto it), or a file
    where its directory should be; StorageError (one line, naming `what`) when the
    filesystem refuses. A name ending in `/` is a directory's: refused (`--figure t.png/`
    wrote the file `t.png`)."""
    if str(location).endswith("/"):
        raise ValueError(f"{what} {location}: a directory's name (it ends with /); a file is needed")
    try:
        if is_dir(location):
            raise ValueError(f"{what} {location}: a directory is there; a file is needed")
        path = resolve(location)[1]
    except StorageError as err:  # a scheme no filesystem handles, an endpoint that does not answer
        raise err.reworded(f"{what} {err.reason}") from None
    if is_local(location) and os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"{what} {location}: a device, pipe or socket is there, not a regular file; a file is needed")
    check_writable_dir(parent(written_at(location)), f"{what} {location}: its directory")


def remove(location: str | os.PathLike) -> None:
    """Delete a file or a directory with everything under it; nothing if it is not there.
    On S3, pyarrow's `delete_dir` and `delete_file` then write an empty marker of the
    parent folder (apache/arrow#36275), which stayed where a failed job deleted the
    output it made: a marker that was not there before is deleted again."""
    _changing(location)
    fs, path = resolve(location)
    with _errors(location):
        kind = fs.get_file_info(path).type
        if kind == pafs.FileType.NotFound:
            return
        marker = _parent_marker(str(location), path)
        if kind == pafs.FileType.Directory:
            fs.delete_dir(path)
        elif kind == pafs.FileType.File:
            fs.delete_file(path)
        if marker is not None:
            marker()


def _parent_marker(location: str, path: str) -> Callable[[], None] | None:
    """For an S3 `location` below a folder whose marker object is missing: what deletes
    the marker pyarrow writes there on a deletion (one DeleteObject, errors ignored);
    None elsewhere, or where the marker is there already (a user's, or pyarrow's)."""
    if scheme(location) != "s3" or path.count("/") < 2:  # `bucket/key`: the parent is the bucket
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    from sessions.leases import s3_client

    bucket, key = path.split("/", 1)
    folder = posixpath.dirname(key) + "/"
    try:
        s3_client().head_object(Bucket=bucket, Key=folder)
        return None
    except ClientError as err:  # 404: no marker; any other answer (403, 500): not known, so not deleted
        if str(err.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey", "NotFound"):
            return None
    except BotoCoreError:
        return None

    def delete() -> None:
        with suppress(BotoCoreError, ClientError):
            s3_client().delete_object(Bucket=bucket, Key=folder)

    return delete


def remove_files(locations: Iterable[str]) -> None:
    """Delete files (missing ones are fine)."""
    locations = list(locations)
    _changing(*locations)
    for location in locations:
        fs, path = resolve(location)
        _delete_quietly(fs, path)


def remove_empty_dirs(location: str | os.PathLike) -> None:
    """Delete the directories at and under `location` that hold nothing (no file at any
    depth): for a job's clean-up of the directories it made. Locally each is an `rmdir`,
    so a directory another process has written into meanwhile stays. On S3 a directory
    is a key prefix, and what stays of one is its markers, the empty objects whose key
    ends in `/` (pyarrow's `create_dir` writes them, and its `delete_dir` writes the
    parent's); they are deleted one by one, only while nothing but markers is under the
    prefix, so no object of another job goes with them. Other object stores: nothing
    (their markers stay). Errors are ignored: a clean-up must not hide the job's own."""
    if is_local(location):
        root = resolve(location)[1]
        for here, _, _ in os.walk(root, topdown=False):
            with suppress(OSError):  # not empty, or gone
                os.rmdir(here)
        return
    if scheme(location) != "s3":
        return
    from botocore.exceptions import BotoCoreError, ClientError

    from sessions.leases import bucket_key, s3_client

    bucket, key = bucket_key(absolute(location))
    prefix = key.rstrip("/") + "/"
    with suppress(BotoCoreError, ClientError):
        found = s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000).get("Contents", [])
        if len(found) == 1000 or any(not o["Key"].endswith("/") or o["Size"] for o in found):
            return  # an object that is not a marker: the directory is not empty
        for marker in sorted((o["Key"] for o in found), key=len, reverse=True):
            s3_client().delete_object(Bucket=bucket, Key=marker)


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    with suppress(OSError, pa.ArrowException):
        fs.delete_file(path)


def move(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move a file or a directory with everything under it to `dst` (not there yet; its
    parent there), on one filesystem. A rename on the local filesystem (a link moves as
    the link). On an object store, where nothing can be renamed, each object is moved
    by the store (S3's server-side copy, then a delete): the bytes do not pass through
    this machine, but a stop midway leaves part at each place."""
    _changing(src, dst)
    if (local := local_path(src)) is not None:
        os.rename(local, resolve(dst)[1])
        return
    fs, path = resolve(src)
    target = resolve(dst)[1]
    with _errors(src):
        if fs.get_file_info(path).type == pafs.FileType.File:
            fs.move(path, target)
            return
        for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            if entry.type == pafs.FileType.File:
                _changing(_rebuild(str(src), path, entry.path))  # each object: a move of many takes a while
                fs.move(entry.path, target + entry.path[len(path) :])
        with suppress(OSError, pa.ArrowException):  # an object store's directory markers, where it keeps any
            fs.delete_dir(path)


def hidden_names(location: str | os.PathLike, pattern: re.Pattern) -> list[str]:
    """The names directly under a directory that match `pattern` whole, hidden ones
    (starting with `.`) included, sorted; empty for a missing directory or a file."""
    fs, path = resolve(location)
    with _errors(location):
        try:
            entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        except NotADirectoryError:
            return []
    return sorted(e.base_name for e in entries if pattern.fullmatch(e.base_name))


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy one file (streamed; across filesystems too), atomically at `dst`."""
    with open_input(src, compression=None) as source, open_output(dst) as target:
        while chunk := source.read(8 << 20):
            target.write(chunk)


def same_location(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two locations name the same file or directory (`x` and `file:///abs/x` do)."""
    if is_local(a) and is_local(b):
        return resolve(a)[1] == resolve(b)[1]
    return str(a).rstrip("/") == str(b).rstrip("/")


def contains(outer: str | os.PathLike, inner: str | os.PathLike) -> bool:
    """Whether `inner` is `outer` or lies under it (local paths compared with symlinks
    resolved; a glob pattern stands for the directory before its first wildcard)."""

    def fixed(location: str | os.PathLike) -> str:
        parts = str(location).rstrip("/").split("/")
        head = next((i for i, part in enumerate(parts) if _GLOB.search(part)), len(parts))
        return "/".join(parts[:head]) or "/"

    a, b = identity(fixed(absolute(outer))), identity(fixed(absolute(inner)))
    return b == a or b.startswith(a.rstrip("/") + "/")


def file_identity(location: str | os.PathLike) -> str:
    """What tells files apart: for a local file its device and inode (a link to it,
    hard or symbolic, is the same file), else the location (`identity`)."""
    if is_local(location):
        try:
            stat = os.stat(resolve(location)[1])
            return f"inode:{stat.st_dev}:{stat.st_ino}"
        except OSError:
            pass
    return identity(location)


def identity(location: str | os.PathLike) -> str:
    """One form of a location for comparing it with others: a local path absolute with
    its symlinks resolved (a file and a link to it are one), a URI without a trailing
    slash."""
    if is_local(location):
        return os.path.realpath(resolve(location)[1])
    return str(location).rstrip("/")


def may_match_under(location: str | os.PathLike, directory: str | os.PathLike) -> bool:
    """Whether `location` (a path, or a glob pattern) is `directory`, lies above it, or
    is a pattern that could match a file under it (`*.gz` cannot match `out/x.parquet`;
    `logs/**` can match `logs/out/x`)."""
    text = absolute(location)
    if not _GLOB.search(text):
        return contains(text, directory)
    parts = text.rstrip("/").split("/")
    head = next(i for i, part in enumerate(parts) if _GLOB.search(part))
    base = "/".join(parts[:head]) or "/"
    if not contains(base, directory):
        return False
    a, b = identity(absolute(base)), identity(absolute(directory))
    below = [p for p in b[len(a.rstrip("/")) :].split("/") if p]
    return _could_match(below, parts[head:])


def _could_match(below: list[str], wanted: list[str]) -> bool:
    """Whether some file under the directory `below` (components) matches `wanted`."""
    if not wanted:
        return False
    if not below:
        return True
    if wanted[0] == "**":
        return _could_match(below, wanted[1:]) or _could_match(below[1:], wanted)
    return _match_name(below[0], wanted[0]) and _could_match(below[1:], wanted[1:])


def size_and_mtime(location: str | os.PathLike) -> tuple[int, int | None]:
    """A file's size in bytes and its modification time (ns since the epoch, UTC;
    None where the filesystem keeps none)."""
    entry = info(location)
    mtime = entry.mtime_ns if entry.mtime is not None else None
    return int(entry.size or 0), mtime


def local_path(location: str | os.PathLike) -> Path | None:
    """The local path of a location on this machine's filesystem, else None."""
    if not is_local(location):
        return None
    return Path(resolve(location)[1])
