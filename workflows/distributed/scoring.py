"""Scoring the events of whole users with texts encoded beforehand (no model here).

`sessionflow score` encodes every distinct query once (`workflows.distributed.score_job`) and
hands each bucket of users a `TextTable` of its texts: vectors of the session model,
and specificity from a hierarchy model. `score_events` then gives every event

- `p_same_prev`: the session model's same-session probability with the user's
  previous query (null for a user's first query, and where either query is one the
  model cannot read: unknown tokens alone, `models.encoder.unread_texts`, such as an
  emoji-only prompt, whose vector is zeros);
- `session_id`, `session_seq`, `mission_id`: segmentation with the model (the
  cascade, where it decides what lexical evidence would break, or `learned`, where it
  decides every pair) and mission linking with it (`sessions.pipeline.iter_sessions`,
  the table as the model);
- `specificity`, `reformulation` (with a hierarchy model; `sessions.reformulation`;
  null specificity for a text the model cannot read);
- `embedding` (float16, on request).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from models.calibration import Calibration
from sessions import storage
from sessions.formats.options import ReadOptions
from sessions.missions import MissionConfig
from sessions.pipeline import SESSIONS_SCHEMA, iter_sessions
from sessions.reformulation import DEFAULT_RATIO, Geometry, reformulation_types
from sessions.segment import SegmentConfig, user_time_order

if TYPE_CHECKING:
    from workflows.jobs.score import ScoreConfig

SCORES_FILE = "scores.parquet"  # the table `sessionflow score` writes (a dataset)
WORK_DIR = ".score-work"  # the Ray engine's work, kept in the output until the job ends (it resumes from it)

SCORE_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),
    "user_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "query": pl.String(),
    "p_same_prev": pl.Float64(),
    "session_id": pl.String(),
    "session_seq": pl.Int32(),
    "mission_id": pl.String(),
}
HIERARCHY_SCHEMA: dict[str, pl.DataType] = {"specificity": pl.Float64(), "reformulation": pl.String()}


@dataclass(frozen=True)
class TextTable:
    """Encoded texts: unit vectors of the session model (float32), and specificity (NaN
    without a hierarchy model). Serves as the session model to segmentation
    (`sessions.segment.PairScorer`) and mission linking (`sessions.missions.Embedder`)."""

    texts: pl.Series
    vectors: np.ndarray
    specificity: np.ndarray
    calibration: Calibration

    @classmethod
    def of(cls, encoded: pl.DataFrame, calibration: Calibration) -> TextTable:
        """The table of `TextEncoders.encode`'s frame (text, specificity, vector)."""
        return cls(encoded["text"], encoded["vector"].to_numpy().astype(np.float32),
                   encoded["specificity"].to_numpy(), calibration)  # fmt: skip

    @property
    def unread(self) -> int:
        """How many of the texts the session model cannot read (`unread_count`)."""
        return unread_count(self.vectors)

    @cached_property
    def _keys(self) -> pl.DataFrame:
        return pl.DataFrame({"text": self.texts, "_row": np.arange(len(self.texts))})

    def rows(self, texts: pl.Series) -> np.ndarray:
        """The row of each of `texts` (each must be in the table)."""
        found = pl.DataFrame({"text": texts.cast(pl.String)}).join(
            self._keys, on="text", how="left", maintain_order="left"
        )
        if found["_row"].null_count():
            missing = found.filter(pl.col("_row").is_null())["text"][0]
            raise KeyError(f"{found['_row'].null_count()} texts were not encoded, e.g. {missing!r}")
        return found["_row"].to_numpy()

    def __call__(self, a: pl.Series, b: pl.Series) -> np.ndarray:
        va, vb = self.vectors[self.rows(a)], self.vectors[self.rows(b)]
        p = self.p_same(np.einsum("ij,ij->i", va, vb))
        return np.where(va.any(axis=1) & vb.any(axis=1), p, np.nan)  # NaN: a query it cannot read

    def embed(self, texts: pl.Series) -> np.ndarray:
        return self.vectors[self.rows(texts)]

    def p_same(self, scores: np.ndarray) -> np.ndarray:
        return self.calibration(scores)


def unread_count(vectors: np.ndarray) -> int:
    """How many of the (n, H) session vectors are zeros: texts the model cannot read
    (`models.encoder.unread_texts`)."""
    return int((~vectors.any(axis=1)).sum()) if len(vectors) else 0


