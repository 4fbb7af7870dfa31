"""A segmentation's errors on adjacent queries, by kind.

Pair counting (`sessions.metrics`) says how much a segmentation loses; this says
where. Each pair of a user's consecutive queries (ordered by time, then row id) that a
system decides against the gold is one error: a *false break* (the gold keeps the two
together, the system starts a new group between them) or a *false join* (the other way
round). Errors are told apart by the cascade's own evidence (`SegmentConfig`'s gap
bounds and lexical closeness, `sessions.lexicon`), the same way for every system, so
that systems can be compared kind by kind. The kinds are those seen on held-out users
(issue 17):

False breaks
- `repeat across a long gap`: a gap over `break_after_minutes`, the two queries
  lexically close (the same query, a near-identical one, or the topic resumed hours
  later);
- `new words across a long gap`: a gap over `break_after_minutes`, not close;
- `interruption`: a shorter gap, not close, but the topic resumes around one query
  (the query before the pair's first is close to its second, or the query after its
  second is close to its first: the weather checked, then back to the topic);
- `same topic, no shared word`: a shorter gap, not close, no interruption (a person
  then his associates by name; a product, then a rival): what only a model of meaning
  can join;
- `lexically close`: a shorter gap, close, broken all the same (by a system that does
  not read the text, or by a model's threshold).

False joins
- `same time stamp`: a gap of at most `join_within_s`;
- `lexically close`: a change of task that shares words with what came before;
- `neither`: joined on other grounds (a time gap, a model).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sessions.lexicon import Lexicon
from sessions.segment import SegmentConfig

FALSE_BREAKS = (
    "repeat across a long gap",
    "new words across a long gap",
    "interruption",
    "same topic, no shared word",
    "lexically close",
)
FALSE_JOINS = ("same time stamp", "lexically close", "neither")
ERROR_KINDS = (*(f"false break: {k}" for k in FALSE_BREAKS), *(f"false join: {k}" for k in FALSE_JOINS))


def adjacent_errors(frame: pl.DataFrame, pred: str, gold: str, cfg: SegmentConfig | None = None) -> dict[str, int]:
    """Errors of the grouping `pred` against `gold` on adjacent queries, by kind.

    `frame`: one row per query with `row_id`, `user_id`, `ts`, `query` and the columns
    `pred` and `gold` (group ids; rows without a gold group are left out, and their
    neighbours are then adjacent). `cfg`: the gap bounds and lexical closeness that tell
    the kinds apart (the shipped cascade's when None). Returns `pairs` (adjacent pairs of
    one user), `false breaks`, `false joins`, and one count per `ERROR_KINDS` entry, the
    kinds of each adding up to its total. ValueError when a column is missing.
    """
    cfg = cfg or SegmentConfig()
    missing = {"row_id", "user_id", "ts", "query", pred, gold} - set(frame.columns)
    if missing:
        raise ValueError(f"adjacent_errors: no column {', '.join(sorted(missing))}")
    df = frame.filter(pl.col(gold).is_not_null()).sort("user_id", "ts", "row_id")
    user = df["user_id"]
    same_user = (user == user.shift(1)).fill_null(False).to_numpy()
    gold_same = same_user & (df[gold] == df[gold].shift(1)).fill_null(False).to_numpy()
    pred_same = same_user & (df[pred] == df[pred].shift(1)).fill_null(False).to_numpy()
    gap = df["ts"].diff().dt.total_seconds(fractional=True).fill_null(0.0).to_numpy()

    lexicon = Lexicon(df["query"])
    ids = lexicon.text_id
    n = df.height
    close = np.zeros(n, dtype=bool)  # row i with row i - 1
    skip = np.zeros(n, dtype=bool)  # row i with row i - 2, all three of one user
    if n > 1:
        close[1:] = lexicon.close(ids[:-1], ids[1:], cfg.closeness)
    if n > 2:
        skip[2:] = lexicon.close(ids[:-2], ids[2:], cfg.closeness) & same_user[1:-1] & same_user[2:]
    resumes_after = np.zeros(n, dtype=bool)
    resumes_after[1:-1] = skip[2:]  # the pair (i - 1, i): row i + 1 close to row i - 1
    interrupted = skip | resumes_after  # or row i - 2 close to row i

    long_gap = gap > cfg.break_after_minutes * 60
    false_break = gold_same & ~pred_same
    false_join = same_user & ~gold_same & pred_same
    breaks = {
        "repeat across a long gap": long_gap & close,
        "new words across a long gap": long_gap & ~close,
        "interruption": ~long_gap & ~close & interrupted,
        "same topic, no shared word": ~long_gap & ~close & ~interrupted,
        "lexically close": ~long_gap & close,
    }
    same_stamp = gap <= cfg.join_within_s
    joins = {
        "same time stamp": same_stamp,
        "lexically close": ~same_stamp & close,
        "neither": ~same_stamp & ~close,
    }
    counts = {"pairs": int(same_user.sum()), "false breaks": int(false_break.sum()),
              "false joins": int(false_join.sum())}  # fmt: skip
    counts |= {f"false break: {k}": int((false_break & m).sum()) for k, m in breaks.items()}
    counts |= {f"false join: {k}": int((false_join & m).sum()) for k, m in joins.items()}
    return counts
