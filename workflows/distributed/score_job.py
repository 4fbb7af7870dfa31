"""`sessionflow score`: a whole log scored with the registered models on Ray, resumably.

Every distinct query text is encoded once, by a pool of actors that load the models
once each (a GPU each when asked), and the results go back to every event:

1. stage: parse the inputs into buckets of whole users (`distributed.data.stage_inputs`);
   count the log's common terms;
2. texts: per user bucket, its distinct texts, partitioned by a hash of the text;
3. encode (the actor pool): per text partition, its distinct texts encoded once
   (session-model vectors, hierarchy-model specificity), and each user bucket's share
   of them written beside that bucket;
4. score: per user bucket, its events and its encoded texts (`workflows.distributed.scoring`).

All work lives in `OUTPUT/.score-work/` (a local path or an object store URI: every
node reads and writes it through its filesystem). Each unit of stages 3 and 4 writes
its result as one file, atomically (`sessions.storage.open_output`), and is skipped
when found, so a job killed half-way and started
again with the same arguments does only what is missing, and gives what an
uninterrupted run gives (every unit is deterministic). Other arguments start over.
At the end `scores.parquet` (a dataset, a part per user bucket), `rejected.parquet`
and `report.json` are published and the work directory removed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import ray

from sessions import storage
from sessions.buckets import user_bucket
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.ingest import REJECTED_FILE, REPORT_FILE
from sessions.io import (
    WORK_MARKER,
    claim_output,
    part_name,
    prepare_dataset,
    publish_dataset,
    read_json,
    read_parquet,
    run_id,
    write_json,
    write_parquet,
    write_report,
)
from sessions.records import DEFAULT_BLOCK_BYTES
from workflows.distributed.scoring import (
    SCORES_FILE,
    WORK_DIR,
    ScoreReport,
    empty_scores,
    job_settings,
    unread_count,
    write_part,
)
from workflows.distributed.staging import (
    bucket_dirs,
    collect,
    log_common_terms,
    per_directory,
    read_bucket,
    stage_inputs,
)
from workflows.tracking.uri import tracking_uri

if TYPE_CHECKING:
    from workflows.jobs.score import ScoreConfig


def score(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    cfg: ScoreConfig,
    *,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    overwrite: bool = False,
    reason: str = "",
) -> ScoreReport:
    """Score `inputs` (raw logs or an ingest directory) into `output` (see the module);
    ValueError when `output` holds another job's output and not `overwrite`."""
    from workflows.distributed.runtime import cluster_cpus

    start = time.perf_counter()
    out = claim_output(output, SCORES_FILE, overwrite, inputs, also=[WORK_DIR])
    work = storage.join(out, WORK_DIR)
    n = cfg.buckets or 4 * cluster_cpus()
    job = job_settings(inputs, fmt, options, cfg, buckets=n)
    if storage.exists(storage.join(work, WORK_MARKER)) and read_json(storage.join(work, WORK_MARKER)) != job:
        storage.remove(work)  # another job's leftovers: start over
    write_json(job, storage.join(work, WORK_MARKER))
    report = ScoreReport(ingest={}, config={**job, "engine": "ray", "engine_reason": reason}, backend=cfg.backend)
    phases = {}

    staged, staging = storage.join(work, "staged.json"), storage.join(work, "staging")
    if storage.exists(staged):
        report.resumed["stage"] = 1
    else:
        storage.remove(staging)
        ingest, offsets = stage_inputs(inputs, fmt, out, staging, n, options, block_bytes)
        common = log_common_terms(staging, offsets, cfg.missions)
        write_json({"ingest": ingest, "offsets": offsets, "common": common}, staged)
    state = read_json(staged)
    report.ingest, common = state["ingest"], state["common"]
    offsets = {int(k): v for k, v in state["offsets"].items()}
    directories = bucket_dirs(staging)
    phases["stage"] = time.perf_counter() - start

    tick = time.perf_counter()
    if not storage.exists(storage.join(work, "texts.done")):
        storage.remove(storage.join(work, "texts"))
        per_directory(directories, _bucket_texts, {"parts": n, "work": work})
        storage.write_text("", storage.join(work, "texts.done"))
    phases["texts"] = time.perf_counter() - tick

    tick = time.perf_counter()
    partitions = [storage.name(p) for p in storage.list_dirs(storage.join(work, "texts"))]
    done = {storage.name(f) for f in storage.list_files(storage.join(work, "encoded"), suffix=".json")}
    todo = [p for p in partitions if f"{p}.json" not in done]
    report.resumed["encode"] = len(partitions) - len(todo)
    if todo:
        if cfg.backend != "torch":
            from workflows.tracking.session_model import load_onnx_session

            # exported once, here, before the actors read it, and loaded once: a damaged export is then
            # one line, not every actor's traceback (the change breaker's find)
            load_onnx_session(cfg.session_model, cfg.backend, 1)
        report.encoders = _encode(todo, work, cfg)
    counts = [read_json(storage.join(work, "encoded", f"{p}.json")) for p in partitions]
    report.distinct_texts, report.unread_texts = (
        sum(c["texts"] for c in counts),
        sum(c.get("unread", 0) for c in counts),
    )
    phases["encode"] = time.perf_counter() - tick

    tick = time.perf_counter()
    scored = {storage.name(f) for f in storage.list_files(storage.join(work, "scored"), suffix=".json")}
    todo = [d for d in directories if f"{storage.name(d)}.json" not in scored]
    report.resumed["score"] = len(directories) - len(todo)
    target = storage.join(out, SCORES_FILE)
    prepare_dataset(target)
    kwargs = {"offsets": offsets, "work": work, "common": common, "cfg": cfg, "target": target, "run": _run_of(job),
              "tracking": tracking_uri()}  # fmt: skip
    per_directory(todo, _score_bucket, kwargs)
    phases["score"] = time.perf_counter() - tick

    _publish(work, out, report, cfg)
    report.outputs = {name: storage.join(out, name) for name in (SCORES_FILE, REJECTED_FILE, REPORT_FILE)}
    report.seconds = round(time.perf_counter() - start, 3)
    report.phase_seconds = {k: round(v, 3) for k, v in phases.items()}
    write_report(report.to_dict(), out)
    return report


