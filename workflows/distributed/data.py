"""The data jobs on Ray Data: ingest, segment and mine, distributed over a cluster.

Each stage runs the very functions the local engine runs (`sessions/`), on polars
frames, and the shuffle that brings each user's events together is done through
storage:

1. parse: one task per input file parses it (`LogFormat.parse_file`) and writes its
   events to a staging dataset partitioned by user bucket (`sessions.buckets`, a
   seeded hash of `user_id`), its rejected rows beside them, and returns its record
   counts; row ids are local to the file until the counts of every file are known;
2. per bucket: one task per bucket reads all of that bucket's events (whole users:
   no user is ever split across tasks), makes row ids global, and works on them:
   counting the users of each term (for the missions' common terms, a statistic of
   the whole log), then segmenting and linking missions, or mining pairs.

Staging lives in the output directory (shared storage on a cluster) and is removed at
the end; outputs are Parquet datasets (directories of part files) renamed into place.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import ray

from sessions.buckets import user_bucket
from sessions.formats import ColumnMap, format_for
from sessions.ingest import EVENTS_FILE, REJECTED_FILE, REPORT_FILE, FileCount, IngestReport, expand_inputs
from sessions.io import parquet_rows, write_json, write_parquet
from sessions.lexicon import Lexicon
from sessions.missions import MissionConfig, common_terms, term_users
from sessions.pairs import PAIR_SCHEMA, MiningConfig, mine_bucket
from sessions.pipeline import (
    SESSIONS_FILE,
    SESSIONS_SCHEMA,
    SegmentReport,
    copy_output,
    ingest_summary,
    is_ingest_output,
    iter_sessions,
)
from sessions.records import DEFAULT_BLOCK_BYTES
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA
from sessions.segment import SegmentConfig
from workflows.distributed.runtime import cluster_cpus
from workflows.tracking.store import tracking_uri

EVENT_COLUMNS = ["row_id", "user_id", "ts", "query"]


# ---- stage 1: parse every file into staging, bucketed by user ----
def _parse_into_staging(
    batch: pa.Table,
    fmt: str,
    mapping: ColumnMap | None,
    block_bytes: int,
    staging: str,
    buckets: int,
    columns: list[str],
) -> pa.Table:
    counts = []
    for file, path in zip(batch["file"].to_pylist(), batch["path"].to_pylist(), strict=True):
        for block, parsed in enumerate(format_for(fmt, path, mapping).parse_file(path, block_bytes=block_bytes)):
            name = f"f{file:05d}-b{block:05d}.parquet"
            events = parsed.events.select(columns).with_columns(
                _file=pl.lit(file, pl.Int32), _bucket=user_bucket(pl.col("user_id"), buckets)
            )
            for (bucket,), part in events.partition_by("_bucket", as_dict=True).items():
                write_parquet(part.drop("_bucket"), Path(staging) / "events" / f"bucket={bucket:05d}" / name)
            if parsed.rejected.height:
                write_parquet(
                    parsed.rejected.with_columns(_file=pl.lit(file, pl.Int32)), Path(staging) / "rejected" / name
                )
            counts.append(parsed.rejected.group_by("reason").len().with_columns(file=pl.lit(file)))
            counts.append(pl.DataFrame({"reason": [None], "len": [parsed.events.height], "file": [file]}))
    if not counts:
        return pl.DataFrame(schema={"reason": pl.String, "len": pl.UInt32, "file": pl.Int64}).to_arrow()
    return (
        pl.concat(counts, how="vertical_relaxed")
        .cast({"reason": pl.String, "len": pl.UInt32, "file": pl.Int64})
        .to_arrow()
    )


def collect(ds: ray.data.Dataset) -> pl.DataFrame:
    """A small dataset, gathered into one polars frame on the driver."""
    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    return pl.from_arrow(pa.concat_tables(tables, promote_options="permissive")) if tables else pl.DataFrame()  # type: ignore[return-value]


def _accounting(fmt: str, paths: list[Path], counts: pl.DataFrame) -> tuple[IngestReport, dict[int, int]]:
    """The ingest report from per-(file, reason) counts, and each file's row id offset."""
    report = IngestReport(format=fmt)
    for i, path in enumerate(paths):
        mine = counts.filter(pl.col("file") == i) if counts.height else counts
        rows_in = int(mine["len"].sum()) if mine.height else 0
        rejected = int(mine.filter(pl.col("reason").is_not_null())["len"].sum()) if mine.height else 0
        report.files.append(FileCount(str(path), rows_in, rows_in - rejected, rejected))
    report.rows_in = sum(f.rows_in for f in report.files)
    report.rows_ok = sum(f.rows_ok for f in report.files)
    report.rows_rejected = sum(f.rows_rejected for f in report.files)
    if counts.height:
        reasons = counts.filter(pl.col("reason").is_not_null()).group_by("reason").agg(pl.col("len").sum())
        report.rejected_by_reason = dict(reasons.sort("len", descending=True).iter_rows())
    starts = itertools.accumulate((f.rows_in for f in report.files), initial=0)
    return report, dict(enumerate(itertools.islice(starts, len(paths))))


