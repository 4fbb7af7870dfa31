"""Staging: the shuffle that brings each user's events together, through storage.

1. parse: one Ray task per input file parses it (`LogFormat.parse_file`) and writes
   its events to a staging dataset partitioned by user bucket (`sessions.buckets`, a
   seeded hash of `user_id`), its rejected rows beside them, and returns its record
   counts; row ids are local to the file until the counts of every file are known;
2. per bucket: one task per bucket reads all of that bucket's events (whole users:
   no user is ever split across tasks) and makes row ids global (`read_bucket`).

Staging lives under the job's output (a local path on one machine, an object store
URI on a cluster: every node reads and writes it through its filesystem, never
through a local disk another node cannot see) and is removed by the job that made
it. The jobs that use it: `workflows.distributed.data` and
`workflows.distributed.score_job`.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pyarrow as pa
import ray

from sessions import storage
from sessions.buckets import user_bucket
from sessions.formats import format_for
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.ingest import EVENTS_FILE, REJECTED_FILE, REPORT_FILE, FileCount, IngestReport, expand_inputs
from sessions.io import (
    STAGING_MARKER,
    STAGING_PREFIX,
    ParquetSink,
    copy_table,
    dataset_parts,
    read_json,
    read_parquet,
    write_parquet,
)
from sessions.lexicon import Lexicon
from sessions.missions import MissionConfig, common_terms, term_users
from sessions.pipeline import ingest_source, ingest_summary
from sessions.records import DEFAULT_BLOCK_BYTES
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA
from workflows.distributed.runtime import cluster_cpus
from workflows.errors import USER_ERRORS

EVENT_COLUMNS = ["row_id", "user_id", "ts", "query"]


# ---- stage 1: parse every file into staging, bucketed by user ----
def _parse_into_staging(
    batch: pa.Table,
    fmt: str,
    options: ReadOptions,
    block_bytes: int,
    staging: str,
    buckets: int,
    columns: list[str],
) -> pa.Table:
    """Each file of `batch` parsed into `staging`; a row per file: its `count` (a
    FileCount as JSON), or the `error` that made it unreadable (a user's error, as the
    one-process engine raises it: `USER_ERRORS`), which the driver raises in one line
    (a task that failed would bring Ray Data's traceback to the terminal)."""
    counts = []
    for file, path in zip(batch["file"].to_pylist(), batch["path"].to_pylist(), strict=True):
        count = FileCount(path)
        try:
            for block, parsed in enumerate(format_for(fmt, path, options).parse_file(path, block_bytes=block_bytes)):
                name = f"f{file:05d}-b{block:05d}.parquet"
                events = parsed.events.select(columns).with_columns(
                    _file=pl.lit(file, pl.Int32), _bucket=user_bucket(pl.col("user_id"), buckets)
                )
                for (bucket,), part in events.partition_by("_bucket", as_dict=True).items():
                    write_parquet(part.drop("_bucket"), storage.join(staging, "events", f"bucket={bucket:05d}", name))
                if parsed.rejected.height:
                    rejected = parsed.rejected.with_columns(_file=pl.lit(file, pl.Int32))
                    write_parquet(rejected, storage.join(staging, "rejected", name))
                count.add(parsed)
        except USER_ERRORS as err:
            counts.append({"file": file, "count": None, "error": str(err)})
            continue
        counts.append({"file": file, "count": json.dumps(asdict(count)), "error": None})
    return pa.Table.from_pylist(counts, schema=PARSE_COUNTS)


PARSE_COUNTS = pa.schema([("file", pa.int64()), ("count", pa.string()), ("error", pa.string())])


def collect(ds: ray.data.Dataset) -> pl.DataFrame:
    """A small dataset, gathered into one polars frame on the driver."""
    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    return pl.from_arrow(pa.concat_tables(tables, promote_options="permissive")) if tables else pl.DataFrame()  # type: ignore[return-value]


def _accounting(
    fmt: str, paths: list[str], counts: pl.DataFrame, skipped_files: list[dict[str, str]], strict: bool = False
) -> tuple[IngestReport, dict[int, int]]:
    """The ingest report from the parse tasks' per-file counts, and each file's row id
    offset. ValueError: the first file (in input order) a task could not read, and why."""
    errors = counts.filter(pl.col("error").is_not_null()).sort("file") if counts.height else counts
    if errors.height:
        raise ValueError(errors["error"][0])
    by_file = {i: FileCount(**json.loads(c)) for i, c, _ in counts.iter_rows()} if counts.height else {}
    files = [by_file.get(i, FileCount(path)) for i, path in enumerate(paths)]
    report = IngestReport.of_files(fmt, files, skipped_files, strict)
    starts = itertools.accumulate((f.rows_in for f in report.files), initial=0)
    return report, dict(enumerate(itertools.islice(starts, len(paths))))


def global_ids(df: pl.DataFrame, offsets: dict[int, int]) -> pl.DataFrame:
    """`df` with global row ids: the row id offset of each row's file (`offsets`, by `_file`)
    added to its `row_id`, and `_file` dropped. A `_file` not in `offsets` raises (polars'
    `replace_strict`)."""
    shift = df["_file"].replace_strict(offsets, return_dtype=pl.Int64)
    return df.with_columns(pl.col("row_id") + shift).drop("_file")


def stage(
    inputs: Sequence[str | Path],
    fmt: str,
    staging: str,
    *,
    buckets: int,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    columns: list[str] | None = None,
) -> tuple[IngestReport, dict[int, int]]:
    """Parse the inputs into `staging` (events by bucket, rejected rows), one Ray task a
    file; returns the accounting and the row id offset of every file."""
    skipped_files: list[dict[str, str]] = []
    paths = expand_inputs(inputs, skipped_files, fmt)
    for path in paths:  # wrong format options fail here, before any task starts
        format_for(fmt, path, options)
    files = ray.data.from_items([{"file": i, "path": p} for i, p in enumerate(paths)])
    counts = files.map_batches(
        _parse_into_staging, batch_size=1, batch_format="pyarrow",
        fn_kwargs={"fmt": fmt, "options": options, "block_bytes": block_bytes, "staging": staging,
                   "buckets": buckets, "columns": columns or list(EVENT_SCHEMA)},
    )  # fmt: skip
    report, offsets = _accounting(fmt, paths, collect(counts), skipped_files, options.strict)
    report.check()
    return report, offsets


def publish_rejected(staging: str, offsets: dict[int, int], path: str) -> None:
    """The staged rejected rows, with global row ids and sorted by them, published as the
    Parquet dataset `path` (an empty one when there are none)."""
    files = storage.list_files(storage.join(staging, "rejected"), suffix=".parquet")
    rejected = (
        pl.concat([read_parquet(f) for f in files])
        if files
        else pl.DataFrame(schema={**REJECTED_SCHEMA, "_file": pl.Int32})
    )
    with ParquetSink(path, REJECTED_SCHEMA) as sink:  # a dataset, as the local engine writes it
        sink.write(global_ids(rejected, offsets).sort("row_id").cast(REJECTED_SCHEMA))  # type: ignore[arg-type]


def bucket_dirs(staging: str) -> list[str]:
    """The directories of the staged event buckets (`staging`/events/*), sorted."""
    return storage.list_dirs(storage.join(staging, "events"))


def per_directory(directories: Sequence[str], fn: Callable[..., pa.Table], kwargs: dict) -> pl.DataFrame:
    """`fn(batch, **kwargs)` on each directory (a batch of one row `dir`), one Ray task each;
    what the tasks return, gathered."""
    if not directories:
        return pl.DataFrame()
    items = ray.data.from_items([{"dir": d} for d in directories])
    return collect(items.map_batches(fn, batch_size=1, batch_format="pyarrow", fn_kwargs=kwargs))


def read_bucket(directory: str, offsets: dict[int, int], columns: list[str] | None = None) -> pl.DataFrame:
    """The events of one staged bucket (every part of it), with global row ids (when
    `columns`, all columns by default, include them)."""
    files = storage.list_files(directory)
    if columns is not None and "row_id" not in columns:
        return pl.concat([read_parquet(f, columns=columns) for f in files])
    parts = [read_parquet(f, columns=columns and [*columns, "_file"]) for f in files]
    return global_ids(pl.concat(parts), offsets)


def staging_dir(out: str) -> str:
    """A new staging directory in the output `out`, marked as a job's (`STAGING_MARKER`:
    what a later run may delete as a killed one's leftover)."""
    staging = storage.join(out, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    storage.write_text('{"staging": true}\n', storage.join(staging, STAGING_MARKER))
    return staging


def bucket_count(requested: int | None) -> int:
    """`requested` buckets of users, or (None or 0) four per CPU of the Ray cluster."""
    return requested or 4 * cluster_cpus()


# ---- segment ----
def _bucket_term_users(batch: pa.Table, offsets: dict[int, int]) -> pa.Table:
    """Users per term in each bucket, and (under a null term) each bucket's users."""
    counts = []
    for directory in batch["dir"].to_pylist():
        events = read_bucket(directory, offsets)
        counts.append(term_users(Lexicon(events["query"]), events["user_id"]))
        counts.append(pl.DataFrame({"term": [None], "users": [events["user_id"].n_unique()]}, schema=counts[-1].schema))
    return pl.concat(counts).to_arrow()


def stage_inputs(
    inputs: Sequence[str | Path],
    fmt: str | None,
    out: str,
    staging: str,
    buckets: int,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[dict, dict[int, int]]:
    """Events of raw logs (parsed by Ray tasks) or of an ingest directory into the
    staging buckets, rejected rows published to `out`; the ingest accounting and the
    row id offset of every file."""
    if (source := ingest_source(inputs, fmt)) is not None:
        copy_table(storage.join(source, REJECTED_FILE), storage.join(out, REJECTED_FILE))
        report = read_json(storage.join(source, REPORT_FILE))
        return report, stage_events(storage.join(source, EVENTS_FILE), staging, buckets)
    report, offsets = stage(
        inputs, fmt, staging, buckets=buckets, options=options, block_bytes=block_bytes, columns=EVENT_COLUMNS
    )
    publish_rejected(staging, offsets, storage.join(out, REJECTED_FILE))
    return ingest_summary(report), offsets


def log_common_terms(staging: str, offsets: dict[int, int], missions: MissionConfig) -> list[str]:
    """The terms too common to link missions (`sessions.missions.common_terms`), counted
    over every bucket of the staged log."""
    counts = per_directory(bucket_dirs(staging), _bucket_term_users, {"offsets": offsets})
    if not counts.height:
        return []
    n_users = int(counts.filter(pl.col("term").is_null())["users"].sum())
    return common_terms(counts.filter(pl.col("term").is_not_null()), n_users, missions).to_list()


def _restage(batch: pa.Table, staging: str, buckets: int, columns: list[str]) -> pa.Table:
    """Events of an ingest output into the staging buckets (row ids already global)."""
    name = f"{uuid.uuid4().hex}.parquet"
    df = (
        pl.from_arrow(batch)
        .select(columns)
        .with_columns(_file=pl.lit(0, pl.Int32), _bucket=user_bucket(pl.col("user_id"), buckets))
    )
    for (bucket,), part in df.partition_by("_bucket", as_dict=True).items():
        write_parquet(part.drop("_bucket"), storage.join(staging, "events", f"bucket={bucket:05d}", name))
    return pa.table({"rows": [df.height]})


def stage_events(events: str, staging: str, buckets: int, columns: list[str] = EVENT_COLUMNS) -> dict[int, int]:
    """Stage a Parquet output of events (a file or a published dataset: only the parts
    its manifest lists) by bucket; its row ids are global (offset 0)."""
    parts = dataset_parts(events)
    fs = storage.resolve(parts[0])[0]
    dataset = ray.data.read_parquet([storage.resolve(p)[1] for p in parts], filesystem=fs)
    collect(dataset.map_batches(
        _restage, batch_format="pyarrow", fn_kwargs={"staging": staging, "buckets": buckets, "columns": columns}
    ))  # fmt: skip
    return {0: 0}
