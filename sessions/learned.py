"""A supervised same-session classifier over consecutive queries.

Each consecutive pair (previous, current) of a user's queries, in (ts, row_id)
order, is described by `PAIR_FEATURES`: the gap, lexical similarities with the
previous query and with the user's last `BACK` queries (the session so far, without
depending on earlier decisions), repeats, the queries' lengths and the user's
activity; with a session model, also its similarity of the pair. A scikit-learn
classifier (gradient boosting by default: Friedman 2001, as
`HistGradientBoostingClassifier`) learns P(same session | pair) from gold sessions
or missions; a break is a pair below `threshold`. After Sun et al. (2018) and the
pair classifiers of Jones & Klinkner (2008), Hagen et al. (2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from sessions.crossval import Method, Segmenter
from sessions.lexicon import Lexicon
from sessions.missions import MissionConfig, link_missions
from sessions.seeds import check_seed
from sessions.segment import SESSION_COLUMNS, SegmentConfig, number_sessions, segment_ordered, user_time_order

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

BACK = 5  # how many earlier queries of the user make "the session so far"
PAIR_FEATURES: tuple[str, ...] = (
    "log_gap_s",  # log1p of the gap to the previous query, seconds
    "same_text",  # the same normalised query
    "term_overlap",  # |A ∩ B| / min(|A|, |B|) with the previous query
    "trigram_jaccard",  # character 3-gram Jaccard with the previous query
    "trigram_containment",  # share of the query's 3-grams in the previous query
    "best_jaccard_back",  # the best 3-gram Jaccard with the user's last BACK queries
    "best_containment_back",  # the best containment in one of them
    "repeat_back",  # the query is one of the last BACK queries again
    "log_gap_back",  # log1p of the gap to the query BACK before, seconds
    "terms",  # terms of the query
    "terms_previous",  # terms of the previous query
    "log_user_queries",  # log1p of the user's queries in the log
    "log_user_median_gap_s",  # log1p of the user's median gap, seconds
    "cascade_same",  # the shipped cascade puts the pair in one session
)
Model = Literal["gradient_boosting", "logistic"]


def pair_features(ordered: pl.DataFrame, lexicon: Lexicon | None = None) -> np.ndarray:
    """(n, len(PAIR_FEATURES)) float64 for rows in `user_time_order` (`user_id`, `ts`,
    `query`): row i describes the pair (i - 1, i); a user's first row is all NaN."""
    n = ordered.height
    lexicon = lexicon or Lexicon(ordered["query"])
    user = ordered["user_id"]
    first = (user != user.shift()).fill_null(True).to_numpy()
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))  # the user's first row
    ts = ordered["ts"].dt.epoch("us").to_numpy() / 1e6
    gap = np.zeros(n)
    gap[1:] = np.diff(ts)
    tid = lexicon.text_id
    out = np.full((n, len(PAIR_FEATURES)), np.nan)
    rows = np.flatnonzero(~first)
    if not len(rows):
        return out
    col = {name: k for k, name in enumerate(PAIR_FEATURES)}
    out[rows, col["log_gap_s"]] = np.log1p(np.maximum(gap[rows], 0))
    out[rows, col["same_text"]] = tid[rows] == tid[rows - 1]
    sim = lexicon.similarity(tid[rows], tid[rows - 1])
    out[rows, col["term_overlap"]], out[rows, col["trigram_jaccard"]] = sim[:, 0], sim[:, 1]
    out[rows, col["trigram_containment"]] = sim[:, 2]
    best_j, best_c, repeat = np.zeros(len(rows)), np.zeros(len(rows)), np.zeros(len(rows), dtype=bool)
    for back in range(1, BACK + 1):
        earlier = rows - back
        ok = np.flatnonzero(earlier >= start[rows])
        s = lexicon.similarity(tid[rows[ok]], tid[earlier[ok]])
        best_j[ok], best_c[ok] = np.maximum(best_j[ok], s[:, 1]), np.maximum(best_c[ok], s[:, 2])
        repeat[ok] |= tid[rows[ok]] == tid[earlier[ok]]
    out[rows, col["best_jaccard_back"]], out[rows, col["best_containment_back"]] = best_j, best_c
    out[rows, col["repeat_back"]] = repeat
    back_row = np.maximum(rows - BACK, start[rows])
    out[rows, col["log_gap_back"]] = np.log1p(np.maximum(ts[rows] - ts[back_row], 0))
    n_terms = lexicon.term_lists.list.len().to_numpy()[tid]
    out[rows, col["terms"]], out[rows, col["terms_previous"]] = n_terms[rows], n_terms[rows - 1]
    stats = (
        ordered.select(user=user, gap=pl.Series(np.where(first, np.nan, gap)).fill_nan(None))
        .group_by("user", maintain_order=True)
        .agg(queries=pl.len(), median_gap=pl.col("gap").median())
    )
    per_row = pl.DataFrame({"user": user}).join(stats, on="user", how="left", maintain_order="left")
    out[rows, col["log_user_queries"]] = np.log1p(per_row["queries"].to_numpy()[rows])
    out[rows, col["log_user_median_gap_s"]] = np.log1p(
        np.maximum(per_row["median_gap"].fill_null(0).to_numpy()[rows], 0)
    )
    cascade = segment_ordered(
        ordered.select("row_id", "user_id", "ts", "query"), SegmentConfig(method="cascade"), lexicon=lexicon
    )
    same = (cascade["session_id"] == cascade["session_id"].shift()).fill_null(False).to_numpy()
    out[rows, col["cascade_same"]] = same[rows]
    return out