def _publish(work: str, out: str, report: ScoreReport, cfg: ScoreConfig) -> None:
    """Check the accounting, publish `scores.parquet` (the manifest of the parts the
    buckets wrote into it), remove the work directory."""
    scored = storage.join(work, "scored")
    counts = [read_json(f) for f in storage.list_files(scored, suffix=".json")]
    report.rows_out = sum(c["rows"] for c in counts)
    report.sessions = sum(c["sessions"] for c in counts)
    report.missions = sum(c["missions"] for c in counts)
    if report.rows_out != report.ingest["rows_ok"]:
        raise RuntimeError(f"{report.rows_out} scored rows for {report.ingest['rows_ok']} accepted events")
    target = storage.join(out, SCORES_FILE)
    parts = [(c["part"], c["rows"]) for c in counts]
    if not parts:  # no accepted row at all: an empty dataset
        parts = [(part_name(run_id(), 0), 0)]
        write_part(empty_scores(cfg.hierarchy_model is not None), target, parts[0][0])
    publish_dataset(target, parts)
    storage.remove(work)


# ---- stage 2: each bucket's distinct texts, by text partition ----
def _bucket_texts(batch: pa.Table, parts: int, work: str) -> pa.Table:
    rows = []
    for directory in batch["dir"].to_pylist():
        texts = (
            read_bucket(directory, {0: 0}, columns=["query"])
            .select(text=pl.col("query").unique().sort())
            .with_columns(_part=user_bucket(pl.col("text"), parts))
        )
        for (part,), frame in texts.partition_by("_part", as_dict=True).items():
            write_parquet(
                frame.drop("_part"), storage.join(work, "texts", f"p={part:05d}", f"{storage.name(directory)}.parquet")
            )
        rows.append(texts.height)
    return pa.table({"texts": rows})


