"""Writing outputs so that a killed job never leaves one that looks complete, and
reading them back, on local disks and object stores alike (`sessions.storage`).

- A file (`write_parquet`, `write_json`) is written under a temporary name and moved
  into place: a rename locally, one atomic object on a store.
- A dataset (a directory of Parquet parts: `ParquetSink`, or parts written by Ray
  tasks and published with `publish_dataset`) is complete when its manifest
  (`_manifest.json`: the parts and their row counts) is there, written last.
  Readers read exactly the parts the manifest lists and refuse a directory without
  one; parts of a replaced or unfinished earlier run are never read, and are
  deleted once a new manifest is published. Part names carry a run id, so a run
  never overwrites a part that a published manifest still lists.
- A job's report (`report.json`) is written after all its outputs (see
  `claim_output`), so it marks the whole output directory as complete.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from sessions import storage

MANIFEST = "_manifest.json"
REPORT = "report.json"
REJECTED = "rejected.parquet"  # the rows a job could not read, with their reasons
STAGING_PREFIX = ".staging-"  # working directories of a run inside its output (distributed jobs), with an id:
STAGING_NAME = re.compile(r"\.staging-[0-9a-f]{12}")  # `workflows.distributed.staging.staging_dir`'s
STAGING_MARKER = "staging.json"  # written first into a staging directory: a user's `.staging-*` has none
PREVIOUS_NAME = re.compile(r"\.previous-[0-9a-f]{12}")  # an earlier run's output, kept while a rerun runs (`set_aside`)
PREVIOUS_MARKER = "set-aside.json"  # written first into what `set_aside` keeps: a user's `.previous-*` has none
LOCK = ".sessionflow-job.json"  # in an output directory while a job writes there (`lock_output`)
LOCK_WRITE_S = 10.0  # a lock still unread this long after it was made is a job killed as it made it
# The table each sessionflow job writes -> that job: annotate's ANNOTATIONS_FILE (first: it sits beside sessions),
# score's SCORES_FILE, segment's SESSIONS_FILE, ingest's EVENTS_FILE, mine's PAIRS_FILE (a test keeps them equal).
# A directory is known by them; without a report, one is what a killed run left.
JOB_TABLES = {"annotations.parquet": "annotate", "scores.parquet": "score", "sessions.parquet": "segment",
              "events.parquet": "ingest", "pairs.parquet": "mine"}  # fmt: skip
# A job's work kept inside its output while the job may resume (score's WORK_DIR on Ray) -> that job: hidden,
# so no user's; deleted when the job ends, so present only where one was killed.
JOB_WORK = {".score-work": "score"}
WORK_MARKER = "job.json"  # written first into a job's work: what the job was, to resume it


def holds_job_work(out: str | Path) -> bool:
    """Whether the output directory `out` holds a job's work to resume from (`JOB_WORK`:
    a Ray `score`'s `.score-work`, whose finished buckets are parts of its table)."""
    return any(is_job_work(storage.join(out, name)) for name in JOB_WORK)


def is_job_work(location: str | Path) -> bool:
    """Whether `location` (named in `JOB_WORK`) is a job's work: a directory, not a link,
    holding its `WORK_MARKER`, or nothing (a job killed before writing it). A user's
    `.score-work/` was deleted whole."""
    if storage.link_target(location) or not storage.is_dir(location):
        return False
    return storage.exists(storage.join(location, WORK_MARKER)) or not storage.list_files(
        location, recursive=True, hidden=True
    )


class IncompleteOutputError(FileNotFoundError):
    """A dataset without its manifest: the job writing it did not finish."""


def run_id() -> str:
    """A fresh id for the part names of one run (8 hex digits)."""
    return uuid.uuid4().hex[:8]


def part_name(run: str, index: int) -> str:
    """The file name of a dataset's part `index` written by run `run`: `part-<run>-<index:05d>.parquet`."""
    return f"part-{run}-{index:05d}.parquet"


