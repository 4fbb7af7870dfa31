"""The data jobs on Ray Data: ingest, segment and mine, distributed over a cluster.

Each runs the very functions the local engine runs (`sessions/`), on polars frames,
per bucket of whole users after the staging shuffle (`workflows.distributed.staging`):
counting the users of each term (for the missions' common terms, a statistic of the
whole log), then segmenting and linking missions, or mining pairs. Every task writes
its part of an output through the output's filesystem (a local path or an object
store URI), and the driver publishes the dataset's manifest (`sessions.io`) once
every part is written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from sessions import storage
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.ingest import EVENTS_FILE, REJECTED_FILE, IngestReport, finish_ingest
from sessions.io import claim_output, part_name, prepare_dataset, publish_dataset, run_id, write_parquet
from sessions.missions import MissionConfig
from sessions.pairs import MINING_INPUT, PAIR_SCHEMA, MiningConfig, mine_bucket
from sessions.pipeline import (
    SESSIONS_FILE,
    SESSIONS_SCHEMA,
    SegmentReport,
    embedder_of,
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
    stage,
    stage_events,
    stage_inputs,
    staging_dir,
)
from workflows.tracking.uri import tracking_uri


# ---- ingest ----
def _write_events(batch: pa.Table, offsets: dict[int, int], target: str, run: str) -> pa.Table:
    parts = []
    for directory in batch["dir"].to_pylist():
        events = read_bucket(directory, offsets).cast(EVENT_SCHEMA)  # type: ignore[arg-type]
        parts.append(_write_part(events, target, run, directory))
    return pa.Table.from_pylist(parts)


def _write_part(frame: pl.DataFrame, target: str, run: str, directory: str) -> dict:
    """One bucket's part of a dataset (named by the run and the bucket), and its row
    count, as `publish` takes them."""
    name = part_name(run, int(storage.name(directory).removeprefix("bucket=")))
    write_parquet(frame, storage.join(target, name))
    return {"name": name, "rows": frame.height}


def publish(target: str, written: pl.DataFrame, schema: dict) -> None:
    """Publish the dataset whose parts the tasks report in `written` (`name`, `rows`);
    an empty dataset gets one empty part that tells its schema."""
    parts = [(n, r) for n, r in written.select("name", "rows").iter_rows()] if written.height else []
    if not parts:
        name = part_name(run_id(), 0)
        write_parquet(pl.DataFrame(schema=schema), storage.join(target, name))
        parts = [(name, 0)]
    publish_dataset(target, sorted(parts))


def ingest(
    inputs: Sequence[str | Path],
    fmt: str,
    output: str | Path,
    *,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    buckets: int | None = None,
    config: dict | None = None,
) -> IngestReport:
    """`sessions.ingest.ingest` on Ray: the same rows, as Parquet datasets (events in
    parts by bucket of users); `config`: the job's settings, recorded in the report."""
    n = bucket_count(buckets)
    start = time.perf_counter()
    out = claim_output(output, EVENTS_FILE, inputs=inputs)
    staging = staging_dir(out)
    try:
        report, offsets = stage(inputs, fmt, staging, buckets=n, options=options, block_bytes=block_bytes)
        target = storage.join(out, EVENTS_FILE)
        prepare_dataset(target)
        job = {"offsets": offsets, "target": target, "run": run_id()}
        publish(target, per_directory(bucket_dirs(staging), _write_events, job), EVENT_SCHEMA)
        publish_rejected(staging, offsets, storage.join(out, REJECTED_FILE))
    finally:
        storage.remove(staging)
    finish_ingest(report, out, {**(config or {}), "engine": "ray", "buckets": n}, start)
    return report


def _bucket_sessions(
    batch: pa.Table,
    offsets: dict[int, int],
    seg: SegmentConfig,
    missions: MissionConfig,
    common: list[str],
    target: str,
    run: str,
    model_uri: str | None,
    tracking: str | None,
) -> pa.Table:
    summaries = []
    model = None
    if model_uri:
        import mlflow

        from workflows.tracking.segmenter_model import segmentation_model

        mlflow.set_tracking_uri(tracking)
        model = segmentation_model(model_uri)
    for directory in batch["dir"].to_pylist():
        events = read_bucket(directory, offsets)
        terms = pl.Series(common, dtype=pl.String)
        parts = list(iter_sessions(events, seg, missions, model, common=terms, workers=1, embedder=embedder_of(model)))
        sessions = pl.concat(parts) if parts else pl.DataFrame(schema=SESSIONS_SCHEMA)
        counts = {"sessions": sessions["session_id"].n_unique(), "missions": sessions["mission_id"].n_unique()}
        summaries.append({**_write_part(sessions, target, run, directory), **counts})
    return pa.Table.from_pylist(summaries)


def segment(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    seg: SegmentConfig,
    missions: MissionConfig,
    *,
    options: ReadOptions = DEFAULT_READ,
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
    out = claim_output(output, SESSIONS_FILE, inputs=inputs)
    staging = staging_dir(out)
    n = bucket_count(buckets)
    try:
        ingest_report, offsets = stage_inputs(inputs, fmt, out, staging, n, options, block_bytes)
        read_done = time.perf_counter()
        common = log_common_terms(staging, offsets, missions)
        target = storage.join(out, SESSIONS_FILE)
        prepare_dataset(target)
        job = {"offsets": offsets, "seg": seg, "missions": missions, "common": common, "target": target,
               "run": run_id(), "model_uri": model_uri, "tracking": tracking_uri() if model_uri else None}  # fmt: skip
        written = per_directory(bucket_dirs(staging), _bucket_sessions, job)
        publish(target, written, SESSIONS_SCHEMA)
    finally:
        storage.remove(staging)
    totals = {k: int(written[k].sum()) if written.height else 0 for k in ("rows", "sessions", "missions")}
    config = {**(config or {"segment": seg.to_dict(), "missions": missions.to_dict(), "model": model_uri}),
              "engine": "ray", "buckets": n}  # fmt: skip
    return write_segment_report(out, ingest_report, totals, config, start, read_done)


# ---- mine ----
def _bucket_pairs(batch: pa.Table, offsets: dict[int, int], cfg: MiningConfig, target: str, run: str) -> pa.Table:
    parts = []
    for directory in batch["dir"].to_pylist():
        parts.append(_write_part(mine_bucket(read_bucket(directory, offsets), cfg), target, run, directory))
    return pa.Table.from_pylist(parts)


def mine(sessions_path: str | Path, output: str | Path, cfg: MiningConfig) -> str:
    """`sessions.pairs.mine_pairs` on Ray, bucket by bucket (the mining buckets, so the
    pairs are the local engine's): a dataset at `output` of one part per bucket."""
    target = str(output)
    staging = staging_dir(storage.parent(target))
    try:
        # what mining reads (`MINING_INPUT`): a sessions table of one's own need hold no more
        offsets = stage_events(str(sessions_path), staging, cfg.partitions, list(MINING_INPUT))
        prepare_dataset(target)
        job = {"offsets": offsets, "cfg": cfg, "target": target, "run": run_id()}
        publish(target, per_directory(bucket_dirs(staging), _bucket_pairs, job), PAIR_SCHEMA)
    finally:
        storage.remove(staging)
    return target
