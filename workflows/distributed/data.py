"""The data jobs on Ray Data: ingest, segment and mine, distributed over a cluster.

Each runs the very functions the local engine runs (`sessions/`), on polars frames,
per bucket of whole users after the staging shuffle (`workflows.distributed.staging`):
counting the users of each term (for the missions' common terms, a statistic of the
whole log), then segmenting and linking missions, or mining pairs. Outputs are
Parquet datasets (directories of part files) renamed into place.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from sessions.formats import ColumnMap
from sessions.ingest import EVENTS_FILE, REJECTED_FILE, REPORT_FILE, IngestReport
from sessions.io import parquet_rows, write_json, write_parquet
from sessions.missions import MissionConfig
from sessions.pairs import PAIR_SCHEMA, MiningConfig, mine_bucket
from sessions.pipeline import (
    SESSIONS_FILE,
    SESSIONS_SCHEMA,
    SegmentReport,
    iter_sessions,
    write_segment_report,
)
from sessions.records import DEFAULT_BLOCK_BYTES
from sessions.schema import EVENT_SCHEMA
from sessions.segment import SegmentConfig
from workflows.distributed.staging import (
    bucket_count,
    bucket_dirs,
    log_common_terms,
    per_directory,
    publish_rejected,
    read_bucket,
    replace_path,
    stage,
    stage_events,
    stage_inputs,
    staging_dir,
)
from workflows.tracking.store import tracking_uri


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
    config: dict | None = None,
) -> IngestReport:
    """`sessions.ingest.ingest` on Ray: the same rows, as Parquet datasets (events in
    parts by bucket of users); `config`: the job's settings, recorded in the report."""
    n = bucket_count(buckets)
    start = time.perf_counter()
    out = Path(output)
    staging = staging_dir(out)
    try:
        report, offsets = stage(inputs, fmt, staging, buckets=n, mapping=mapping, block_bytes=block_bytes)
        target = out / f".{EVENTS_FILE}.tmp"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        per_directory(bucket_dirs(staging), _write_events, {"offsets": offsets, "target": str(target)})
        if not any(target.glob("*.parquet")):
            pl.DataFrame(schema=EVENT_SCHEMA).write_parquet(target / "part-empty.parquet")
        replace_path(target, out / EVENTS_FILE)
        publish_rejected(staging, offsets, out / REJECTED_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.rows_ok, report.rows_rejected = parquet_rows(out / EVENTS_FILE), parquet_rows(out / REJECTED_FILE)
    report.check()
    report.outputs = {name: str(out / name) for name in (EVENTS_FILE, REJECTED_FILE, REPORT_FILE)}
    report.config = {**(config or {}), "engine": "ray", "buckets": n}
    report.seconds = round(time.perf_counter() - start, 3)
    write_json(report.to_dict(), out / REPORT_FILE)
    return report


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
    config: dict | None = None,
) -> SegmentReport:
    """`sessions.pipeline.segment_logs` on Ray: the same sessions.parquet, as a dataset
    of one part per bucket of users (`buckets`: 4 a CPU of the cluster by default).
    With `model_uri` (a session model) every task loads the model once and uses it to
    segment and to link missions. `config`: what the report records of the job's
    settings (the engine and the number of buckets are added)."""
    start = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(out)
    n = bucket_count(buckets)
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
    config = {**(config or {"segment": seg.to_dict(), "missions": missions.to_dict(), "model": model_uri}),
              "engine": "ray", "buckets": n}  # fmt: skip
    return write_segment_report(out, ingest_report, totals, config, start, read_done)


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
    staging = staging_dir(path.parent)
    try:
        offsets = stage_events(Path(sessions_path), staging, cfg.partitions, list(SESSIONS_SCHEMA))
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