def score_events(
    events: pl.DataFrame,
    table: TextTable,
    seg: SegmentConfig,
    missions: MissionConfig,
    common: pl.Series | None = None,
    *,
    hierarchy: Geometry | None = None,
    ratio: float = DEFAULT_RATIO,
    embeddings: bool = False,
) -> pa.Table:
    """Scores of `events` (whole users; row_id, user_id, ts, query), in user and time
    order: SCORE_SCHEMA, then HIERARCHY_SCHEMA with `hierarchy` (the hierarchy model
    whose norms `table` holds as specificity; it types the reformulations at `ratio`,
    `sessions.reformulation`), then `embedding` (fixed-size lists of float16) with
    `embeddings`. `seg`: learned, or cascade (the model decides what lexical evidence
    would break); `common`: the log's common terms (None: counted over `events`, for a
    caller that holds the whole log)."""
    ordered = user_time_order(events.select("row_id", "user_id", "ts", "query"))
    rows = table.rows(ordered["query"])
    vectors = table.vectors[rows]
    same_user = (ordered["user_id"] == ordered["user_id"].shift(1)).fill_null(False).to_numpy()
    dots = np.zeros(len(rows))
    if len(rows) > 1:
        dots[1:] = np.einsum("ij,ij->i", vectors[1:], vectors[:-1])
    read = vectors.any(axis=1)  # a text read as unknown tokens alone has no vector (`models.encoder.unread_texts`)
    both_read = np.concatenate([[False], read[1:] & read[:-1]]) if len(rows) else read
    p_prev = np.where(same_user & both_read, table.calibration(dots), np.nan)
    parts = list(iter_sessions(ordered, seg, missions, table, common=common, workers=1, embedder=table))
    found = pl.concat(parts) if parts else pl.DataFrame(schema=SESSIONS_SCHEMA)
    extra = ordered.select("row_id").with_columns(
        p_same_prev=pl.Series(p_prev).fill_nan(None),
        specificity=pl.Series(table.specificity[rows]).fill_nan(None),
        _row=rows,
    )
    scored = found.join(extra, on="row_id", how="left", maintain_order="left")
    columns = list(SCORE_SCHEMA)
    if hierarchy is not None:
        scored = scored.with_columns(reformulation=reformulation_types(scored, hierarchy, ratio))
        columns += list(HIERARCHY_SCHEMA)
    out = scored.select(columns).cast({**SCORE_SCHEMA, **(HIERARCHY_SCHEMA if hierarchy is not None else {})})
    out = out.to_arrow()
    if embeddings:
        half = pa.array(table.vectors[scored["_row"].to_numpy()].astype(np.float16).ravel(), type=pa.float16())
        out = out.append_column("embedding", pa.FixedSizeListArray.from_arrays(half, table.vectors.shape[1]))
    return out


@dataclass
class ScoreReport:
    """What a score job read and wrote (both engines); `report.json` holds the same."""

    ingest: dict
    backend: str = "torch"  # the session encoder's runtime (`ScoreConfig.backend`)
    rows_out: int = 0
    sessions: int = 0
    missions: int = 0
    distinct_texts: int = 0
    unread_texts: int = 0  # of those, read as unknown tokens alone: no vector, no p_same_prev (`unread_texts`)
    resumed: dict[str, int] = field(default_factory=dict)  # units found done, by stage
    encoders: dict = field(default_factory=dict)  # the Ray engine's pool of encoding actors (`encoding_pool`)
    config: dict = field(default_factory=dict)  # the job's settings, with the engine that ran and why
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        """ray (staged buckets, an actor pool, resumable) or local (one process)."""
        return self.config["engine"]

    def to_dict(self) -> dict:
        """The report as JSON-ready values (`report.json`): the ingest's keys, then the scoring's."""
        return {**self.ingest, **{k: v for k, v in self.__dict__.items() if k != "ingest"}}