def _global_ids(df: pl.DataFrame, offsets: dict[int, int]) -> pl.DataFrame:
    shift = df["_file"].replace_strict(offsets, return_dtype=pl.Int64)
    return df.with_columns(pl.col("row_id") + shift).drop("_file")


def stage(
    inputs: Sequence[str | Path],
    fmt: str,
    staging: Path,
    *,
    buckets: int,
    mapping: ColumnMap | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    columns: list[str] | None = None,
) -> tuple[IngestReport, dict[int, int]]:
    """Parse the inputs into `staging` (events by bucket, rejected rows), one Ray task a
    file; returns the accounting and the row id offset of every file."""
    paths = expand_inputs(inputs)
    for path in paths:  # wrong format options fail here, before any task starts
        format_for(fmt, path, mapping)
    files = ray.data.from_items([{"file": i, "path": str(p)} for i, p in enumerate(paths)])
    counts = files.map_batches(
        _parse_into_staging, batch_size=1, batch_format="pyarrow",
        fn_kwargs={"fmt": fmt, "mapping": mapping, "block_bytes": block_bytes, "staging": str(staging),
                   "buckets": buckets, "columns": columns or list(EVENT_SCHEMA)},
    )  # fmt: skip
    report, offsets = _accounting(fmt, paths, collect(counts))
    report.check()
    return report, offsets


def _publish_rejected(staging: Path, offsets: dict[int, int], path: Path) -> None:
    files = sorted((staging / "rejected").glob("*.parquet")) if (staging / "rejected").exists() else []
    rejected = (
        pl.concat([pl.read_parquet(f) for f in files])
        if files
        else pl.DataFrame(schema={**REJECTED_SCHEMA, "_file": pl.Int32})
    )
    write_parquet(_global_ids(rejected, offsets).sort("row_id").cast(REJECTED_SCHEMA), path)  # type: ignore[arg-type]


def bucket_dirs(staging: Path) -> list[str]:
    return sorted(str(p) for p in (staging / "events").glob("bucket=*"))


def per_directory(directories: Sequence[str], fn, kwargs: dict) -> pl.DataFrame:
    """`fn(batch, **kwargs)` on each directory (a batch of one row `dir`), one Ray task each;
    what the tasks return, gathered."""
    if not directories:
        return pl.DataFrame()
    items = ray.data.from_items([{"dir": d} for d in directories])
    return collect(items.map_batches(fn, batch_size=1, batch_format="pyarrow", fn_kwargs=kwargs))


def read_bucket(directory: str, offsets: dict[int, int]) -> pl.DataFrame:
    return _global_ids(pl.read_parquet(sorted(Path(directory).glob("*.parquet"))), offsets)


def _staging_dir(out: Path) -> Path:
    return out / f".staging-{uuid.uuid4().hex[:8]}"


def _buckets(requested: int | None) -> int:
    return requested or 4 * cluster_cpus()


# ---- ingest ----
def _write_events(batch: pa.Table, offsets: dict[int, int], target: str) -> pa.Table:
    rows = []
    for directory in batch["dir"].to_pylist():
        events = read_bucket(directory, offsets).cast(EVENT_SCHEMA)  # type: ignore[arg-type]
        write_parquet(events, Path(target) / f"part-{Path(directory).name}.parquet")
        rows.append(events.height)
    return pa.table({"rows": rows})


