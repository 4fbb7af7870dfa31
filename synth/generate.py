"""Synthetic logs, a chunk of users at a time, in the AOL or DiffusionDB layout.

Each chunk is drawn from its own random stream (`seed`, chunk number), so a log is
the same for the same arguments, and memory stays bounded by `chunk_rows`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from synth.config import MAX_ROWS_PER_USER, SynthConfig
from synth.render import (
    NAV_SITES,
    add_typos,
    click_columns,
    expand_rows,
    query_texts,
    reformulation,
    slot_layout,
    user_hash,
)
from synth.structure import build_structure
from synth.taxonomy import ConceptIndex, Taxonomy
from synth.walk import TYPO, walk

FIRST_USER_ID = 100_000
AOL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
GOLD = ("gold_session", "gold_mission", "gold_depth", "gold_reformulation")


@dataclass(frozen=True)
class Chunk:
    """Rows of a chunk of users, in the output layout, with what they hold."""

    rows: pl.DataFrame
    users: int
    sessions: int
    missions: int
    late_users: int = 0  # users whose queries run past the window (`SynthConfig.window`): their bursts do not fit
    last_ts: float = 0.0  # the chunk's last query, seconds since the Unix epoch (UTC)


def user_budgets(cfg: SynthConfig) -> np.ndarray:
    """Rows per user, shape (cfg.users,): heavy-tailed (log-normal), summing to cfg.rows
    when given.

    ValueError where the draw is more than the generator can hold: a user of more rows
    than `chunk_rows` (a chunk is whole users, so that user's rows would all be in memory
    at once: a median of 1e8 rows a user ran out of memory), or, without `rows`, more
    rows in all than `MAX_ROWS_PER_USER` a user on average (the bound `rows` has).
    """
    rng = np.random.default_rng([cfg.seed, 0x5E55])
    weights = np.exp(cfg.user_rows_sigma * rng.standard_normal(cfg.users))
    if cfg.rows is None:
        budget = np.rint(np.minimum(cfg.user_rows_median * weights, 2.0**62)).astype(np.int64)
        budget = np.maximum(1, budget)
        if budget.sum(dtype=np.float64) > MAX_ROWS_PER_USER * cfg.users:
            raise ValueError(
                f"--user-rows-median {cfg.user_rows_median:g} and --user-rows-sigma {cfg.user_rows_sigma:g} draw "
                f"{budget.sum(dtype=np.float64):,.0f} rows, more than {MAX_ROWS_PER_USER:,} a user on average; "
                "lower them, or give --rows"
            )
    else:
        share = (cfg.rows - cfg.users) * weights / weights.sum()  # every user has at least one row
        budget = 1 + np.floor(share).astype(np.int64)
        short = cfg.rows - int(budget.sum())
        budget[np.argsort(share - np.floor(share))[::-1][:short]] += 1  # largest remainders
    if (heaviest := int(budget.max())) > cfg.chunk_rows:
        raise ValueError(
            f"the heaviest user draws {heaviest:,} rows, more than --chunk-rows {cfg.chunk_rows:,} (the rows held "
            "in memory at a time; a user is never split): raise --chunk-rows, or lower --user-rows-median, "
            "--user-rows-sigma or --rows"
        )
    return budget


def chunk_bounds(budget: np.ndarray, chunk_rows: int) -> list[tuple[int, int]]:
    """User ranges [lo, hi) of about chunk_rows rows each."""
    cum = np.cumsum(budget)
    cuts = np.searchsorted(cum, np.arange(chunk_rows, int(cum[-1]), chunk_rows), side="left") + 1
    edges = np.unique(np.concatenate(([0], cuts, [len(budget)])))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def generate(cfg: SynthConfig, taxonomy: Taxonomy) -> Iterator[Chunk]:
    """The log, chunk by chunk, in user order. The users' rows are drawn at the call, so
    that settings the generator cannot hold (`user_budgets`) fail before any chunk."""
    budget = user_budgets(cfg)
    return _chunks(cfg, ConceptIndex(taxonomy), budget)


def _chunks(cfg: SynthConfig, index: ConceptIndex, budget: np.ndarray) -> Iterator[Chunk]:
    for number, (lo, hi) in enumerate(chunk_bounds(budget, cfg.chunk_rows)):
        rng = np.random.default_rng([cfg.seed, number + 1])
        yield _chunk(cfg, index, budget[lo:hi], FIRST_USER_ID + lo, rng)


def _chunk(cfg: SynthConfig, index: ConceptIndex, budget: np.ndarray, first_id: int, rng: np.random.Generator) -> Chunk:
    s = build_structure(budget, cfg, rng, len(NAV_SITES))
    w = walk(s, index, cfg.style, rng, *slot_layout(cfg.style))
    text = add_typos(query_texts(s, w, index, cfg.style), w.op == TYPO, rng)
    probs = cfg.click_probs if cfg.style == "aol" else cfg.image_probs
    event, copy, copies = expand_rows(s, budget, probs, rng)

    user_id = (first_id + s.user[event]).astype(np.int64)
    # Gold labels name the user as the log does: AnonID, or DiffusionDB's hashed user_name.
    user_key = pl.Series(user_id).cast(pl.String) if cfg.style == "aol" else _user_names(user_id).str.slice(0, 12)
    nav_site = s.nav_site[event]
    nav_name = pl.Series(NAV_SITES).gather(np.maximum(nav_site, 0)).str.replace_all(" ", "")
    concept = w.concept[event]
    gold = pl.DataFrame(
        {
            "uid": user_key,
            "session": s.session[event],
            "mission": s.mission_no[event],
            "nav": nav_name,
            "is_nav": nav_site >= 0,
            "depth": np.where(concept >= 0, index.depth[np.maximum(concept, 0)], -1),
            "gold_reformulation": reformulation(w.op, s.session_start, event, copy),
        }
    ).select(
        gold_session=pl.format("{}/s{}", "uid", "session"),
        gold_mission=pl.when("is_nav")
        .then(pl.format("{}/nav-{}", "uid", "nav"))
        .otherwise(pl.format("{}/m{}", "uid", "mission")),
        gold_depth=pl.when(pl.col("depth") >= 0).then(pl.col("depth")).cast(pl.Int32),
        gold_reformulation=pl.col("gold_reformulation").cast(pl.String),
    )
    query = text.gather(event)
    ts = pl.from_epoch(pl.Series("ts", np.floor(s.ts[event]).astype(np.int64)), "s")
    if cfg.style == "aol":
        names = index.lemma_text.gather(np.maximum(w.lemma[event], 0))
        clicks = click_columns(copy, copies, names, nav_name, nav_site >= 0, rng)
        rows = pl.DataFrame({"AnonID": user_id, "Query": query, "QueryTime": ts.dt.strftime(AOL_TIME_FORMAT)})
        rows = pl.concat([rows, clicks, gold], how="horizontal")
    else:
        rows = pl.concat([_diffusiondb_columns(user_id, query, ts, rng), gold], how="horizontal")
    missions = int(np.count_nonzero(np.bincount(s.mission[event], minlength=s.n_missions)))
    sessions = int(np.count_nonzero(s.session_start[event] & (copy == 0)))
    first, days = cfg.window
    late = s.ts >= first.timestamp() + days * 86400  # `min_break_s` between bursts outlasts the window
    return Chunk(rows, users=len(budget), sessions=sessions, missions=missions,
                 late_users=len(np.unique(s.user[late])), last_ts=float(s.ts.max(initial=0.0)))  # fmt: skip


def _user_names(user_id: np.ndarray) -> pl.Series:
    users, inverse = np.unique(user_id, return_inverse=True)
    return user_hash(users).gather(inverse)


def _diffusiondb_columns(
    user_id: np.ndarray, prompt: pl.Series, ts: pl.Series, rng: np.random.Generator
) -> pl.DataFrame:
    """The columns of DiffusionDB's metadata.parquet; times to the minute, as there."""
    n = len(user_id)
    user_name = _user_names(user_id)
    image_id = pl.Series(rng.integers(0, 1 << 40, n)).cast(pl.String)
    return pl.DataFrame(
        {
            "image_name": user_name.str.slice(0, 8) + "-" + image_id + ".png",
            "prompt": prompt,
            "part_id": np.ones(n, dtype=np.uint16),
            "seed": rng.integers(0, 1 << 32, n, dtype=np.uint32),
            "step": np.full(n, 50, dtype=np.uint16),
            "cfg": np.full(n, 7.0, dtype=np.float32),
            "sampler": np.full(n, 8, dtype=np.uint8),  # k_lms in DiffusionDB's coding
            "width": np.full(n, 512, dtype=np.uint16),
            "height": np.full(n, 512, dtype=np.uint16),
            "user_name": user_name,
            "timestamp": ts.dt.truncate("1m").dt.replace_time_zone("UTC"),
            "image_nsfw": (rng.random(n) * 0.2).astype(np.float32),
            "prompt_nsfw": (rng.random(n) * 0.1).astype(np.float32),
        }
    )
