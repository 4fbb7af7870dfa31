"""How each query of a session reformulates the one before it: what changed among its
terms, and where a hierarchy model puts the changed terms.

Of two consecutive queries of a session, compared on their normalised terms (case,
punctuation and stop words aside), the later one is a

- `repeat`: the same terms (in any order), or, for queries without terms (stop words,
  symbols or emoji alone), the same text but for case and spacing, as segmentation
  tells one query from another (`sessions.text.query_keys`);
- `specialisation`: terms added and none removed (`cats` -> `persian cats`), or the
  terms put in place of the removed ones lie beneath them in the hierarchy;
- `generalisation`: terms removed and none added, or the new terms lie above the
  removed ones;
- `lateral`: the new terms lie neither beneath nor above the removed ones, or no term
  changed between two different queries without terms (`🍕` -> `🎉`).

The first two rules are the lexical reformulation types of the query-log literature
(adding terms narrows, removing broadens: Huang & Efthimiadis 2009, "Analyzing and
evaluating query reformulation strategies in web search logs"); only a replacement
asks the hierarchy model, and it is asked about the replaced terms alone: the words
a query keeps (`... pictures las vegas`) say nothing of the move and would dominate
the points of the whole queries.

"Beneath", from a model's points u (the removed terms) and v (the added ones), with
d the model's distance and ‖x‖ a point's distance from the origin (its specificity):
v is beneath u when ‖v‖ − ‖u‖ ≥ ratio · d(u, v), above when ‖u‖ − ‖v‖ ≥ ratio ·
d(u, v). The move away from the origin must be at least `ratio` of the whole move: a
child lies further out roughly along the way from its parent, a sibling sideways.
This is HiT's subsumption score s(v ⊑ u) = −(d(u, v) + λ(‖u‖ − ‖v‖)) ≥ 0 with
λ = 1/ratio (He et al. 2024, "Language Models as Hierarchy Encoders") at threshold 0,
which makes the test independent of the model's scale (a ball's radius or curvature,
a Euclidean model's units); by the triangle inequality |‖v‖ − ‖u‖| ≤ d(u, v), so a
ratio is in (0, 1] (above 1 every replacement would be lateral).

A session's first query has none (null). Any geometry works (`Geometry`): a hierarchy
model's (`workflows.tracking.hierarchy_model.HierarchyGeometry`), or the baseline
`TermCount` (more terms = more specific).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import polars as pl

from sessions.lexicon import encode
from sessions.text import NO_TERMS, normalize, per_text, query_keys, terms

REFORMULATIONS = ("specialisation", "generalisation", "lateral", "repeat")
# the share of a replacement's move that must lead away from (towards) the origin; the
# best of RATIO_GRID in user-level nested cross-validation (docs/hierarchy-model.md)
DEFAULT_RATIO = 0.1
RATIO_GRID = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7)
# the gold labels of `sessionflow synth` that the types above are judged on
JUDGED = ("specialisation", "generalisation", "lateral")


class Geometry(Protocol):
    """Where a model puts texts, as reformulation types use it."""

    def specificity(self, texts: pl.Series) -> np.ndarray:
        """(n,) float64: each text's distance from the origin (general texts small)."""
        ...

    def relate(self, earlier: pl.Series, later: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Of n pairs of texts: (n,) distances d(earlier, later), (n,) specificity of
        each earlier text, (n,) of each later one; float64."""
        ...


def per_distinct(texts: pl.Series, values: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """`values` of every text, computed once per distinct text: logs repeat most queries."""
    codes, distinct = encode(texts)
    return np.asarray(values(distinct.to_list()), dtype=np.float64)[codes]


class TermCount:
    """The baseline geometry: a text's specificity is its number of normalised terms,
    and two texts are as far apart as their counts (so a replacement by more terms is a
    specialisation, by fewer a generalisation, by as many lateral)."""

    def specificity(self, texts: pl.Series) -> np.ndarray:
        frame = pl.DataFrame({"q": texts})
        return frame.select(normalize(pl.col("q")).str.count_matches(r"\S+"))["q"].to_numpy().astype(np.float64)

    def relate(self, earlier: pl.Series, later: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.specificity(earlier), self.specificity(later)
        return np.abs(b - a), a, b


def changed_terms(earlier: pl.Series, later: pl.Series) -> pl.DataFrame:
    """What changed from each earlier query to its later one, on their distinct
    normalised terms: `removed` (the earlier query's terms the later lacks) and `added`
    (the later query's terms the earlier lacks), each in order of first appearance,
    joined by single spaces ("" for none; a null query has no terms). (n,) earlier,
    (n,) later -> n rows in the same order. ValueError for series of other lengths."""
    if len(earlier) != len(later):
        raise ValueError(f"{len(earlier)} earlier queries for {len(later)} later ones")
    pairs = pl.DataFrame({"a": earlier, "b": later}, schema={"a": pl.String, "b": pl.String})
    pairs = pairs.select(
        pl.col(c).pipe(normalize).fill_null("").pipe(terms).list.unique(maintain_order=True).alias(c) for c in "ab"
    ).with_row_index("i")
    a, b = (pairs.select("i", term=c).explode("term").drop_nulls() for c in ("a", "b"))

    def lacking(these: pl.DataFrame, others: pl.DataFrame, name: str) -> pl.DataFrame:
        kept = these.join(others, on=["i", "term"], how="anti", maintain_order="left")
        return kept.group_by("i", maintain_order=True).agg(pl.col("term").str.join(" ").alias(name))

    out = pairs.select("i")
    for these, others, name in ((a, b, "removed"), (b, a, "added")):
        out = out.join(lacking(these, others, name), on="i", how="left", maintain_order="left")
    return out.select(pl.col("removed", "added").fill_null(""))


def check_ratio(ratio: float) -> None:
    """ValueError (one line) unless 0 < `ratio` ≤ 1: at 0 every move with any rise
    would be a specialisation, above 1 none would (|‖v‖ − ‖u‖| ≤ d(u, v))."""
    if not 0 < ratio <= 1:
        raise ValueError(f"--ratio must be in (0, 1] (a share of the distance, e.g. {DEFAULT_RATIO}), not {ratio}")


def direction(distance: np.ndarray, earlier: np.ndarray, later: np.ndarray, ratio: float) -> np.ndarray:
    """(n,) int8 of n pairs of points: 1 where the later lies beneath the earlier
    (‖later‖ − ‖earlier‖ ≥ ratio · distance, and > 0; see the module), −1 above, 0
    neither (also for two points at one norm).
    distance, earlier, later: (n,) the pairs' distances and norms. ValueError for a
    ratio outside (0, 1] (`check_ratio`)."""
    check_ratio(ratio)
    rise = np.asarray(later, np.float64) - np.asarray(earlier, np.float64)
    reach = ratio * np.asarray(distance, np.float64)
    return np.where((rise > 0) & (rise >= reach), 1, np.where((rise < 0) & (-rise >= reach), -1, 0)).astype(np.int8)


def session_starts(sessions: pl.DataFrame) -> pl.Series:
    """Whether each row of `sessions` (rows in session order) is the first of its session,
    (n,) bool: a session is its user's (`sessions.pairs.SESSION`), so that session ids
    numbered per user (`0, 1, ...`, as a sessions table of one's own may have them) start
    a new session at every new user (two users' session 0 were one session, and a user's
    first query was typed against the user before's last: the change breaker's find).
    Rows without `user_id` are told apart by `session_id` alone."""
    from sessions.pairs import SESSION, session_start

    keys = tuple(column for column in SESSION if column in sessions.columns)
    return sessions.select(session_start(keys).alias("first"))["first"]


def replacements(sessions: pl.DataFrame, geometry: Geometry) -> pl.DataFrame:
    """What the types of `sessions` (rows in session order, with `session_id` and
    `query`) are decided on, a row each: `first` (of its session), `same` (the same
    query as the row before, as segmentation tells it: `sessions.text.query_keys`),
    `removed`, `added` (`changed_terms` against the row before), and for a replacement
    (terms removed and added) the geometry's `distance`, `earlier` and `later` (norms)
    of the removed and the added terms, null elsewhere. Terms are compared once per
    distinct pair of consecutive queries that differ, and the geometry asked about
    each distinct replacement inside a session once."""
    codes, distinct = encode(sessions["query"].cast(pl.String).fill_null(""))
    key = query_keys(distinct, per_text(normalize, distinct)).gather(codes)
    first = session_starts(sessions)
    frame = pl.DataFrame({"first": first, "key": key, "before": key.shift(1)})
    pairs = frame.filter(~pl.col("first") & pl.col("key").ne_missing(pl.col("before")))
    pairs = pairs.select("before", "key").unique(maintain_order=True)
    pairs = pairs.with_columns(changed_terms(pairs["before"], pairs["key"]))
    asked = (
        pairs.filter((pl.col("removed") != "") & (pl.col("added") != ""))
        .select("removed", "added")
        .unique(maintain_order=True)
    )
    distance, earlier, later = geometry.relate(asked["removed"], asked["added"])
    asked = asked.with_columns(
        distance=pl.Series(distance, dtype=pl.Float64), earlier=pl.Series(earlier, dtype=pl.Float64),
        later=pl.Series(later, dtype=pl.Float64),
    )  # fmt: skip
    pairs = pairs.join(asked, on=["removed", "added"], how="left", maintain_order="left")
    frame = frame.join(pairs, on=["before", "key"], how="left", maintain_order="left", nulls_equal=True)
    frame = frame.with_columns(pl.col("removed", "added").fill_null(""))
    # the same terms (in any order), or the same text without terms; blank is no query's
    has_terms = pl.col("key").is_not_null() & ~pl.col("key").str.starts_with(NO_TERMS)
    unchanged = (pl.col("removed") == "") & (pl.col("added") == "")
    same = (
        ~pl.col("first")
        & pl.col("key").is_not_null()
        & (pl.col("key").eq_missing(pl.col("before")) | (unchanged & has_terms))
    )
    return frame.select("first", same.alias("same"), "removed", "added", "distance", "earlier", "later")


def types_of(replaced: pl.DataFrame, ratio: float = DEFAULT_RATIO) -> pl.Series:
    """The type of each row of `replacements`' frame (`REFORMULATIONS`, null for a
    session's first; see the module) at `ratio`. ValueError for a ratio outside (0, 1]."""
    asked = replaced["distance"].is_not_null().to_numpy()
    move = np.zeros(replaced.height, np.int8)
    move[asked] = direction(*(replaced[c].to_numpy()[asked] for c in ("distance", "earlier", "later")), ratio)
    typed = replaced.with_columns(move=pl.Series(move)).select(
        pl.when(pl.col("first"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("same"))
        .then(pl.lit("repeat"))
        .when((pl.col("removed") == "") & (pl.col("added") == ""))
        .then(pl.lit("lateral"))
        .when((pl.col("removed") == "") | (pl.col("move") == 1))
        .then(pl.lit("specialisation"))
        .when((pl.col("added") == "") | (pl.col("move") == -1))
        .then(pl.lit("generalisation"))
        .otherwise(pl.lit("lateral"))
        .alias("reformulation")
    )
    return typed["reformulation"]


def reformulation_types(sessions: pl.DataFrame, geometry: Geometry, ratio: float = DEFAULT_RATIO) -> pl.Series:
    """The type of each row (`REFORMULATIONS`, null for a session's first) of `sessions`
    (rows in session order, with `session_id` and `query`): see the module."""
    return types_of(replacements(sessions, geometry), ratio)


def annotate(sessions: pl.DataFrame, geometry: Geometry, ratio: float = DEFAULT_RATIO) -> pl.DataFrame:
    """`sessions` (rows in user and time order, with `session_id` and `query`) plus
    `specificity` (float64, each query's; null where the model cannot read the query,
    `models.encoder.unread_texts`, as `score` writes it) and `reformulation`
    (`reformulation_types`)."""
    return sessions.with_columns(
        specificity=pl.Series(geometry.specificity(sessions["query"]), dtype=pl.Float64).fill_nan(None),
        reformulation=reformulation_types(sessions, geometry, ratio),
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


def best_ratio(
    sessions: pl.DataFrame, geometry: Geometry, grid: tuple[float, ...] = RATIO_GRID, gold: str = "gold_reformulation"
) -> float:
    """The ratio of `grid` whose types agree best with `gold` on `sessions` (the first
    of equals)."""
    replaced = replacements(sessions, geometry)
    scores = [accuracy(sessions.with_columns(reformulation=types_of(replaced, r)), gold)["accuracy"] for r in grid]
    return float(grid[int(np.argmax(scores))])


__all__ = [
    "DEFAULT_RATIO", "JUDGED", "RATIO_GRID", "REFORMULATIONS", "Geometry", "TermCount", "accuracy", "annotate",
    "best_ratio", "changed_terms", "check_ratio", "direction", "per_distinct", "reformulation_types", "replacements",
    "types_of",
]  # fmt: skip