@dataclass(frozen=True)
class LearnedConfig:
    """The classifier of `--method learned`."""

    model: Model = field(default="gradient_boosting", metadata={"help": "gradient_boosting or logistic"})
    threshold: float = field(default=0.5, metadata={"help": "a pair below this P(same session) breaks"})
    seed: int = field(default=0, metadata={"help": "the classifier's random seed"})

    def __post_init__(self) -> None:
        if self.model not in ("gradient_boosting", "logistic"):
            raise ValueError(f"unknown model {self.model!r}; choose gradient_boosting or logistic")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"--threshold must be in (0, 1), not {self.threshold}")
        check_seed(self.seed)


def make_classifier(cfg: LearnedConfig) -> Pipeline | HistGradientBoostingClassifier:
    """The scikit-learn estimator of `cfg` (unfitted)."""
    if cfg.model == "logistic":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0,
        random_state=cfg.seed,
    )  # fmt: skip


def same_labels(ordered: pl.DataFrame, gold: str) -> np.ndarray:
    """1 where row i is in the same gold group as row i - 1 (same user), else 0; -1
    on a user's first row and where either gold value is missing."""
    g = ordered[gold]
    same_user = (ordered["user_id"] == ordered["user_id"].shift()).fill_null(False).to_numpy()
    known = (g.is_not_null() & g.shift().is_not_null()).fill_null(False).to_numpy()
    same = (g == g.shift()).fill_null(False).to_numpy()
    return np.where(same_user & known, same.astype(np.int8), -1)


def labelled_pairs(gold: pl.DataFrame, column: str) -> tuple[int, int]:
    """(same group, break): the pairs of consecutive queries of one user (in
    `user_time_order`) that both carry a label in `column`, by kind: what a learned
    segmenter learns from."""
    labels = same_labels(user_time_order(gold.select("row_id", "user_id", "ts", column)), column)
    return int((labels == 1).sum()), int((labels == 0).sum())


NO_PAIRS = "no two consecutive queries of one user are both labelled: a learned segmenter has no pair to learn from"


def nothing_to_learn(same: int, breaks: int, level: str) -> str | None:
    """Why a learned segmenter has nothing to learn from a file whose labelled consecutive
    pairs (`labelled_pairs`) are `same` and `breaks` at `level` (sessions or missions), or
    None when it has something: no such pair (`NO_PAIRS`), or pairs of one kind only,
    which a classifier fitted on them answers for every pair (`SameSessionClassifier.fit`)."""
    if not same + breaks:
        return NO_PAIRS
    if not same or not breaks:
        return (f"every pair of consecutive queries both labelled is of one kind (all one {level[:-1]}, or all "
                "breaks; a row without a label leaves out both its pairs): nothing to learn")  # fmt: skip
    return None