# ---- stage 3: the actor pool ----
def encoding_pool(workers: int, gpus_per_worker: float, nodes: Sequence[Mapping[str, float]], partitions: int) -> dict:
    """The pool of encoding actors for `partitions` text partitions on a cluster whose
    live `nodes` offer what they do now (`runtime.node_resources()`: {"CPU": 2.0, "GPU":
    1.0, ...} a node): `workers` actors (0: one per CPU, or per `gpus_per_worker` GPUs,
    of those there now), at most one a partition; each with `cpus_each` CPUs (its torch
    threads: the most that let every actor fit on one node, `runtime.cpus_per_worker`;
    the cluster's CPUs divided by the actors asked two one-CPU nodes for an actor of 2
    CPUs, which no node has, and Ray waited for ever without a word) and `gpus_each`
    GPUs. Returns {"actors", "cpus_each", "gpus_each"}, and "note" when the pool is not
    what was asked: fewer partitions than actors, or more actors than the cluster holds
    now (they start as resources come, from an autoscaler's new nodes: `cluster.yaml`
    starts with no GPU node; on a fixed cluster they never do, and Ray Data warns that
    the job may hang, while the actors that fit do the work)."""
    from workflows.distributed.runtime import cpus_per_worker

    node_cpus = [int(node.get("CPU", 0)) for node in nodes]
    if gpus_per_worker:
        gpus = sum(node.get("GPU", 0) for node in nodes)
        holds = max(1, int(gpus / gpus_per_worker))
        unit = f"{gpus:g} GPUs hold {holds} {_actors(holds)} of {gpus_per_worker:g} GPU"
    else:
        holds = max(1, sum(node_cpus))
        unit = f"{holds} CPUs hold {holds} {_actors(holds)} of 1 CPU"
    actors = min(workers or holds, partitions)
    cpus = 1 if gpus_per_worker else cpus_per_worker(actors, node_cpus)
    pool = {"actors": actors, "cpus_each": cpus, "gpus_each": gpus_per_worker}
    if workers > partitions:
        pool["note"] = f"--workers {workers}: {partitions} text partitions, one an actor"
    elif workers > holds:
        pool["note"] = f"--workers {workers}: the cluster's {unit} now; the others wait for resources"
    return pool


def actors_waiting(pool: dict, nodes: Sequence[Mapping[str, float]]) -> str | None:
    """A one-line warning when not one actor of `pool` (`encoding_pool`'s) fits on the live
    `nodes` (`runtime.workers_waiting`): `--gpus-per-worker` on a cluster whose nodes have
    no GPU now, where Ray Data's actors wait for an autoscaler, and on a cluster without one
    for ever, with no word of sessionflow's (the cluster user's find; Ray Data's own
    "No available node types can fulfill resource request", every 35 s, named no
    option). None when one fits: those that fit do the work."""
    from workflows.distributed.runtime import workers_waiting

    gpus = pool["gpus_each"]
    return workers_waiting(
        1, {"CPU": pool["cpus_each"], "GPU": gpus}, nodes, f"score's actors (--gpus-per-worker {gpus:g})",
        "the actors wait until an autoscaler adds nodes", "score on CPUs: --gpus-per-worker 0" if gpus else None,
    )  # fmt: skip


def _actors(n: int) -> str:
    return "actor" if n == 1 else "actors"


def _encode(partitions: list[str], work: str, cfg: ScoreConfig) -> dict:
    """The text `partitions` through a pool of `Encoder` actors (`encoding_pool`: by
    default one per CPU, each with one torch thread, or one per `gpus_per_worker` GPUs;
    each with no more CPUs than one node has).
    Returns the pool that ran."""
    from workflows.distributed.runtime import node_resources

    nodes = node_resources()
    pool = encoding_pool(cfg.workers, cfg.gpus_per_worker, nodes, len(partitions))
    if waiting := actors_waiting(pool, nodes):
        logging.getLogger("sessionflow").warning(waiting)
    items = ray.data.from_items([{"part": p} for p in partitions])
    done = items.map_batches(
        Encoder,
        fn_constructor_kwargs={"cfg": cfg, "work": work, "tracking": tracking_uri(), "threads": pool["cpus_each"]},
        batch_size=1, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=pool["actors"]),
        num_cpus=pool["cpus_each"], num_gpus=pool["gpus_each"],
    )  # fmt: skip
    collect(done)
    return pool


