"""Descriptive statistics of a log: how many queries users issue, how long sessions
are, how far apart queries come, how long queries are.

Used to compare synthetic logs with real ones. Click rows (the same user, query and
time repeated, one per click) are folded into one query first, as analyses of the
AOL log usually do.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
SESSION_GAP_S = 30 * 60


def fold_click_rows(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (user, query, time): the AOL log repeats a query once per click."""
    return events.unique(["user_id", "query", "ts"], keep="first", maintain_order=True)


def with_gaps(queries: pl.LazyFrame) -> pl.LazyFrame:
    """Adds `gap_s`, the seconds since the same user's previous query (null for the first)."""
    return queries.sort("user_id", "ts", "row_id").with_columns(
        gap_s=pl.col("ts").diff().over("user_id").dt.total_seconds()
    )


def _quantiles(expr: pl.Expr, qs: Sequence[float]) -> list[pl.Expr]:
    return [expr.quantile(q).alias(f"q{round(q * 100)}") for q in qs]


def log_stats(events: pl.LazyFrame | pl.DataFrame, qs: Sequence[float] = QUANTILES) -> dict[str, dict[str, float]]:
    """Distribution summaries of a canonical event table.

    Keys: `queries_per_user`, `session_length` (queries per session, sessions cut at
    gaps above 30 minutes), `gap_s`, `words_per_query`; each maps quantile names
    (`q50`) and `mean` to values, plus `totals` (rows, queries, users, rows_per_query).
    """
    lf = events.lazy()
    queries = with_gaps(fold_click_rows(lf)).with_columns(
        session=((pl.col("gap_s").is_null()) | (pl.col("gap_s") > SESSION_GAP_S)).cum_sum()
    )
    per_user = queries.group_by("user_id").len()
    sessions = queries.group_by("session").len()
    words = queries.select(pl.col("query").str.split(" ").list.len().alias("w"))

    def summary(frame: pl.LazyFrame, col: str) -> dict[str, float]:
        row = frame.select(*_quantiles(pl.col(col), qs), mean=pl.col(col).mean()).collect().row(0, named=True)
        return {k: round(float(v), 3) for k, v in row.items()}

    rows = lf.select(pl.len()).collect().item()
    n_queries = queries.select(pl.len()).collect().item()
    return {
        "totals": {
            "rows": rows,
            "queries": n_queries,
            "users": per_user.select(pl.len()).collect().item(),
            "rows_per_query": round(rows / max(n_queries, 1), 3),
            "gaps_over_30min": round(queries.select((pl.col("gap_s") > SESSION_GAP_S).mean()).collect().item(), 3),
        },
        "queries_per_user": summary(per_user, "len"),
        "session_length": summary(sessions, "len"),
        "gap_s": summary(queries.filter(pl.col("gap_s").is_not_null()), "gap_s"),
        "words_per_query": summary(words, "w"),
    }