def ingest(
    inputs: Sequence[str | Path],
    fmt: str,
    output: str | Path,
    *,
    mapping: ColumnMap | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    buckets: int | None = None,
) -> IngestReport:
    """`sessions.ingest.ingest` on Ray: the same rows, as Parquet datasets (events in
    parts by bucket of users)."""
    start = time.perf_counter()
    out = Path(output)
    staging = _staging_dir(out)
    try:
        report, offsets = stage(
            inputs, fmt, staging, buckets=_buckets(buckets), mapping=mapping, block_bytes=block_bytes
        )
        target = out / f".{EVENTS_FILE}.tmp"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        per_directory(bucket_dirs(staging), _write_events, {"offsets": offsets, "target": str(target)})
        if not any(target.glob("*.parquet")):
            pl.DataFrame(schema=EVENT_SCHEMA).write_parquet(target / "part-empty.parquet")
        replace_path(target, out / EVENTS_FILE)
        _publish_rejected(staging, offsets, out / REJECTED_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.rows_ok, report.rows_rejected = parquet_rows(out / EVENTS_FILE), parquet_rows(out / REJECTED_FILE)
    report.check()
    report.outputs = {name: str(out / name) for name in (EVENTS_FILE, REJECTED_FILE, REPORT_FILE)}
    report.seconds = round(time.perf_counter() - start, 3)
    write_json(report.to_dict(), out / REPORT_FILE)
    return report


def replace_path(tmp: Path, path: Path) -> None:
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    tmp.rename(path)


# ---- segment ----
def _bucket_term_users(batch: pa.Table, offsets: dict[int, int]) -> pa.Table:
    """Users per term in each bucket, and (under a null term) each bucket's users."""
    counts = []
    for directory in batch["dir"].to_pylist():
        events = read_bucket(directory, offsets)
        counts.append(term_users(Lexicon(events["query"]), events["user_id"]))
        counts.append(pl.DataFrame({"term": [None], "users": [events["user_id"].n_unique()]}, schema=counts[-1].schema))
    return pl.concat(counts).to_arrow()


def _bucket_sessions(
    batch: pa.Table,
    offsets: dict[int, int],
    seg: SegmentConfig,
    missions: MissionConfig,
    common: list[str],
    target: str,
    model_uri: str | None,
    tracking: str | None,
) -> pa.Table:
    summaries = []
    model = None
    if model_uri:
        import mlflow

        from workflows.tracking.session_model import SessionScorer

        mlflow.set_tracking_uri(tracking)
        model = SessionScorer(model_uri)
    for directory in batch["dir"].to_pylist():
        events = read_bucket(directory, offsets)
        parts = list(
            iter_sessions(
                events, seg, missions, model, common=pl.Series(common, dtype=pl.String), workers=1, embedder=model
            )
        )
        sessions = pl.concat(parts) if parts else pl.DataFrame(schema=SESSIONS_SCHEMA)
        write_parquet(sessions, Path(target) / f"part-{Path(directory).name}.parquet")
        summaries.append(
            {
                "rows": sessions.height,
                "sessions": sessions["session_id"].n_unique(),
                "missions": sessions["mission_id"].n_unique(),
            }
        )
    return pa.Table.from_pylist(summaries)


def segment(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    seg: SegmentConfig,
    missions: MissionConfig,
    *,
    mapping: ColumnMap | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    buckets: int | None = None,
    model_uri: str | None = None,
) -> SegmentReport:
    """`sessions.pipeline.segment_logs` on Ray: the same sessions.parquet, as a dataset
    of one part per bucket of users (`buckets`: 4 a CPU of the cluster by default).
    With `model_uri` (a session model) every task loads the model once and uses it to
    segment and to link missions."""
    start = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    staging = _staging_dir(out)
    n = _buckets(buckets)
    try:
        ingest_report, offsets = stage_inputs(inputs, fmt, out, staging, n, mapping, block_bytes)
        read_done = time.perf_counter()
        common = log_common_terms(staging, offsets, missions)
        target = out / f".{SESSIONS_FILE}.tmp"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        job = {"offsets": offsets, "seg": seg, "missions": missions, "common": common, "target": str(target),
               "model_uri": model_uri, "tracking": tracking_uri() if model_uri else None}  # fmt: skip
        written = per_directory(bucket_dirs(staging), _bucket_sessions, job)
        if not any(target.glob("*.parquet")):
            pl.DataFrame(schema=SESSIONS_SCHEMA).write_parquet(target / "part-empty.parquet")
        replace_path(target, out / SESSIONS_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    totals = {k: int(written[k].sum()) if written.height else 0 for k in ("rows", "sessions", "missions")}
    if totals["rows"] != ingest_report["rows_ok"] or parquet_rows(out / SESSIONS_FILE) != totals["rows"]:
        raise RuntimeError(f"{totals['rows']} session rows for {ingest_report['rows_ok']} accepted events")
    end = time.perf_counter()
    report = SegmentReport(
        ingest=ingest_report,
        sessions=totals["sessions"],  # users, hence sessions and missions, never span buckets
        missions=totals["missions"],
        rows_out=totals["rows"],
        config={
            "segment": seg.to_dict(),
            "missions": missions.to_dict(),
            "engine": "ray",
            "buckets": n,
            "model": model_uri,
        },
        outputs={name: str(out / name) for name in (SESSIONS_FILE, REJECTED_FILE, REPORT_FILE)},
        seconds=round(end - start, 3),
        phase_seconds={"read": round(read_done - start, 3), "segment_and_write": round(end - read_done, 3)},
    )
    write_json(report.to_dict(), out / REPORT_FILE)
    return report


def stage_inputs(
    inputs: Sequence[str | Path],
    fmt: str | None,
    out: Path,
    staging: Path,
    buckets: int,
    mapping: ColumnMap | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[dict, dict[int, int]]:
    """Events of raw logs (parsed by Ray tasks) or of an ingest directory into the
    staging buckets, rejected rows published to `out`; the ingest accounting and the
    row id offset of every file."""
    if len(inputs) == 1 and is_ingest_output(inputs[0]):
        source = Path(inputs[0])
        copy_output(source / REJECTED_FILE, out / REJECTED_FILE)
        return json.loads((source / REPORT_FILE).read_text()), _stage_events(source / EVENTS_FILE, staging, buckets)
    if fmt is None:
        raise ValueError("raw logs need --format")
    report, offsets = stage(
        inputs, fmt, staging, buckets=buckets, mapping=mapping, block_bytes=block_bytes, columns=EVENT_COLUMNS
    )
    _publish_rejected(staging, offsets, out / REJECTED_FILE)
    return ingest_summary(report), offsets


def log_common_terms(staging: Path, offsets: dict[int, int], missions: MissionConfig) -> list[str]:
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
        write_parquet(part.drop("_bucket"), Path(staging) / "events" / f"bucket={bucket:05d}" / name)
    return pa.table({"rows": [df.height]})


def _stage_events(events: Path, staging: Path, buckets: int, columns: list[str] = EVENT_COLUMNS) -> dict[int, int]:
    """Stage an events dataset by bucket; its row ids are global (offset 0)."""
    collect(ray.data.read_parquet(str(events)).map_batches(
        _restage, batch_format="pyarrow", fn_kwargs={"staging": str(staging), "buckets": buckets, "columns": columns}
    ))  # fmt: skip
    return {0: 0}


# ---- mine ----
def _bucket_pairs(batch: pa.Table, offsets: dict[int, int], cfg: MiningConfig, target: str) -> pa.Table:
    rows = []
    for directory in batch["dir"].to_pylist():
        pairs = mine_bucket(read_bucket(directory, offsets), cfg)
        write_parquet(pairs, Path(target) / f"part-{Path(directory).name}.parquet")
        rows.append(pairs.height)
    return pa.table({"rows": rows})


def mine(sessions_path: str | Path, output: str | Path, cfg: MiningConfig) -> Path:
    """`sessions.pairs.mine_pairs` on Ray, bucket by bucket (the mining buckets, so the
    pairs are the local engine's): a dataset of one part per bucket."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_dir(path.parent)
    try:
        offsets = _stage_events(Path(sessions_path), staging, cfg.partitions, list(SESSIONS_SCHEMA))
        target = path.with_name(f".{path.name}.tmp")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        per_directory(bucket_dirs(staging), _bucket_pairs, {"offsets": offsets, "cfg": cfg, "target": str(target)})
        if not any(target.glob("*.parquet")):
            pl.DataFrame(schema=PAIR_SCHEMA).write_parquet(target / "part-empty.parquet")
        replace_path(target, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
