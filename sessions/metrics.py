"""How well a segmentation matches the ground truth.

Pair counting, per user (Gayo-Avello 2009; Hagen et al. 2013): over all pairs of a
user's queries, a pair is positive when both queries are in the same gold group
(session or mission); precision, recall and F1 of the predicted same-group pairs,
the Rand index (agreement over all pairs) and the adjusted Rand index (Hubert &
Arabie 1985, over the same within-user pairs). Computed from group sizes with
C(n, 2) sums, never by listing pairs, so it scales to whole logs.

Boundary scores (Gomes et al. 2019): over consecutive queries of a user (ordered
by time, then row id), a pair is positive when a new group starts; precision,
recall and F1 of the predicted starts, and the accuracy of the same-or-break
decision over adjacent pairs (Sun et al. 2018).

Rows are scored as the log gives them (a query with several clicks counts once per
click row), like the published figures on these data sets.
"""

from __future__ import annotations

import polars as pl

SCORE_KEYS = (
    "precision", "recall", "f1", "rand", "ari",
    "boundary_precision", "boundary_recall", "boundary_f1", "adjacent_accuracy",
)  # fmt: skip


def _pairs(n: pl.Expr) -> pl.Expr:
    n = n.cast(pl.Int64)  # group sizes come as u32: n * (n - 1) overflows past 65,536 rows
    return (n * (n - 1) // 2).sum()


def _prf(tp: float, predicted: float, actual: float) -> tuple[float, float, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def require_something_to_score(gold: pl.DataFrame) -> None:
    """ValueError in one line unless `has_something_to_score(gold)`: pair counting,
    boundaries and adjacent pairs have nothing to count otherwise, and every score would
    be 1.0 (the convention for nothing to count), whatever a system did."""
    if not has_something_to_score(gold):
        raise ValueError("nothing to score: no user has two labelled queries")


def pair_counting(frame: pl.LazyFrame | pl.DataFrame, pred: str, gold: str, user: str = "user_id") -> dict[str, float]:
    """Pair-counting precision, recall, F1 and Rand index of `pred` against `gold`.

    Over pairs of one user's rows only (Gayo-Avello 2009; Hagen et al. 2013). Keys:
    precision, recall, f1, rand, ari (Hubert & Arabie 1985); 1.0 where nothing is
    counted (f1 0.0 when precision and recall are). Rows with a null `gold` count as one
    group: filter them first (`segmentation_scores` does).
    """
    lf = frame.lazy()
    counts = pl.concat(
        [
            lf.group_by(user).len().select(_pairs(pl.col("len")).alias("v"), pl.lit("all").alias("k")),
            lf.group_by(user, pred).len().select(_pairs(pl.col("len")).alias("v"), pl.lit("pred").alias("k")),
            lf.group_by(user, gold).len().select(_pairs(pl.col("len")).alias("v"), pl.lit("gold").alias("k")),
            lf.group_by(user, pred, gold).len().select(_pairs(pl.col("len")).alias("v"), pl.lit("both").alias("k")),
        ]
    ).collect()
    c = dict(zip(counts["k"], counts["v"].fill_null(0).cast(pl.Float64), strict=True))
    precision, recall, f1 = _prf(c["both"], c["pred"], c["gold"])
    agree = c["all"] - c["pred"] - c["gold"] + 2 * c["both"]
    # Adjusted Rand index (Hubert & Arabie 1985) over the same within-user pairs: the
    # agreement above what groupings of these sizes give by chance.
    expected = c["pred"] * c["gold"] / c["all"] if c["all"] else 0.0
    best = (c["pred"] + c["gold"]) / 2
    ari = (c["both"] - expected) / (best - expected) if best != expected else 1.0
    rand = agree / c["all"] if c["all"] else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "rand": rand, "ari": ari}


def boundary_scores(
    frame: pl.LazyFrame | pl.DataFrame,
    pred: str,
    gold: str,
    user: str = "user_id",
    order: tuple[str, ...] = ("ts", "row_id"),
) -> dict[str, float]:
    """Precision, recall and F1 of predicted group starts over consecutive pairs, and
    `adjacent_accuracy`: the share of consecutive pairs decided as the gold does.

    After Gomes et al. 2019 (boundaries) and Sun et al. 2018 (adjacent accuracy); each
    user's first row is not scored; 1.0 where nothing is counted (f1 0.0 when precision
    and recall are). Keys: boundary_precision, boundary_recall, boundary_f1,
    adjacent_accuracy."""
    starts = (
        frame.lazy()
        .sort(user, *order)
        .select(
            pred=(pl.col(pred) != pl.col(pred).shift()).over(user),
            gold=(pl.col(gold) != pl.col(gold).shift()).over(user),
        )
        .drop_nulls()  # each user's first query starts a group by definition: not scored
        .select(
            tp=(pl.col("pred") & pl.col("gold")).sum(),
            predicted=pl.col("pred").sum(),
            actual=pl.col("gold").sum(),
            agree=(pl.col("pred") == pl.col("gold")).sum(),
            pairs=pl.len(),
        )
        .collect()
        .row(0, named=True)
    )
    precision, recall, f1 = _prf(starts["tp"], starts["predicted"], starts["actual"])
    accuracy = starts["agree"] / starts["pairs"] if starts["pairs"] else 1.0
    return {
        "boundary_precision": precision,
        "boundary_recall": recall,
        "boundary_f1": f1,
        "adjacent_accuracy": accuracy,
    }


def segmentation_scores(
    frame: pl.LazyFrame | pl.DataFrame, pred: str, gold: str, user: str = "user_id"
) -> dict[str, float]:
    """All of `SCORE_KEYS` for one predicted grouping against one gold grouping."""
    lf = frame.lazy().filter(pl.col(gold).is_not_null())
    return {**pair_counting(lf, pred, gold, user), **boundary_scores(lf, pred, gold, user)}


BASELINE_GAP_MINUTES = (5, 15, 26, 30, 60)
GOLD_LEVELS = (("gold_session", "sessions"), ("gold_mission", "missions"))


def gold_levels(events: pl.DataFrame) -> list[tuple[str, str]]:
    """The (column, level) of `GOLD_LEVELS` that `events` carry a value of."""
    present = [(col, name) for col, name in GOLD_LEVELS if col in events.columns]
    return [(col, name) for col, name in present if events[col].null_count() < events.height]


def compare(gold: pl.DataFrame, systems: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Scores of each system's sessions and missions against every gold grouping in
    `gold` (`row_id`, `user_id`, `ts`, `gold_session` and/or `gold_mission`).

    A system is a frame with `row_id`, `session_id` and optionally `mission_id`; one
    without missions (a sequential baseline) is scored at the session level only. It
    may hold rows beyond `gold`'s, never fewer: ValueError in one line when a row of
    `gold` is not in it (scores join on `row_id`, so a system that lost rows would be
    scored on those it kept).
    Returns one row per (system, predicted level, gold level) with `SCORE_KEYS`.
    """
    golds = gold_levels(gold)
    rows = []
    for system, pred in systems.items():
        lost = gold.select("row_id").join(pred.select("row_id"), on="row_id", how="anti")
        if lost.height:
            raise ValueError(f"system {system} has no row for {lost.height:,} of the {gold.height:,} gold rows (the "
                             f"first: row_id {lost['row_id'][0]}): a system is scored on every row")  # fmt: skip
        levels = [("sessions", "session_id"), ("missions", "mission_id")][: 1 + ("mission_id" in pred.columns)]
        joined = gold.join(pred.select("row_id", *(col for _, col in levels)), on="row_id")
        for gold_col, gold_name in golds:
            for level, col in levels:
                rows.append(
                    {"system": system, "level": level, "gold": gold_name, **segmentation_scores(joined, col, gold_col)}
                )
    return pl.DataFrame(rows)


# Users by the length of their history in the gold log (queries): heavy users (bots,
# thousands of queries) are where linking can chain unrelated needs together.
USER_SIZE_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 50), (51, 200), (201, None))


def user_size_label(low: int, high: int | None) -> str:
    """The label of a `USER_SIZE_BUCKETS` bucket: "1-50 queries", or "over 200 queries" without `high`."""
    return f"{low:,}-{high:,} queries" if high is not None else f"over {low - 1:,} queries"


def scored_users(gold: pl.DataFrame, label: str) -> pl.Series:
    """The users with at least two rows labelled in column `label`: the only users
    whose pairs, boundaries and adjacent pairs a score counts."""
    counts = gold.filter(pl.col(label).is_not_null()).group_by("user_id").len()
    return counts.filter(pl.col("len") > 1)["user_id"]


def grouped_users(gold: pl.DataFrame, label: str) -> pl.Series:
    """The users with two rows of one group in column `label`: those whose gold holds a
    pair of one session (mission), the pairs whose recall pair counting measures."""
    labelled = gold.filter(pl.col(label).is_not_null())
    return labelled.group_by("user_id", label).len().filter(pl.col("len") > 1)["user_id"].unique()


def has_something_to_score(gold: pl.DataFrame) -> bool:
    """Whether some user has two queries labelled at one of `gold`'s levels (`scored_users`)."""
    return any(scored_users(gold, column).len() for column, _ in gold_levels(gold))


def compare_by_user_size(gold: pl.DataFrame, systems: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """`compare`'s rows for the users of each `USER_SIZE_BUCKETS` bucket (queries per user
    in `gold`), with `users` (the bucket's label), `n_users` and `rows`; buckets without
    a user with two labelled queries are left out (they have nothing to count, and
    would score 1.0 whatever a system did). Pair counting is per user, so the
    buckets' pairs add up to the whole log's."""
    size = gold.group_by("user_id").len()
    frames = []
    for low, high in USER_SIZE_BUCKETS:
        in_bucket = size.filter((pl.col("len") >= low) & (pl.col("len") <= (high or pl.col("len").max())))
        part = gold.join(in_bucket.select("user_id"), on="user_id", how="semi")
        if not has_something_to_score(part):
            continue
        scores = compare(part, systems).with_columns(
            users=pl.lit(user_size_label(low, high)), n_users=pl.lit(in_bucket.height), rows=pl.lit(part.height)
        )
        frames.append(scores)
    return pl.concat(frames) if frames else pl.DataFrame()
