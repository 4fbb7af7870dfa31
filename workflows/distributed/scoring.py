"""Scoring the events of whole users with texts encoded beforehand (no model here).

`sessionflow score` encodes every distinct query once (`workflows.distributed.score_job`) and
hands each bucket of users a `TextTable` of its texts: vectors of the session model,
and specificity from a hierarchy model. `score_events` then gives every event

- `p_same_prev`: the session model's same-session probability with the user's
  previous query (null for a user's first query);
- `session_id`, `session_seq`, `mission_id`: segmentation with the model (the
  cascade, where it decides what lexical evidence would break, or `learned`, where it
  decides every pair) and mission linking with it (`sessions.pipeline.iter_sessions`,
  the table as the model);
- `specificity`, `reformulation` (with a hierarchy model; `sessions.reformulation`);
- `embedding` (float16, on request).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl
import pyarrow as pa

from models.calibration import Calibration
from sessions.missions import MissionConfig
from sessions.pipeline import SESSIONS_SCHEMA, iter_sessions
from sessions.reformulation import DEFAULT_THRESHOLD, reformulation
from sessions.segment import SegmentConfig, user_time_order

SCORES_FILE = "scores.parquet"  # the table `sessionflow score` writes (a dataset)

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
        return self.p_same(np.einsum("ij,ij->i", self.vectors[self.rows(a)], self.vectors[self.rows(b)]))

    def embed(self, texts: pl.Series) -> np.ndarray:
        return self.vectors[self.rows(texts)]

    def p_same(self, scores: np.ndarray) -> np.ndarray:
        return self.calibration(scores)


def score_events(
    events: pl.DataFrame,
    table: TextTable,
    seg: SegmentConfig,
    missions: MissionConfig,
    common: pl.Series,
    *,
    hierarchy: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    embeddings: bool = False,
) -> pa.Table:
    """Scores of `events` (whole users; row_id, user_id, ts, query), in user and time
    order: SCORE_SCHEMA, then HIERARCHY_SCHEMA with `hierarchy`, then `embedding`
    (fixed-size lists of float16) with `embeddings`. `seg`: learned, or cascade (the
    model decides what lexical evidence would break); `common`: the log's common terms."""
    ordered = user_time_order(events.select("row_id", "user_id", "ts", "query"))
    rows = table.rows(ordered["query"])
    vectors = table.vectors[rows]
    same_user = (ordered["user_id"] == ordered["user_id"].shift(1)).fill_null(False).to_numpy()
    dots = np.zeros(len(rows))
    if len(rows) > 1:
        dots[1:] = np.einsum("ij,ij->i", vectors[1:], vectors[:-1])
    p_prev = np.where(same_user, table.calibration(dots), np.nan)
    parts = list(iter_sessions(ordered, seg, missions, table, common=common, workers=1, embedder=table))
    found = pl.concat(parts) if parts else pl.DataFrame(schema=SESSIONS_SCHEMA)
    extra = ordered.select("row_id").with_columns(
        p_same_prev=pl.Series(p_prev).fill_nan(None), specificity=pl.Series(table.specificity[rows]), _row=rows
    )
    scored = found.join(extra, on="row_id", how="left", maintain_order="left")
    columns = list(SCORE_SCHEMA)
    if hierarchy:
        scored = scored.with_columns(
            reformulation=reformulation(pl.col("session_id"), pl.col("query"), pl.col("specificity"), threshold)
        )
        columns += list(HIERARCHY_SCHEMA)
    out = scored.select(columns).cast({**SCORE_SCHEMA, **(HIERARCHY_SCHEMA if hierarchy else {})}).to_arrow()
    if embeddings:
        half = pa.array(table.vectors[scored["_row"].to_numpy()].astype(np.float16).ravel(), type=pa.float16())
        out = out.append_column("embedding", pa.FixedSizeListArray.from_arrays(half, table.vectors.shape[1]))
    return out
