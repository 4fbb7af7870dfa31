"""How each query of a session reformulates the one before it, read from specificity.

A hierarchy model gives every text a specificity (its distance from the origin:
general texts near 0). Of two consecutive queries of a session, the later one is a

- `repeat`: the same text once normalised (case, punctuation and stop words aside);
- `specialisation`: more specific by more than `threshold`;
- `generalisation`: less specific by more than `threshold`;
- `lateral`: otherwise: another text at about the same depth.

A session's first query has none (null). Any specificity works: the hierarchy
model's norm, or a baseline such as the number of terms (`term_count`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from sessions.lexicon import encode
from sessions.text import normalize

REFORMULATIONS = ("specialisation", "generalisation", "lateral", "repeat")
# half the norm gap per level that `sessionflow train hierarchy` asks for (margin 0.5)
DEFAULT_THRESHOLD = 0.25
# the gold labels of `sessionflow synth` that the types above are judged on
JUDGED = ("specialisation", "generalisation", "lateral")

Specificity = Callable[[pl.Series], np.ndarray]  # texts -> one float per text


def reformulation(session_id: pl.Expr, query: pl.Expr, specificity: pl.Expr, threshold: float) -> pl.Expr:
    """The reformulation type of each row over rows in session order (see the module)."""
    key = normalize(query)
    delta = specificity - specificity.shift(1)
    return (
        pl.when((session_id != session_id.shift(1)).fill_null(True))
        .then(pl.lit(None, dtype=pl.String))
        .when(key == key.shift(1))
        .then(pl.lit("repeat"))
        .when(delta > threshold)
        .then(pl.lit("specialisation"))
        .when(delta < -threshold)
        .then(pl.lit("generalisation"))
        .otherwise(pl.lit("lateral"))
    )


def per_distinct(texts: pl.Series, values: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """`values` of every text, computed once per distinct text: logs repeat most queries."""
    codes, distinct = encode(texts)
    return np.asarray(values(distinct.to_list()), dtype=np.float64)[codes]


def term_count(texts: pl.Series) -> np.ndarray:
    """The baseline specificity: the number of normalised terms (longer = more specific)."""
    frame = pl.DataFrame({"q": texts})
    return frame.select(normalize(pl.col("q")).str.count_matches(r"\S+"))["q"].to_numpy().astype(np.float64)


def annotate(sessions: pl.DataFrame, specificity: Specificity, threshold: float) -> pl.DataFrame:
    """`sessions` (rows in user and time order, with `session_id` and `query`) plus
    `specificity` (float64) and `reformulation` (one of REFORMULATIONS, or null)."""
    return sessions.with_columns(specificity=pl.Series(specificity(sessions["query"]), dtype=pl.Float64)).with_columns(
        reformulation=reformulation(pl.col("session_id"), pl.col("query"), pl.col("specificity"), threshold)
    )


def accuracy(annotated: pl.DataFrame, gold: str = "gold_reformulation") -> dict:
    """How `reformulation` agrees with `gold` on the rows whose gold type is one of JUDGED:
    accuracy, recall of each type, and the confusion counts (gold -> predicted) of every
    gold type (repeats, typos, added terms... included, for reading)."""
    judged = annotated.filter(pl.col(gold).is_in(JUDGED))
    hits = judged.filter(pl.col(gold) == pl.col("reformulation"))
    recall = {
        t: round(hits.filter(pl.col(gold) == t).height / max(judged.filter(pl.col(gold) == t).height, 1), 4)
        for t in JUDGED
    }
    confusion = (
        annotated.filter(pl.col(gold).is_not_null() & pl.col("reformulation").is_not_null())
        .group_by(gold, "reformulation")
        .len()
        .sort(gold, "reformulation")
    )
    counts: dict[str, dict[str, int]] = {}
    for g, p, n in confusion.iter_rows():
        counts.setdefault(g, {})[p] = n
    return {"pairs": judged.height, "accuracy": round(hits.height / max(judged.height, 1), 4),
            "recall": recall, "confusion": counts}  # fmt: skip


def best_threshold(annotated: pl.DataFrame, grid: np.ndarray, gold: str = "gold_reformulation") -> float:
    """The threshold of `grid` with the highest accuracy on `annotated` (which has
    `specificity`): the same rows re-labelled at each threshold."""
    scores = [
        accuracy(
            annotated.with_columns(
                reformulation=reformulation(pl.col("session_id"), pl.col("query"), pl.col("specificity"), float(t))
            ),
            gold,
        )["accuracy"]
        for t in grid
    ]
    return float(grid[int(np.argmax(scores))])


__all__ = [
    "DEFAULT_THRESHOLD", "JUDGED", "REFORMULATIONS", "Specificity", "accuracy", "annotate", "best_threshold",
    "per_distinct", "reformulation", "term_count",
]  # fmt: skip