@dataclass
class SameSessionClassifier:
    """A fitted classifier of consecutive pairs: `p_same(ordered)` and `breaks(ordered)`."""

    estimator: object | None  # None: the training pairs held one class, `constant`
    cfg: LearnedConfig
    constant: float = 0.0
    features: Sequence[str] = PAIR_FEATURES

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, cfg: LearnedConfig) -> SameSessionClassifier:
        """Fit on the rows whose label is 0 or 1 (`same_labels`). Training pairs of one
        class leave nothing to learn: the classifier then answers that class (P = 1 or
        0) for every pair; no pair at all (a fold whose users have no two consecutive
        queries both labelled), a break. Callers that fit on a whole file refuse such a
        file first (`labelled_pairs`). Fitting, and `p_same`, run on one OpenMP thread:
        the data are small, and OpenMP threads of a busy machine made a 0.3 s fit take
        minutes. OpenMP's limit is the calling thread's own, so threads that segment
        side by side leave each other's alone; a limit on every library (BLAS too) is
        the process's, and threads that set and restored it at overlapping times left
        numpy's BLAS on one thread for good."""
        use = labels >= 0
        classes = np.unique(labels[use])
        if len(classes) < 2:
            return cls(None, cfg, constant=float(classes[0]) if len(classes) else 0.0)
        estimator = make_classifier(cfg)
        with threadpool_limits(1, user_api="openmp"):
            estimator.fit(features[use], labels[use])
        return cls(estimator, cfg)

    def p_same(self, features: np.ndarray) -> np.ndarray:
        """P(same session) of each row's pair (NaN features: a user's first row -> 0)."""
        p = np.zeros(len(features))
        rows = np.flatnonzero(~np.isnan(features).all(axis=1))
        if len(rows) and self.estimator is None:
            p[rows] = self.constant
        elif len(rows):
            with threadpool_limits(1, user_api="openmp"):
                p[rows] = self.estimator.predict_proba(features[rows])[:, 1]
        return p

    def breaks(self, features: np.ndarray) -> np.ndarray:
        """True where a session starts (every user's first row included)."""
        return self.p_same(features) < self.cfg.threshold

    def session_breaks(self, ordered: pl.DataFrame, lexicon: Lexicon | None = None) -> np.ndarray:
        """(n,) bool, True where a session starts, for rows in `user_time_order`
        (`row_id`, `user_id`, `ts`, `query`; every user's first row True): the
        classifier on `pair_features` (`sessions.segment.SessionClassifier`).
        ValueError when the classifier was fitted on other features."""
        if tuple(self.features) != PAIR_FEATURES:
            raise ValueError(
                f"the classifier was fitted on features {list(self.features)}; this version computes "
                f"{list(PAIR_FEATURES)}: train it again (sessionflow train segmenter)"
            )
        return self.breaks(pair_features(ordered, lexicon))


class LearnedMethod(Method):
    """`SameSessionClassifier` as a candidate of `sessions.crossval.nested_cv`: features
    of every user's pairs computed once (`prepare`), the classifier fitted on the
    training users' `gold` column (consecutive queries in one gold session, or in one
    gold mission), missions linked by the rule (`sessions.missions.link_missions`) on its sessions."""

    def __init__(
        self,
        cfg: LearnedConfig,
        missions: MissionConfig | None = None,
        gold: str = "gold_session",
    ) -> None:
        self.cfg, self.missions, self.gold = cfg, missions or MissionConfig(), gold
        self._ordered: pl.DataFrame | None = None
        self._features: np.ndarray | None = None

    def prepare(self, events: pl.DataFrame) -> None:
        self._ordered = user_time_order(events).with_columns(_i=pl.int_range(pl.len()))
        self._features = pair_features(self._ordered)

    def _rows(self, events: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
        if self._ordered is None or self._features is None:
            self.prepare(events)
        assert self._ordered is not None and self._features is not None
        part = self._ordered.join(events.select("row_id"), on="row_id", how="semi")
        return part, self._features[part["_i"].to_numpy()]

    def classifier(self, train: pl.DataFrame) -> SameSessionClassifier:
        """The classifier fitted on the consecutive pairs of `train`'s users (labelled events)."""
        part, features = self._rows(train)
        part = part.join(train.select("row_id", self.gold), on="row_id", how="left", maintain_order="left")
        return SameSessionClassifier.fit(features, same_labels(part, self.gold), self.cfg)

    def fit(self, train: pl.DataFrame) -> Segmenter:
        classifier = self.classifier(train)

        def segmenter(events: pl.DataFrame) -> pl.DataFrame:
            rows, x = self._rows(events)
            first = (rows["user_id"] != rows["user_id"].shift()).fill_null(True)
            sessions = number_sessions(
                rows.with_columns(first=first, _break=pl.Series(classifier.breaks(x)) | first)
            ).select(SESSION_COLUMNS)
            return link_missions(sessions, self.missions).select("row_id", "session_id", "mission_id")

        return segmenter