class TextEncoders:
    """The registered models of a score job, loaded to encode texts: the session model's
    encoder (eager torch, or its ONNX export on ONNX Runtime: `ScoreConfig.backend`) with
    its calibration, and the hierarchy model's text model when `cfg` names one. One
    instance per encoding actor of the Ray path, one in the process of the local path.

    `threads`: torch's (and ONNX Runtime's) intra-op threads; `gpu`: the torch models on
    the first GPU (ValueError when torch sees none). An ONNX backend reads the export
    `workflows.tracking.session_model.onnx_encoder_dir` makes on first use (the Ray
    engine's driver makes it before its actors start, so that they only download it).
    """

    def __init__(self, cfg: ScoreConfig, threads: int, gpu: bool = False) -> None:
        import torch

        if gpu and not torch.cuda.is_available():
            raise ValueError("--gpus-per-worker: no GPU is visible to torch here")
        torch.set_num_threads(threads)
        device = torch.device("cuda" if gpu else "cpu")
        if cfg.backend == "torch":
            from workflows.tracking.session_model import SessionScorer

            scorer = SessionScorer(cfg.session_model)
            self.session, self.calibration = scorer.encoder.to(device), scorer.calibration.to_dict()
        else:
            from workflows.tracking.session_model import load_onnx_session

            self.session, self.calibration = load_onnx_session(cfg.session_model, cfg.backend, threads)
        self.hierarchy = None
        if cfg.hierarchy_model:
            from workflows.tracking.hierarchy_model import load

            self.hierarchy = load(cfg.hierarchy_model).to(device)

    def hierarchy_geometry(self) -> Geometry | None:
        """The loaded hierarchy model as the reformulation types use it (None without one)."""
        from workflows.tracking.hierarchy_model import HierarchyGeometry

        return None if self.hierarchy is None else HierarchyGeometry(self.hierarchy)

    def encode(self, texts: pl.Series, batch_size: int) -> pl.DataFrame:
        """`text` (as given), `specificity` (float64, NaN without a hierarchy model) and
        `vector` (the session model's unit vector, an Array of float32) of distinct `texts`."""
        from workflows.tracking.hierarchy_model import norms

        vectors = self.session.encode(texts.to_list(), batch_size=batch_size)  # (n, H)
        if self.hierarchy is not None:
            specificity = norms(self.hierarchy, self.hierarchy.points(texts.to_list(), batch_size=batch_size))
        else:
            specificity = np.full(len(texts), np.nan)
        return pl.DataFrame({"text": texts, "specificity": specificity}).with_columns(
            vector=pl.Series(vectors, dtype=pl.Array(pl.Float32, vectors.shape[1]))
        )


@functools.cache
def worker_hierarchy_geometry(uri: str, tracking: str) -> Geometry:
    """The hierarchy model `uri` of the MLflow store `tracking` as the reformulation
    types use it, loaded once per process (a Ray worker scores many buckets with it,
    on the CPU, with the process's threads)."""
    import mlflow

    from workflows.tracking.hierarchy_model import HierarchyGeometry

    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    return HierarchyGeometry.load(uri)


def write_part(scored: pa.Table, target: str, part: str) -> None:
    """One part file of the `scores.parquet` dataset at `target`, written atomically."""
    import pyarrow.parquet as pq

    with storage.open_output(storage.join(target, part)) as stream:
        pq.write_table(scored, stream)


def job_settings(
    inputs: Sequence[str | Path], fmt: str | None, options: ReadOptions, cfg: ScoreConfig, buckets: int | None = None
) -> dict:
    """What makes two score runs the same job (the Ray engine resumes only the same job;
    the report's `config`): the inputs as they are on disk, the models as registered
    now (an alias that moved is another job), and every setting that changes a result."""
    files = []
    for location in storage.expand(inputs):  # raw logs, or the files of an ingest output
        size, mtime = storage.size_and_mtime(location)
        local = storage.local_path(location)
        files.append({"path": str(local.resolve()) if local else location, "bytes": size, "mtime": mtime})
    from workflows.tracking.store import pinned

    models = {"session_model": pinned(cfg.session_model)}
    if cfg.hierarchy_model:
        models["hierarchy_model"] = pinned(cfg.hierarchy_model)
    # not how many do the work; the batch size stays: int8's scores depend on the batches (docs/scoring.md)
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("workers", "gpus_per_worker")}
    layout = {} if buckets is None else {"buckets": buckets}
    return json.loads(json.dumps({"files": files, "format": fmt, "read": asdict(options), **layout, **settings,
                                  "models": models}, default=str))  # fmt: skip


def empty_scores(hierarchy: bool) -> pa.Table:
    """The scores of no event: SCORE_SCHEMA (and HIERARCHY_SCHEMA with a hierarchy model),
    without embeddings, whose width is unknown."""
    return pl.DataFrame(schema={**SCORE_SCHEMA, **(HIERARCHY_SCHEMA if hierarchy else {})}).to_arrow()


def distinct_count(table: pa.Table, column: str) -> int:
    """How many distinct values `column` of `table` holds (sessions, missions of scores)."""
    import pyarrow.compute as pc

    return pc.count_distinct(table[column]).as_py()
