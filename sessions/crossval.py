"""User-level nested cross-validation of segmentation settings.

A setting chosen on the users it is then scored on looks better than it is (the
cascade's development F1 0.897 became 0.808 on users held back). Here users, never
queries, are split: `user_folds` deals them into k outer folds, stratified by the
length of their history so that every fold gets its share of heavy users. For each
outer fold, every candidate is scored by an inner cross-validation over the other
folds' users alone; the best there is fitted on all of those users and scored on the
outer fold, which took no part in the choice (Varma & Simon 2006; Cawley & Talbot
2010). The outer folds' scores, as mean and standard deviation, are the estimate to
publish; every user's groups come from a choice made without that user
(`CVResult.out_of_fold`), so they can also be scored by user size.

A candidate is a `Method`: given the labelled events of its training users it
returns a `Segmenter`, which groups any events. Rules ignore their training users
(`RuleMethod`, whose groupings are computed once for all users: users are
independent); a learned segmenter fits on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from sessions.metrics import GOLD_LEVELS, SCORE_KEYS, compare, compare_by_user_size, grouped_users, scored_users

# groups events: (row_id, user_id, ts, query, ...) -> (row_id, session_id[, mission_id])
Segmenter = Callable[[pl.DataFrame], pl.DataFrame]


class Method:
    """A candidate of the cross-validation: `fit(train)` (labelled events of the
    training users) -> a `Segmenter`; `prepare(events)` sees every user's events,
    without labels, once before any fit."""

    def prepare(self, events: pl.DataFrame) -> None:
        """Work that needs no labels, done once for all users (by default none)."""

    def fit(self, train: pl.DataFrame) -> Segmenter:
        """A segmenter fitted on `train` (labelled events of the training users)."""
        raise NotImplementedError


@dataclass
class RuleMethod(Method):
    """A rule with fixed settings. Users are independent under every rule here, so its
    groups of all users are computed once (`prepare`) and looked up for any of them."""

    group: Segmenter
    _all: pl.DataFrame | None = field(default=None, repr=False)

    def prepare(self, events: pl.DataFrame) -> None:
        self._all = self.group(events.select("row_id", "user_id", "ts", "query"))

    def fit(self, train: pl.DataFrame) -> Segmenter:
        return self._lookup

    def _lookup(self, events: pl.DataFrame) -> pl.DataFrame:
        if self._all is None:
            return self.group(events)
        return self._all.join(events.select("row_id"), on="row_id", how="semi")


def user_folds(events: pl.DataFrame, k: int, seed: int = 0, label: str | None = None) -> pl.DataFrame:
    """`user_id`, `fold` (0 .. k-1) for every user of `events`: users sorted by their
    number of rows and dealt in blocks of k, each block shuffled (`seed`), so each fold
    holds about 1/k of the users of every history length. With `label` (a gold column),
    the users with something to score at it (`scored_users`) are dealt first, so that
    every fold holds one when k of them exist: a fold without a pair to count would
    score 1.0 by pair counting's convention, whatever a system did. ValueError when
    there are fewer users than folds."""
    scored = pl.col("user_id").is_in(scored_users(events, label).implode()) if label is not None else pl.lit(True)
    size = events.group_by("user_id").len().with_columns(scored=scored)
    size = size.sort(["scored", "len", "user_id"], descending=[True, True, False])
    n = size.height
    if n < k or k < 2:
        raise ValueError(f"{k}-fold cross-validation needs at least {max(k, 2)} users and k >= 2; got {n} users")
    rng = np.random.default_rng(seed)
    fold = np.concatenate([rng.permutation(k) for _ in range(math.ceil(n / k))])[:n]
    return size.select("user_id").with_columns(fold=pl.Series(fold, dtype=pl.Int32))


@dataclass(frozen=True)
class CVResult:
    """What `nested_cv` found.

    - `folds`: one row per outer fold: `fold`, `chosen` (the candidate its inner CV
      picked), `inner_score` (that candidate's inner mean of the selection metric),
      `users`, `rows`, then `compare`'s columns for each (level, gold) of the
      held-out users;
    - `out_of_fold`: every user's groups by the candidate chosen without them
      (`row_id`, `session_id`[, `mission_id`]);
    - `selection`: the (level, gold, metric) that chose.
    """

    folds: pl.DataFrame
    out_of_fold: pl.DataFrame
    selection: tuple[str, str, str]

    def summary(self) -> pl.DataFrame:
        """Mean and standard deviation over outer folds (ddof 1) of every score, per
        (level, gold): `<key>_mean`, `<key>_sd`."""
        keys = [k for k in SCORE_KEYS if k in self.folds.columns]
        return (
            self.folds.group_by("level", "gold", maintain_order=True)
            .agg(
                folds=pl.len(),
                **{f"{k}_mean": pl.col(k).mean() for k in keys},
                **{f"{k}_sd": pl.col(k).std() for k in keys},
            )
            .select("level", "gold", "folds", *[c for k in keys for c in (f"{k}_mean", f"{k}_sd")])
        )

    def by_user_size(self, gold: pl.DataFrame) -> pl.DataFrame:
        """`compare_by_user_size` of the out-of-fold groups: each user scored by a
        choice made without them."""
        return compare_by_user_size(gold, {"cv": self.out_of_fold}).drop("system")


def _score(gold: pl.DataFrame, grouped: pl.DataFrame, selection: tuple[str, str, str]) -> float:
    level, gold_name, metric = selection
    rows = compare(gold, {"x": grouped}).filter(level=level, gold=gold_name)
    if not rows.height:
        raise ValueError(f"nothing to select on: no {level} scored against gold {gold_name}")
    return float(rows[metric][0])


def too_few_users(gold: pl.DataFrame, selection: tuple[str, str, str], outer: int = 5, inner: int = 4) -> str | None:
    """Why `nested_cv` of `gold` with these folds cannot run, in one line (folds fewer
    than 2, or fewer users with two queries labelled at the `selection`'s gold level
    than the folds need, or fewer users with two queries in one gold group there,
    naming how many are needed), or None when it can.

    Without such pairs a fold has no pair of one group: pair counting scores 1.0 any
    system that splits every query there (P and R of nothing), 0.0 one that joins a
    pair, and the estimate is that artefact (a file of one query a session gave 0.800
    ± 0.447). The folds are dealt by `scored_users`, so with few such users a fold may
    still lack them: this refuses only the data that cannot give every fold one."""
    label = _label(gold, selection)
    users, grouped = scored_users(gold, label).len(), grouped_users(gold, label).len()

    def enough(n: int) -> bool:  # outer folds, and inner ones in what is left of each
        return n >= outer and n - math.ceil(n / outer) >= inner

    if outer >= 2 and inner >= 2 and enough(users) and enough(grouped):
        return None
    lo, hi = max(outer, 2), max(outer, 2) + 2 * max(inner, 2) + 2  # enough(hi) holds; enough grows with n
    while outer >= 2 and inner >= 2 and lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    folds = f"nested cross-validation with {outer} outer and {inner} inner folds (at least 2 each) needs at least {lo}"
    if users < lo or outer < 2 or inner < 2:
        return (f"{folds} users with two queries labelled at the {selection[1]} level; the data have {users} (among "
                f"{gold['user_id'].n_unique()} users)")  # fmt: skip
    level = selection[1].removesuffix("s")
    return (f"{folds} users with two queries in one gold {level}, the pairs pair counting scores; the data have "
            f"{grouped} (among {users} users with two labelled queries)")  # fmt: skip


def nested_cv(
    gold: pl.DataFrame,
    candidates: Mapping[str, Method],
    selection: tuple[str, str, str] = ("sessions", "sessions", "f1"),
    outer: int = 5,
    inner: int = 4,
    seed: int = 0,
) -> CVResult:
    """User-level nested cross-validation of `candidates` on labelled events `gold`
    (`row_id`, `user_id`, `ts`, `query`, `gold_session` and/or `gold_mission`).

    `selection` is the (predicted level, gold level, `SCORE_KEYS` key) the inner
    folds maximise (ties: the first candidate given). Outer and inner folds come from
    `user_folds` with `seed`, each fold given its share of the users with two queries
    labelled at the selection's gold level (`scored_users`). ValueError for too few such
    users for the folds (one line, naming how many are needed) or no candidate.
    """
    if not candidates:
        raise ValueError("no candidate to cross-validate")
    label = _label(gold, selection)
    if problem := too_few_users(gold, selection, outer, inner):
        raise ValueError(problem)
    folds = user_folds(gold, outer, seed, label)
    unlabelled = gold.select("row_id", "user_id", "ts", "query")
    for method in candidates.values():
        method.prepare(unlabelled)
    with_fold = gold.join(folds, on="user_id")
    rows, predicted = [], []
    for f in range(outer):
        train = with_fold.filter(pl.col("fold") != f).drop("fold")
        test = with_fold.filter(pl.col("fold") == f).drop("fold")
        chosen, inner_scores = choose(train, candidates, selection, inner, seed + 1 + f)
        grouped = candidates[chosen].fit(train)(test)
        predicted.append(grouped)
        for score in compare(test, {"x": grouped}).drop("system").iter_rows(named=True):
            rows.append({
                "fold": f, "chosen": chosen, "inner_score": inner_scores[chosen],
                "users": test["user_id"].n_unique(), "rows": test.height, **score,
            })  # fmt: skip
    return CVResult(pl.DataFrame(rows), pl.concat(predicted, how="diagonal_relaxed"), selection)


def choose(
    gold: pl.DataFrame,
    candidates: Mapping[str, Method],
    selection: tuple[str, str, str] = ("sessions", "sessions", "f1"),
    folds: int = 4,
    seed: int = 0,
) -> tuple[str, dict[str, float]]:
    """The candidate with the best mean `selection` score over `folds` user folds of
    `gold` (`user_folds` with `seed`; ties: the first given), and every candidate's
    mean score: the inner loop of `nested_cv`, and how a model fitted on all the
    users is chosen. Candidates must be prepared (`Method.prepare`) on `gold`'s events."""
    with_fold = gold.join(user_folds(gold, folds, seed, _label(gold, selection)), on="user_id")
    means = {}
    for name, method in candidates.items():
        scores = []
        for j in range(folds):
            fit_on = with_fold.filter(pl.col("fold") != j).drop("fold")
            held = with_fold.filter(pl.col("fold") == j).drop("fold")
            scores.append(_score(held, method.fit(fit_on)(held), selection))
        means[name] = float(np.mean(scores))
    return max(means, key=lambda name: means[name]), means


def _label(gold: pl.DataFrame, selection: tuple[str, str, str]) -> str:
    """The gold column `selection` scores against; ValueError when `gold` lacks it."""
    column = dict((name, col) for col, name in GOLD_LEVELS).get(selection[1])
    if column is None or column not in gold.columns:
        raise ValueError(f"nothing to select on: no gold {selection[1]} in the labelled events")
    return column


def chosen_counts(result: CVResult) -> dict[str, int]:
    """How many outer folds chose each candidate."""
    per_fold = result.folds.unique("fold", keep="first")
    counts = per_fold.group_by("chosen").len().sort(["len", "chosen"], descending=[True, False])
    return dict(counts.iter_rows())