class Encoder:
    """An actor of the pool: the models loaded once, then text partition after text
    partition encoded and handed back to the user buckets that need it."""

    def __init__(self, cfg: ScoreConfig, work: str, tracking: str, threads: int) -> None:
        import mlflow

        from workflows.distributed.scoring import TextEncoders

        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(tracking)
        self.cfg, self.work = cfg, work
        self.encoders = TextEncoders(cfg, threads, gpu=bool(cfg.gpus_per_worker))
        write_json(self.encoders.calibration, storage.join(work, "calibration.json"))  # for stage 4

    def __call__(self, batch: pa.Table) -> pa.Table:
        counts = []
        for part in batch["part"].to_pylist():
            counts.append(self.encode_partition(part))
        return pa.table({"texts": counts})

    def encode_partition(self, part: str) -> int:
        """Encode the distinct texts of the staged partition `part` (work/texts/<part>/), write
        each user bucket's share of them with their vectors to work/encoded/<bucket>/<part>.parquet,
        then work/encoded/<part>.json (the partition is done); returns how many texts."""
        shares = {storage.name(f).removesuffix(".parquet"): read_parquet(f)
                  for f in storage.list_files(storage.join(self.work, "texts", part))}  # fmt: skip
        texts = pl.concat(shares.values())["text"].unique().sort()
        encoded = self.encoders.encode(texts, self.cfg.batch_size)
        for bucket, share in shares.items():  # each user bucket's share, beside that bucket
            encoded_share = share.join(encoded, on="text", how="left", maintain_order="left")
            write_parquet(encoded_share, storage.join(self.work, "encoded", bucket, f"{part}.parquet"))
        unread = unread_count(encoded["vector"].to_numpy())
        write_json({"texts": len(texts), "unread": unread},
                   storage.join(self.work, "encoded", f"{part}.json"))  # the partition is done  # fmt: skip
        return len(texts)


# ---- stage 4: score each user bucket ----
def _run_of(job: dict) -> str:
    """The part-name id of a job: the same for every run of the same job, so that a
    resumed run finds the parts an earlier one wrote."""
    import hashlib

    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:8]


def _score_bucket(
    batch: pa.Table,
    offsets: dict[int, int],
    work: str,
    common: list[str],
    cfg: ScoreConfig,
    target: str,
    run: str,
    tracking: str,
) -> pa.Table:

    from models.calibration import Calibration
    from workflows.distributed.scoring import TextTable, distinct_count, score_events, worker_hierarchy_geometry

    calibration = Calibration(**read_json(storage.join(work, "calibration.json")))
    rows = []
    for directory in batch["dir"].to_pylist():
        name = storage.name(directory)
        encoded = pl.concat([read_parquet(f) for f in storage.list_files(storage.join(work, "encoded", name))])
        table = TextTable.of(encoded, calibration)
        scored = score_events(
            read_bucket(directory, offsets), table, cfg.segment, cfg.missions, pl.Series(common, dtype=pl.String),
            hierarchy=worker_hierarchy_geometry(cfg.hierarchy_model, tracking) if cfg.hierarchy_model else None,
            ratio=cfg.ratio, embeddings=cfg.embeddings,
        )  # fmt: skip
        part = part_name(run, int(name.removeprefix("bucket=")))
        write_part(scored, target, part)
        sessions, missions = (distinct_count(scored, c) for c in ("session_id", "mission_id"))
        done = {"part": part, "rows": scored.num_rows, "sessions": sessions, "missions": missions}
        write_json(done, storage.join(work, "scored", f"{name}.json"))  # the bucket is done
        rows.append(scored.num_rows)
    return pa.table({"rows": rows})