class ParquetSink:
    """Append polars frames of one schema to a Parquet dataset, published on close.

    Each frame becomes a part file, written by a background thread while the caller
    prepares the next frame (polars releases the GIL, so reading and writing share
    the cores); at most two frames wait. On a clean exit the manifest is written
    (`publish_dataset`); on an exception inside the `with` block the new parts are
    deleted, and so is the dataset's directory when nothing was published there
    before; whatever was published at `path` before is left as it was.

    Example:
        >>> with ParquetSink("s3://bucket/out/events.parquet", EVENT_SCHEMA) as sink:
        ...     for block in blocks:
        ...         sink.write(block)
    """

    def __init__(self, path: str | Path, schema: dict[str, pl.DataType]) -> None:
        self.path = str(path)
        self.rows = 0
        self._schema = schema
        self._run = run_id()
        self._parts: list[tuple[str, int]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()

    def __enter__(self) -> ParquetSink:
        prepare_dataset(self.path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-sink")
        return self

    def write(self, frame: pl.DataFrame) -> None:
        """Queue `frame` (cast to the schema) as the next part file; an empty frame writes nothing.
        Waits while two frames wait: an earlier part that failed raises here, or on close."""
        assert self._pool is not None, "use ParquetSink as a context manager"
        if not frame.height:
            return
        while len(self._pending) >= 2:
            self._pending.popleft().result()
        name = part_name(self._run, len(self._parts))
        location = storage.join(self.path, name)
        self._pending.append(self._pool.submit(write_parquet, frame.cast(self._schema), location))  # type: ignore[arg-type]
        self._parts.append((name, frame.height))
        self.rows += frame.height

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._pool is not None
        failed = True
        try:
            for future in self._pending:
                if exc_type is None:
                    future.result()
                elif (lost := future.exception()) is not None and exc is not None:  # the block's own error is
                    exc.add_note(f"and a part's write failed too: {type(lost).__name__}: {lost}")  # what is raised
            failed = exc_type is not None
        finally:
            self._pool.shutdown()
            if failed:
                storage.remove_files(storage.join(self.path, name) for name, _ in self._parts)
                if not storage.list_files(self.path, recursive=True, hidden=True):  # nothing published here before
                    storage.remove(self.path)
        if failed:
            return
        if not self._parts:  # an empty dataset still tells its schema
            name = part_name(self._run, 0)
            write_parquet(pl.DataFrame(schema=self._schema), storage.join(self.path, name))
            self._parts.append((name, 0))
        publish_dataset(self.path, self._parts)


def prepare_dataset(path: str | Path) -> None:
    """Make `path` ready to receive the parts of a dataset: an older dataset there stays
    readable until the new manifest replaces it. ValueError (`refuse_foreign_tables`)
    when something else is there, which publishing would delete or write into: a file,
    a symbolic link, a directory of other files."""
    refuse_foreign_tables(storage.parent(path), [storage.name(path)])
    if storage.is_file(path):  # a table of an older sessionflow, one Parquet file (`not_a_table`): replaced
        storage.remove(path)
    storage.make_dirs(path)


# The files of a dataset (`part_name`, `MANIFEST`) and their temporary names while they are written
# (`storage.open_output`: `.NAME.tmp-ID`): nothing else is in a table a job wrote, but what a file browser
# leaves in any folder it shows (macOS Finder's .DS_Store and ._NAME, Windows Explorer's Thumbs.db and
# desktop.ini, KDE Dolphin's .directory)
_DATASET_NAME = r"(?:part-[0-9a-f]{8}-\d{5,}\.parquet|_manifest\.json)"
_DATASET_FILE = re.compile(
    rf"{_DATASET_NAME}|\.{_DATASET_NAME}\.tmp-[0-9a-f]{{12}}|\.DS_Store|\._.+|Thumbs\.db|desktop\.ini|\.directory"
)


def first_names(names: Sequence[str]) -> str:
    """The first three of `names` for a one-line message: "a, b, c and 4 more"."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def not_a_table(location: str | Path) -> str:
    """Why what is at `location` is no table of a sessionflow job (a dataset of Parquet
    parts and their manifest, finished or left by a killed run), in a few words: "a file",
    "a symbolic link to TARGET", "a directory holding other files (NAME, ...)"; "" for a
    job's table, an empty directory and nothing at all. A job replaces a table of its
    own name and deletes the parts of earlier runs in it: so that neither ever deletes a
    user's data of that name, only what this function passes is replaced."""
    if link := storage.link_target(location):
        return f"a symbolic link to {link}"
    if not storage.exists(location):
        return ""
    if not storage.is_dir(location):  # a job's only when its report lists it: an older sessionflow's table
        return "" if _older_table(location) else "a file"
    root = str(location).rstrip("/")
    other = [f[len(root) + 1 :] for f in storage.list_files(location, recursive=True, hidden=True)]
    other = [name for name in other if not _DATASET_FILE.fullmatch(name)]
    if other:
        return f"a directory holding other files ({first_names(other)})"
    return ""


def _older_table(location: str | Path) -> bool:
    """Whether the file at `location` is a table that an older sessionflow wrote as one
    Parquet file (`mine` did until 2026-12-02): its directory's report lists it."""
    report = storage.join(storage.parent(location), REPORT)
    listed = _outputs_listed(report) if storage.exists(report) else set()
    if storage.name(location) not in listed or not storage.is_file(location):  # a FIFO would block the read
        return False
    with storage.open_input(location, compression=None) as file:
        return file.read(4) == b"PAR1"


def refuse_foreign_tables(out: str | Path, names: Collection[str]) -> None:
    """ValueError in one line when an entry of `out` named like a table in `names` is no
    job's table (`not_a_table`): a job would replace it, or delete it under --overwrite.
    Refused with or without --overwrite, which never deletes a user's files."""
    for name in sorted(names):
        if why := not_a_table(storage.join(out, name)):
            raise ValueError(
                f"--output {out}: its {name} is {why}, not a table sessionflow wrote, and sessionflow's jobs replace "
                "or delete what is under their tables' names; move it, or choose another directory"
            )


def remove_table(location: str | Path) -> None:
    """Delete a job's table at `location` (nothing when none is there); ValueError
    (`refuse_foreign_tables`) when what is there is no job's table."""
    refuse_foreign_tables(storage.parent(location), [storage.name(location)])
    storage.remove(location)


def publish_dataset(path: str | Path, parts: Sequence[tuple[str, int]]) -> None:
    """Mark a dataset complete: its manifest lists `parts` (part file names under
    `path`, with their row counts), written atomically; then the files of earlier
    runs that it does not list are deleted."""
    names = [name for name, _ in parts]
    manifest = {"format": "parquet", "rows": sum(rows for _, rows in parts),
                "parts": [{"name": name, "rows": rows} for name, rows in parts]}  # fmt: skip
    storage.write_text(json.dumps(manifest, indent=1) + "\n", storage.join(path, MANIFEST))
    listed = {*names, MANIFEST}
    # parts of earlier runs, and temporary files of killed ones (hidden names)
    stale = [f for f in storage.list_files(path, recursive=True, hidden=True) if storage.name(f) not in listed]
    storage.remove_files(stale)


def dataset_parts(path: str | Path) -> list[str]:
    """The files of a Parquet output: itself when it is one file, else the parts its
    manifest lists (`counted_parts`, whose errors it raises)."""
    return [part for part, _ in counted_parts(path)]


def counted_parts(path: str | Path) -> list[tuple[str, int]]:
    """The files of a Parquet output with their rows, each file's footer read and its
    rows checked against the manifest's count. Raises IncompleteOutputError for a
    directory without a manifest, FileNotFoundError when nothing is there, ValueError
    naming the file for one that is not Parquet, a manifest that cannot be read, and a
    part cut short, overwritten or missing (read lazily, it failed at the first
    `collect`, in a traceback that named no file)."""
    if storage.is_file(path):
        with storage.open_input(path, compression=None) as file:
            if file.read(4) != b"PAR1":
                raise ValueError(f"{path}: not a Parquet file; give the output of the job that writes this table")
        return [(str(path), _footer_rows(str(path), str(path)))]
    manifest = storage.join(path, MANIFEST)
    if not storage.exists(manifest):
        if storage.is_dir(path):
            raise IncompleteOutputError(
                f"{path}: an unfinished output (no {MANIFEST}); run the job that writes it again"
            )
        raise FileNotFoundError(f"{path}: no such file or directory")
    try:
        listed = [(str(part["name"]), int(part["rows"])) for part in read_json(manifest)["parts"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{manifest}: not a manifest sessionflow wrote ({type(err).__name__}: {err}); "
                         "run the job that writes this table again") from None  # fmt: skip
    parts = []
    for name, rows in listed:
        part = storage.join(path, name)
        if (found := _footer_rows(part, str(path))) != rows:
            raise ValueError(f"{part}: {found:,} rows where {MANIFEST} lists {rows:,}; a part of {path} changed "
                             "after its job wrote it: run that job again")  # fmt: skip
        parts.append((part, rows))
    return parts


def _footer_rows(part: str, table: str) -> int:
    """The rows a Parquet file's footer counts; ValueError naming it for one that cannot
    be read as Parquet (cut short, overwritten) or is missing."""
    try:
        with storage.open_random_access(part) as file:
            return pq.ParquetFile(file).metadata.num_rows
    except FileNotFoundError:
        raise ValueError(f"{part}: missing, a part of {table}: run the job that writes it again") from None
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"{part}: not readable as Parquet ({storage.first_line(err)}), a part of {table}: "
                         "damaged after its job wrote it; run that job again") from None  # fmt: skip


def is_complete(path: str | Path) -> bool:
    """Whether a Parquet output is there and complete (a file, or a published dataset)."""
    return storage.is_file(path) or storage.exists(storage.join(path, MANIFEST))


def write_parquet(frame: pl.DataFrame, path: str | Path) -> str:
    """Write one frame to a Parquet file atomically; returns the location.
    StorageError (an OSError) in one line when the filesystem refuses the bytes (a
    full disk, a quota), which polars reports inside a ComputeError."""
    try:
        with storage.open_output(path) as stream:
            frame.write_parquet(stream)
    except pl.exceptions.PolarsError as err:
        if said := re.search(r"\[Errno (\d+)\] ([^\n]+)", str(err)):
            raise storage.StorageError(f"{path}: {said.group(2).strip()}") from None
        raise
    return str(path)


def write_table(frame: pl.DataFrame, path: str | Path) -> str:
    """Write one frame as a table output: a dataset of one part with its manifest (the
    layout of every table a job writes, whatever its size or engine: see ParquetSink);
    returns the location."""
    with ParquetSink(path, dict(frame.schema)) as sink:
        sink.write(frame)
    return str(path)


def write_json(obj: Any, path: str | Path) -> str:
    """Write JSON atomically (indented, keys in the order given)."""
    return storage.write_text(json.dumps(obj, indent=2, default=str) + "\n", path)


def write_report(report: dict, out: str | Path) -> str:
    """Write a job's `report.json` into its output directory `out`, last (the output is
    complete once it is there), with what produced it: `command` (the command line)
    and `versions` (`sessions.provenance.provenance`)."""
    from sessions.provenance import command_line, provenance

    return write_json({**report, "command": command_line(), "versions": dict(provenance())}, storage.join(out, REPORT))


def read_json(path: str | Path) -> Any:
    """The JSON of a UTF-8 file at any location (`storage.read_text`); FileNotFoundError when
    there is no file, ValueError when it is not UTF-8 JSON."""
    return json.loads(storage.read_text(path))


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pl.DataFrame:
    """One Parquet file, from any location; `columns`: those only (all when None). A
    dataset directory is read by `read_table`. FileNotFoundError or StorageError (one
    line) when it cannot be opened."""
    if (local := storage.local_path(path)) is not None:
        return pl.read_parquet(local, columns=columns)
    with storage.open_random_access(path) as file:
        return pl.read_parquet(file, columns=columns)


def scan_table(path: str | Path) -> pl.LazyFrame:
    """A Parquet output of any job (a file or a published dataset), lazily.

    Raises as `counted_parts`: IncompleteOutputError for a directory without a manifest,
    FileNotFoundError when nothing is there, ValueError naming the file for one that is not
    Parquet, a manifest that cannot be read, and a part cut short, changed or missing.
    """
    parts = dataset_parts(path)
    if all(storage.is_local(p) for p in parts):
        return pl.scan_parquet([storage.resolve(p)[1] for p in parts])
    fs = storage.resolve(parts[0])[0]
    dataset = pads.dataset([storage.resolve(p)[1] for p in parts], filesystem=fs, format="parquet")
    return pl.scan_pyarrow_dataset(dataset)


def read_table(path: str | Path) -> pl.DataFrame:
    """`scan_table`, collected; raises as `scan_table`."""
    return scan_table(path).collect()


def parquet_rows(path: str | Path) -> int:
    """Rows in a Parquet file or published dataset (the manifest's count, checked
    against each part's metadata: `counted_parts`)."""
    return sum(rows for _, rows in counted_parts(path))


def copy_table(src: str | Path, dst: str | Path) -> None:
    """Copy a Parquet output (file or dataset) to another location, published the
    same way (nothing when it is the same location)."""
    if storage.same_location(src, dst):
        return
    if storage.is_file(src):
        storage.copy_file(src, dst)
        return
    prepare_dataset(dst)
    run = run_id()
    parts = []
    for i, (part, rows) in enumerate(counted_parts(src)):
        name = part_name(run, i)
        storage.copy_file(part, storage.join(dst, name))
        parts.append((name, rows))
    publish_dataset(dst, parts)


def refuse_a_file(out: str) -> None:
    """ValueError in one line when no output directory can be at `out`: a file, a device
    such as /dev/null (whose listing failed with the OS's words), a symbolic link to
    nothing (which said "File exists"), a job's table; StorageError naming --output when
    its filesystem cannot be asked."""
    try:
        there = storage.exists(out) and not storage.is_dir(out)
    except storage.StorageError as err:  # a scheme no filesystem handles, an endpoint that does not answer
        raise err.reworded(f"--output {err.reason}") from None
    if there:
        raise ValueError(f"--output {out}: a file is there; the output is a directory")
    if storage.is_local(out) and (link := storage.broken_link(out)):
        raise ValueError(f"--output {out}: {link}")
    here = out
    while True:  # written into, a table would be no table to its own job
        if storage.exists(storage.join(here, MANIFEST)):
            raise ValueError(f"--output {out}: {'a table' if here == out else 'inside a table'} of a job's output "
                             f"({storage.join(here, MANIFEST)} is there); give a directory of its own")  # fmt: skip
        if not (up := storage.parent(here)) or up == here or not storage.exists(up):
            break
        here = up


def claim_output(
    out: str | Path, produces: str, overwrite: bool = False, inputs: Sequence[str | Path] = (),
    also: Sequence[str] = (), keep_previous: bool = False,
) -> str:  # fmt: skip
    """Get an output directory ready for a job that reads `inputs` and writes `produces`
    (and the tables `also`, with its rejected rows and its report).

    Refuses (ValueError) an output that is one of the inputs, lies inside one or holds
    one (a job never writes where it reads), a file, a directory where an entry named
    like a job's table is a user's (`refuse_foreign_tables`), a directory holding another job's
    finished output (a `report.json` that lists no `produces`, or outputs this job does
    not write), and one holding what a killed job of another kind left (`left_by_others`:
    its tables, no report), unless `overwrite`, which deletes what that job wrote
    (`remove_outputs_of`, or those tables and their rejected rows). This job's own
    earlier output is deleted the same way (its report lists it), and so are the rejected
    rows a failed or killed run of any job left without a report (but beside work to
    resume from, `holds_job_work`), so that no table of an earlier run outlives this
    one. Then removes the directory's `report.json`, so that until the job writes its
    new report nothing there looks complete. With
    `keep_previous`, an output replaced is moved aside instead of deleted (`set_aside`),
    for the caller to restore if the job fails (`restore_previous`) or to delete once it
    is done (`discard_previous`). Returns
    `out` as a string (a local path made absolute).
    """
    out = storage.absolute(out)  # the same directory for Ray workers, whose working directory differs
    refuse_a_file(out)
    check_apart(out, inputs)
    report, writes = storage.join(out, REPORT), {produces, *also, REJECTED, REPORT}
    # what this job replaces, and what it deletes as another job's (under --overwrite)
    refuse_foreign_tables(out, {produces, *also, REJECTED, *JOB_TABLES} - set(JOB_WORK))
    # a rerun stopped or killed: its earlier output back, and judged; but not where that run left work to resume
    # from (score's `.score-work`, whose finished buckets are parts of the table it was writing)
    if not storage.exists(report):
        restore_killed(out)
    for name in set(also) & set(JOB_WORK):  # this job's work, which it resumes from or deletes
        if storage.exists(storage.join(out, name)) and not is_job_work(storage.join(out, name)):
            raise ValueError(f"--output {out}: its {name} is no job's work (no {WORK_MARKER}), which this job would "
                             "replace; move it, or choose another directory")  # fmt: skip
    listed = set(job_report_outputs(out)) if storage.exists(report) else None  # a user's report.json: refused
    if listed is not None:
        if (produces not in listed or not listed <= writes) and not overwrite:
            raise ValueError(
                f"--output {out} holds another job's output ({REPORT} lists {', '.join(sorted(listed)) or 'nothing'}); "
                "choose another directory or pass --overwrite"
            )
        # that job's outputs go (under --overwrite), and so do this job's own of an earlier run: none is mixed
        # with this run's, nor outlives it where this run writes less (annotate of sessions writes no sessions)
        if keep_previous:
            set_aside(out)
        else:
            remove_outputs_of(out)
    elif listed is None and previous_output(out) not in _SET_ASIDE_HERE and (left := left_by_others(out, writes)):
        if not overwrite:
            raise ValueError(
                f"--output {out} holds what another job left unfinished ({', '.join(left)}, no {REPORT}: it "
                "was killed or failed); choose another directory, or pass --overwrite (which deletes what it left, "
                "not your files)"
            )
        for name in (*left, REJECTED):
            storage.remove(storage.join(out, name))
    # rejected rows a failed or killed run left: no report lists them, and no table of that run outlives this one
    # (but where it left work to resume from, which they are part of: score's)
    if listed is None and previous_output(out) not in _SET_ASIDE_HERE and not holds_job_work(out):
        storage.remove(storage.join(out, REJECTED))
    storage.remove(report)
    storage.check_writable_dir(out, "--output")  # made, and written to once: refused in one line if it cannot be
    # staging and temporary files of earlier runs that were killed
    storage.remove_leftovers(out, [STAGING_NAME], marker=STAGING_MARKER)
    return out


def _report_outputs(report: str) -> dict[str, str] | None:
    """The outputs a job's `report.json` lists, name -> location; None for another file of
    that name: not JSON, or outputs that are no job's (`{"outputs": {"plot": ...}}`, as
    many tools write, was taken for a job's, and --overwrite deleted it)."""
    try:
        outputs = read_json(report).get("outputs")
    except (ValueError, AttributeError):
        return None
    if not isinstance(outputs, dict) or not set(outputs) <= {*JOB_TABLES, REJECTED, REPORT}:
        return None
    return outputs


def _outputs_listed(report: str) -> set[str]:
    return set(_report_outputs(report) or {})


def left_by_others(out: str | Path, writes: Collection[str]) -> list[str]:
    """The tables of sessionflow's jobs (`JOB_TABLES`) and their work (`JOB_WORK`) in `out`
    that a job writing `writes` does not write: in a directory without a report, what a
    killed run of another job left (a finished table's report may be all it missed).
    Other names are a user's."""
    tables = [name for name in storage.list_names(out) if name in JOB_TABLES and name not in writes]
    work = [name for name in JOB_WORK if name not in writes and is_job_work(storage.join(out, name))]
    return tables + work


def refuse_other_files(
    out: str | Path, produces: str, overwrite: bool = False,
    advice: str = "choose a new or empty directory, or pass --overwrite (which keeps them)",
) -> None:  # fmt: skip
    """ValueError in one line when `out` is a directory of other files, no job's output
    (neither `produces`, nor a report, nor rejected rows; hidden names aside), unless
    `overwrite`, which writes beside them and keeps them (`advice`: what the message tells
    to do, for a command without --overwrite). What a command checks before
    it claims its output (`claim_output`), so that a user's directory is never mixed
    with an output by mistake. A user's entry named like a table is refused even under
    `overwrite` (`refuse_foreign_tables`)."""
    refuse_foreign_tables(out, {produces, REJECTED, *JOB_TABLES})  # which --overwrite would not keep
    names = storage.list_names(out)
    # a job's: its report, its tables (checked above), of this job or of a killed one (which `claim_output`
    # refuses, or deletes under `overwrite`)
    ours = {produces, REPORT, REJECTED, *JOB_TABLES} & set(names)
    if names and not overwrite and not ours:
        raise ValueError(f"--output {out} holds other files ({first_names(names)}); {advice}")


def remove_outputs_of(out: str) -> None:
    """Delete the tables that the job whose report is in `out` wrote there, by the names
    its report's `outputs` give them (`JOB_TABLES`, `REJECTED`: each checked to be a
    job's table, `remove_table`), then the report; nothing else. A location the report
    gives is never deleted: an output moved or copied to `out` names its old place, and
    one copied up from a subdirectory names that subdirectory, where a user's files may
    be. ValueError when that report is not a sessionflow job's."""
    for name in job_report_outputs(out):
        if name in {*JOB_TABLES, REJECTED}:
            remove_table(storage.join(out, name))
    storage.remove(storage.join(out, REPORT))


def job_report_outputs(out: str) -> dict[str, str]:
    """The outputs the job's report in `out` lists, name -> location; ValueError when
    the `report.json` there is no sessionflow job's (`_report_outputs`)."""
    outputs = _report_outputs(storage.join(out, REPORT))
    if outputs is None:
        raise ValueError(f"--output {out}: its {REPORT} is not a sessionflow job's report; choose another directory")
    return outputs


def set_aside(out: str, names: Sequence[str] | None = None) -> str:
    """Move an earlier run's output in the directory `out` into a hidden
    `out/.previous-<12 hex>/` (`storage.move`: renamed on a local disk, moved object by
    object by an object store), so that a rerun that fails on a user's mistake can
    leave it as it was (`restore_previous`): the entries `names` that are there, or by
    default the output of the job whose report is in `out` (its report first, so that a
    stop midway leaves nothing that looks finished, then the tables its report lists,
    each checked to be a job's table). Its `PREVIOUS_MARKER` lists them, and says once
    all are moved. What was set aside before is stale then (`discard_previous`).
    Returns that directory. ValueError as `remove_outputs_of`."""
    discard_previous(out)
    if names is None:
        tables = [name for name in job_report_outputs(out) if name in {*JOB_TABLES, REJECTED}]
        refuse_foreign_tables(out, tables)
        names = [REPORT, *tables]
    names = [name for name in names if _there(storage.join(out, name))]
    aside = storage.join(out, f".previous-{uuid.uuid4().hex[:12]}")
    marker = storage.join(aside, PREVIOUS_MARKER)
    storage.write_text(json.dumps({"names": names, "complete": False}), marker)
    for name in names:
        storage.move(storage.join(out, name), storage.join(aside, name))
    storage.write_text(json.dumps({"names": names, "complete": True}), marker)
    _SET_ASIDE_HERE.add(aside)
    return aside


_SET_ASIDE_HERE: set[str] = set()  # what this process set aside: not a killed run's (a job claims twice: CLI, engine)


def _there(location: str) -> bool:
    """Whether an entry is at `location` (on a local disk a link that leads nowhere too)."""
    local = storage.local_path(location)
    return os.path.lexists(local) if local is not None else storage.exists(location)


def previous_output(out: str) -> str | None:
    """The earlier output `set_aside` keeps in `out` (a `.previous-<12 hex>/` holding its
    marker), if any."""
    kept = (storage.join(out, name) for name in storage.hidden_names(out, PREVIOUS_NAME))
    return next((aside for aside in kept if storage.is_file(storage.join(aside, PREVIOUS_MARKER))), None)


def restore_previous(out: str, writes: Collection[str]) -> None:
    """Put back in `out` the earlier output `set_aside` kept there. Once all of it was
    moved, a run may have written since: first delete what it wrote under the names it
    `writes` and under the names kept (tables each checked to be a job's table), then
    mark the restore begun. The entries go back with the report last, so that until all
    are back nothing there looks finished. A stop while it was being set aside, or
    while it was being put back, left the rest in place: nothing is deleted then (on an
    object store, a table it was moving when stopped is put back whole, object by
    object), and the next call finishes the move. Nothing when none is kept."""
    if (aside := previous_output(out)) is None:
        return
    marker_path = storage.join(aside, PREVIOUS_MARKER)
    marker = json.loads(storage.read_text(marker_path))
    kept = [name for name in marker["names"] if _there(storage.join(aside, name))]
    if marker["complete"] and not marker.get("restoring"):
        for name in {*writes, *kept}:
            if name in {*JOB_TABLES, REJECTED}:
                remove_table(storage.join(out, name))
            else:  # a report, a figure: what the job writes itself
                storage.remove(storage.join(out, name))
        storage.write_text(json.dumps({**marker, "restoring": True}), marker_path)  # from here on, only moves
    for name in sorted(kept, key=lambda name: name == REPORT):
        storage.move(storage.join(aside, name), storage.join(out, name))
    storage.remove(aside)
    _SET_ASIDE_HERE.discard(aside)


def restore_killed(out: str) -> None:
    """Put back the earlier output that a rerun killed in `out` left aside (`set_aside`),
    deleting first only what stands under the names still kept aside (what that run
    wrote in their place: `restore_previous`); an entry under another name, or one moved
    back already (by a put-back the kill cut short, or by hand), stays. Not an earlier
    output this process set aside, nor one kept while that run left work to resume from
    (`holds_job_work`: a Ray `score`'s finished buckets)."""
    kept = previous_output(out)
    if kept is not None and kept not in _SET_ASIDE_HERE and not holds_job_work(out):
        restore_previous(out, ())


def refuse_unfinished(directory: str | Path) -> None:
    """IncompleteOutputError, for a job that reads `directory`, when it holds no report
    but what a job leaves there while it writes: an earlier output that a rerun there
    set aside (`set_aside`: that rerun is running, or was killed; a stop puts it back,
    `restore_previous`; the line names where the earlier output is and how it comes
    back), or the job's lock (`LOCK`: the job is running, failed or was killed before
    it wrote a table, which readers had told as an empty directory or as raw logs
    without --format). Nothing otherwise, and nothing for a file."""
    if not storage.is_dir(directory) or storage.exists(storage.join(directory, REPORT)):
        return
    if (aside := previous_output(str(directory))) is not None:
        names = json.loads(storage.read_text(storage.join(aside, PREVIOUS_MARKER)))["names"]
        jobs = sorted({JOB_TABLES[name] for name in names if name in JOB_TABLES}) or ["a job"]
        kept = [name for name in names if _there(storage.join(aside, name))]
        raise IncompleteOutputError(
            f"{directory}: a rerun of `{jobs[0]}` there is running, or was killed: the earlier output is kept aside "
            f"in {storage.name(aside)}/ ({', '.join(kept)}), and the next job run into this directory puts it back "
            f"first (or move those back yourself, then delete {storage.name(aside)}/)"
        )
    if storage.exists(lock := storage.join(directory, LOCK)):
        try:
            holder = json.loads(storage.read_text(lock))
            who, running = f"`{holder['command']}`", process_running(holder, other_boot=False)
        except (OSError, ValueError, KeyError, TypeError):  # a lock cut short: its job was killed writing it
            who, running = "a sessionflow job", False
        if running:
            raise IncompleteOutputError(f"{directory}: {who} is writing there now (process {holder['pid']}): "
                                        "read it once that job has ended")  # fmt: skip
        raise IncompleteOutputError(
            f"{directory}: an unfinished output of {who} (no {REPORT}: its job failed or was killed); run that job "
            "again"
        )


def lock_output(out: str) -> bool:
    """Make the output directory `out` this process's alone until `unlock_output`: a
    lock `LOCK` in it that names the process (pid, its start time, host, command), made
    so that no other job can make it too: locally a file created exclusively (O_EXCL), on
    S3 an object written on the condition that none is there (`sessions.leases`: a lease
    its holder renews, taken over once it lapses). Two jobs writing to one directory at
    once mixed their tables, and one's failure deleted what the other had finished.
    Re-entrant (a job claims its output twice: CLI, engine). A lock whose process is gone
    (killed) is replaced. Returns whether a lock was made; False when this process holds
    it already, and on an object store other than S3 or an S3-compatible store without
    conditional writes (no exclusive create there: two jobs are not told apart; the latter
    is warned of). Makes the directory (ValueError / StorageError in one line when it
    cannot be written). ValueError in one line when another live process holds it."""
    import sys

    program = "sessionflow" if Path(sys.argv[0]).name == "__main__.py" else Path(sys.argv[0]).name  # python -m
    me = {**this_process(), "command": " ".join([*program.split(), *sys.argv[1:2]])}
    if storage.scheme(out) == "s3":
        return _lock_on_s3(out, me)
    if (local := storage.local_path(out)) is None:
        return False
    same = _process(me)
    if (other := _live_lock_above(local, same)) is not None:  # an output inside another job's: its failure
        raise ValueError(_nested_refusal(out, *other))  # would delete this one's with its own
    storage.check_writable_dir(out, "--output")  # made, or refused in one line naming --output
    path = local / LOCK
    if os.path.lexists(path) and not path.is_file():
        raise ValueError(f"--output {out}: {path} is in the way of this job's lock file (it is not a file); "
                         "move it, or choose another directory")  # fmt: skip
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is None:  # its job is gone
                path.unlink(missing_ok=True)
                continue
            if _process(holder) == same:
                return False
            raise ValueError(
                f"--output {out}: another sessionflow job is writing there now ({_holder_text(holder)}); wait for "
                f"it to end, or choose another directory (if none runs, delete {path})"
            ) from None
        with os.fdopen(fd, "w") as stream:
            json.dump(me, stream)
        # Two jobs into nested outputs that start together each looked above before either
        # had its lock: the one failing deleted the other's output with its own. Each looks
        # again once its lock is made, so that of two such jobs at least one sees the other.
        if (other := _live_lock_above(local, same) or _live_lock_inside(local, same)) is not None:
            path.unlink(missing_ok=True)
            raise ValueError(_nested_refusal(out, *other))
        return True
    raise ValueError(f"--output {out}: other jobs keep claiming it; choose another directory")


def _live_lock_above(local: Path, same: tuple) -> tuple[str, str, str] | None:
    """The lock of another live job in a directory above the local output `local`: (that
    directory, its holder for a message, "above"), or None."""
    for above in local.parents:
        if (held := _lock_holder(above / LOCK)) is not None and _process(held) != same:
            return str(above), _holder_text(held), "above"
    return None


def _live_lock_inside(local: Path, same: tuple) -> tuple[str, str, str] | None:
    """The lock of another live job in a directory inside the local output `local`: (that
    directory, its holder for a message, "inside"), or None."""
    for here, _, files in os.walk(local):
        inside = LOCK in files and Path(here) != local
        if inside and (held := _lock_holder(Path(here) / LOCK)) is not None and _process(held) != same:
            return here, _holder_text(held), "inside"
    return None


def _nested_refusal(out: str, where: str, holder_text: str, side: str, who: str = "another sessionflow job") -> str:
    """The one line refusing an output nested with another job's running one (`who`: "a
    job" where its lock cannot be read)."""
    lock = storage.join(where, LOCK)
    if side == "above":
        return (f"--output {out}: it lies inside {where}, which {who} is writing now ({holder_text}); choose a "
                f"directory outside it (if none runs, delete {lock})")  # fmt: skip
    return (f"--output {out}: {who} is writing inside it now, at {where} ({holder_text}); wait for it to end, or "
            f"choose another directory (if none runs, delete {lock})")  # fmt: skip


_LEASES: dict[str, Any] = {}  # the S3 output locks this process holds (`sessions.leases.Lease`), by `_on_s3`


def _on_s3(location: str) -> str:
    """An `s3://` location in one spelling (`S3://b/x/` and `s3://b/x` are one output)."""
    return f"s3://{storage.resolve(location)[1]}"


def _confirm_lock(location: str) -> None:
    """Before a change at `location` (`storage.check_changes_with`): `sessions.leases.
    LeaseLost` when it lies in an S3 output whose lock this process held and has lost."""
    if not _LEASES or storage.scheme(location) != "s3":
        return
    where = _on_s3(location)
    for output, lease in list(_LEASES.items()):
        if where == output or where.startswith(output + "/"):
            lease.confirm()


storage.check_changes_with(_confirm_lock)


def lock_lost(out: str) -> str | None:
    """Why this process no longer holds the lock of the S3 output `out` it held (asked of
    the store where it is not `fresh`: `sessions.leases.Lease.confirm`), in one line for
    the user: another job took it over, or it was deleted. The output may be another
    job's now: nothing of this job may touch it, its clean-up included. None while it
    holds it, when the store cannot be asked now (out of reach is not taken over), and
    for any other output."""
    from sessions.leases import LeaseLost

    lease = _LEASES.get(_on_s3(out)) if storage.scheme(out) == "s3" else None
    try:
        if lease is not None:
            lease.confirm()
    except LeaseLost as err:
        if lease.lost:
            return f"--output {out}: {err}; the job stopped without touching the output again"
    return None


def _lock_on_s3(out: str, me: dict) -> bool:
    """`lock_output` of an `s3://` output: the lock object `LOCK` taken as a lease."""
    import logging

    from sessions import leases

    where = _on_s3(out)
    if where in _LEASES:
        return False

    def gone(holder: dict) -> bool:  # seen from here to have ended: this machine's, no longer running
        try:
            return not process_running(holder, other_boot=False)
        except (KeyError, ValueError, TypeError):
            return False

    def held_text(holder: dict, age_s: float) -> str:  # who holds it, for "... a job is writing there now (...)"
        lapse = f"one not renewed for {leases.LEASE_S:g} s is taken over"
        if not holder:  # no process to name: nothing to tell of a job but the lock's age
            return f"its lock, which sessionflow cannot read, was written {age_s:.0f} s ago; {lapse}"
        return f"{_holder_text(holder)}; its lock was renewed {age_s:.0f} s ago, {lapse}"

    bucket, _, key = where.removeprefix("s3://").partition("/")
    names = key.split("/") if key else []  # an output at the bucket's root lies inside nothing

    def above_locks() -> list[tuple[str, tuple[dict, float, str], str]]:  # an output inside another job's
        locks = []
        for above in (f"s3://{'/'.join([bucket, *names[:i]])}" for i in range(len(names) - 1, -1, -1)):
            try:
                found = leases.read(storage.join(above, LOCK))
            except OSError:
                break  # out of reach: told in one line by the check below
            if found:
                locks.append((above, found, "above"))
        return locks

    def refusal(where: str, holder: dict, age_s: float, side: str) -> str | None:  # for a live lock of another job
        if age_s < leases.LEASE_S and not gone(holder) and _process(holder) != _process(me):
            who = "another sessionflow job" if holder else "a job"
            return _nested_refusal(out, where, held_text(holder, age_s), side, who)
        return None

    for above, (holder, age_s, _), side in above_locks():
        if reason := refusal(above, holder, age_s, side):
            raise ValueError(reason)
    storage.check_writable_dir(out, "--output")
    lock = storage.join(where, LOCK)
    try:
        _LEASES[where] = leases.acquire(lock, me, gone)
    except leases.Held as held:
        raise ValueError(
            f"--output {out}: {'another sessionflow job' if held.holder else 'a job'} is writing there now "
            f"({held_text(held.holder, held.age_s)}); wait for it to end, or choose another directory (if none "
            f"runs, delete {lock})"
        ) from None
    except leases.NotSupported:
        logging.getLogger("sessionflow").warning(
            "warning: --output %s: this S3-compatible store does not support conditional writes, so this job "
            "cannot lock its output: another job writing there at the same time would not be told apart", out,
        )  # fmt: skip
        return False
    except OSError as err:
        raise storage.StorageError(f"--output {out}: its lock {err}") from None  # err names the lock
    # as locally (`lock_output`): above and inside again, once the lock is made
    for place, (holder, age_s, _), side in [*above_locks(), *_locks_inside(where, lock)]:
        if reason := refusal(place, holder, age_s, side):
            _LEASES.pop(where).release()
            raise ValueError(reason)
    return True


def _locks_inside(where: str, own: str) -> list[tuple[str, tuple[dict, float, str], str]]:
    """The S3 locks in folders inside the output `where` (not its own lock `own`): (their
    folder, `sessions.leases.read` of each, "inside"); none when the store cannot be listed."""
    from sessions import leases

    try:
        found = [f for f in storage.list_files(where, recursive=True, hidden=True) if storage.name(f) == LOCK]
    except OSError:
        return []
    locks = []
    for location in found:
        if _on_s3(location) != _on_s3(own):
            with suppress(OSError):
                if (read := leases.read(location)) is not None:
                    locks.append((storage.parent(location), read, "inside"))
    return locks


def _holder_text(holder: dict) -> str:
    """The process a lock names, for a message; {} is a lock being written (`_lock_holder`)."""
    if not holder:
        return f"its lock file, made under {LOCK_WRITE_S:g} s ago, is not complete yet"
    return f"process {holder.get('pid', '?')} on {holder.get('host', '?')}, `{holder.get('command', '?')}`"


def _process(holder: dict) -> tuple:
    """The process a lock names: (pid, start time, host)."""
    return holder.get("pid"), holder.get("started"), holder.get("host")


def _lock_holder(path: Path) -> dict | None:
    """What the `LOCK` at `path` says of the process holding it; None when that process
    is gone (not running on this host, or a new process under its pid), or the lock
    is unreadable and older than `LOCK_WRITE_S` (killed as it was made). A lock of
    another host is taken as held: its process cannot be seen from here. None too where
    no file is at `path` (nothing there, a directory, or a file where a directory on the
    way should be)."""
    try:
        holder = json.loads(path.read_text())
        running = process_running(holder, other_boot=False)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # being written, or half-written
        # by a kill (or garbled: JSON nested past Python's recursion limit raises RecursionError)
        try:
            young = time.time() - path.stat().st_mtime < LOCK_WRITE_S
        except OSError:
            return None
        return {} if young else None
    return holder if running else None


def this_process() -> dict:
    """This process as `process_running` recognises it later: {"pid", "started" (its
    start time, seconds since the epoch, UTC), "host", and on Linux "boot" (the kernel's
    boot id), "pid_namespace" (the inode of its PID namespace) and "start_ticks" (its
    start in clock ticks since boot)}. A pid alone is reused by the system; the start
    time tells a new process under it apart; a host name alone is shared by containers
    and by machines named alike."""
    import socket

    import psutil

    ticks = _start_ticks(os.getpid())
    return {"pid": os.getpid(), "started": psutil.Process().create_time(), "host": socket.gethostname(),
            **_process_space(), **({"start_ticks": ticks} if ticks is not None else {})}  # fmt: skip


def process_running(process: Mapping, other_boot: bool = True) -> bool:
    """Whether the process `this_process` described (at least its "pid", "started" and
    "host") still runs: where this process can see it (the same host, PID namespace and
    boot), the same pid started at the same time: the same clock tick since boot where
    both sides know it (Linux), else within 1 s of the recorded epoch seconds, which
    a step of the wall clock (NTP, a VM's clock set) moves for every process. One it cannot see is
    taken as running: another host's, or another PID namespace's (a container sharing
    the host's name); one of another boot of a host so named is taken as `other_boot`
    (False for a lock on a local disk: this machine's, gone with the reboot; True for a
    run in a shared tracking store: another machine may bear the name). KeyError,
    ValueError or TypeError when `process` lacks or garbles a field (a pid or start tick
    that is not a whole number from 0)."""
    import socket

    import psutil

    pid, started, host = _whole(process["pid"]), float(process["started"]), str(process["host"])
    here = _process_space()
    seen = {key: process.get(key, here.get(key)) for key in ("boot", "pid_namespace")}  # an older record: as here
    if host != socket.gethostname() or seen["pid_namespace"] != here.get("pid_namespace"):
        return True
    if seen["boot"] != here.get("boot"):
        return other_boot
    if "start_ticks" in process and (ticks := _start_ticks(pid)) is not None:
        return ticks == _whole(process["start_ticks"])
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _whole(value: object) -> int:
    """A record's pid or clock ticks: a whole number from 0 (JSON's), else ValueError
    (a string, a bool, a fraction, NaN or infinity, a negative or absurd one)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise ValueError(f"not a process's number: {value!r}")
    return value


def _start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of Linux's
    `/proc/PID/stat`, proc(5)): unlike psutil's `create_time`, which adds it to a boot
    time derived from the wall clock, it does not move when the wall clock is set. None
    where there is no such file (no such process, or not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2 :].split()[19])  # after the command's name, which may hold spaces


@functools.cache
def _process_space() -> dict[str, str]:
    """Where this process's pid means something, on Linux: {"boot": the boot id,
    "pid_namespace": the PID namespace's inode}; {} elsewhere (or unreadable). Read once:
    neither changes while the process runs."""
    space = {}
    try:
        space["boot"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        space["pid_namespace"] = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        pass
    return space


def unlock_output(out: str) -> None:
    """Remove the `LOCK` this process holds in `out` (`lock_output`); nothing when the
    directory or its lock is gone, or the lock is another process's."""
    if storage.scheme(out) == "s3":
        if (lease := _LEASES.pop(_on_s3(out), None)) is not None:
            lease.release()
        return
    if (local := storage.local_path(out)) is None:
        return
    path = local / LOCK
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError, RecursionError):
        pass


def discard_previous(out: str) -> None:
    """Delete the earlier outputs kept aside in `out` (`set_aside`): once the run that
    replaced them is done, or when a finished output is set aside in their place. Also
    a set-aside stopped as it began, before its marker was written (nothing moved yet: it
    holds no more than the marker's temporary file, `storage.TEMPORARY`)."""
    while (aside := previous_output(out)) is not None:
        entries = storage.hidden_names(aside, storage.ANY_NAME)  # its marker last: a kill midway leaves it marked
        for name in sorted(entries, key=lambda name: name == PREVIOUS_MARKER):
            storage.remove(storage.join(aside, name))
        storage.remove(aside)
        _SET_ASIDE_HERE.discard(aside)
    for name in storage.hidden_names(out, PREVIOUS_NAME):
        begun = storage.join(out, name)
        entries = storage.hidden_names(begun, storage.ANY_NAME)
        if storage.is_dir(begun) and all(storage.TEMPORARY.fullmatch(entry) for entry in entries):
            storage.remove(begun)


def check_apart(out: str | Path, inputs: Sequence[str | Path], what: str = "--output", lasting: bool = True) -> None:
    """ValueError (one line, naming the option `what`) when the output `out` is one of
    `inputs` (given, or the files they expand to, symbolic links followed), lies inside
    one or holds one; and, for an output that later commands read (`lasting`), when it
    would not outlive the process (memory://)."""
    if lasting and storage.scheme(out) == "memory":
        raise ValueError(f"{what} {out}: memory:// lives only as long as this process; give a path or a URI")
    files = storage.expand(inputs) if inputs else []
    for source in [*map(str, inputs), *files]:
        if storage.contains(out, source) or storage.may_match_under(source, out):
            raise ValueError(f"{what} {out} overlaps the input {source}; a job never writes where it reads")


def job_output(directory: str | Path, name: str, own_file: bool = False) -> str:
    """The location of `name` (e.g. sessions.parquet) in the output directory of a job
    that has finished (its `report.json` is there), or, for a reader that takes a table
    of the user's own (`own_file`: `mine`'s sessions, `train session`'s pairs), a
    Parquet file of that name in a directory without a report, named as a job names its
    output (a job writes a directory of parts; a table filtered in pandas and written
    back with `to_parquet` was "an unfinished output ... run that job again"). Raises
    IncompleteOutputError when the directory has a dataset `name` but no report (its
    job is running, failed or was killed), FileNotFoundError when it has no `name`
    (naming the job whose output it is, and the job that writes `name`)."""
    target = storage.join(storage.absolute(directory), name)
    refuse_unfinished(directory)
    if not storage.exists(target):
        parent = storage.parent(storage.absolute(directory))
        if storage.name(directory) == name and storage.exists(storage.join(parent, REPORT)):
            raise FileNotFoundError(f"{directory}: the {name} of a job's output; give its directory, {parent}")
        report = storage.join(directory, REPORT)
        held = sorted(set(_report_outputs(report) or ()) & set(JOB_TABLES)) if storage.exists(report) else []
        if held and name in JOB_TABLES:  # another job's output: say whose, and which job makes what was sought
            raise FileNotFoundError(
                f"{directory}: no {name} here: it is the output of `{JOB_TABLES[held[0]]}` ({', '.join(held)}); "
                f"`sessionflow {JOB_TABLES[name]}` writes {name}"
            )
        raise FileNotFoundError(f"{directory}: no {name} here")
    if not storage.exists(report := storage.join(directory, REPORT)):
        if storage.is_file(target):  # a job writes a directory of parts: this one is the user's
            if own_file:
                return target
            raise IncompleteOutputError(f"{directory}: its {name} is a file no job wrote (a job writes a "
                                        f"directory of parts, with {REPORT} beside it): give the file itself, "
                                        f"{target}")  # fmt: skip
        raise IncompleteOutputError(
            f"{directory}: an unfinished output (no {REPORT}: its job is still running, failed or was killed); "
            "run that job again"
        )
    if name not in _outputs_listed(report):  # a killed job's table beside another job's output
        raise IncompleteOutputError(f"{directory}: its {name} is no finished output ({REPORT} does not list it)")
    return target


class MemorySink:
    """Keeps the frames written to it (optionally only some columns), for a next
    step that consumes them directly instead of reading them back from disk."""

    def __init__(self, columns: list[str] | None = None) -> None:
        self.rows = 0
        self._columns = columns
        self._frames: list[pl.DataFrame] = []

    def write(self, frame: pl.DataFrame) -> None:
        """Keep `frame` (its chosen columns); an empty frame is dropped."""
        if frame.height:
            self._frames.append(frame.select(self._columns) if self._columns else frame)
            self.rows += frame.height

    def frame(self, schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
        """Everything written, as one frame (empty with `schema` when nothing was)."""
        if not self._frames:
            return pl.DataFrame(schema=schema)
        return pl.concat(self._frames, rechunk=False)
