"""`sessionflow evaluate crossval`: user-level nested cross-validation of the
segmentation methods on a ground-truth file (`sessions.crossval`).

Systems, each scored on outer folds of users:

- `time-gap 30 min`: the usual baseline (its sessions are its missions);
- `time gap, chosen from the grid`: the gap (`BASELINE_GAP_MINUTES`) chosen by the
  inner folds, the strongest time-gap baseline a procedure can claim;
- `lexical` (sessions), or on mission gold `time-gap 30 min + linking` and
  `lexical + linking`: the simpler rules, with the cascade's mission linking where
  missions are scored, so that what linking adds and what the cascade adds are apart;
- `cascade (shipped settings)`: the defaults, as they are (nothing chosen in the
  CV; but the defaults were chosen on the development users, so on those users this
  row is no unbiased estimate);
- `cascade, chosen from the grid`: the cascade's settings chosen per outer fold by
  the inner folds, those of sessions (`CASCADE_GRID`) on session gold, those of
  mission linking (`MISSION_GRID`, over the shipped sessions) on mission gold: the
  nested estimate of the procedure that chose the defaults, the figure to quote;
- `learned classifier`: the same-session classifier (`sessions.learned`), gradient
  boosting or logistic regression as the inner folds choose, fitted on the outer
  fold's training users.

The level scored is the file's gold (`--level` where a synthetic log has both):
sessions (Gayo-Avello) or missions (Webis-SMC-12, with the cascade's mission
linking; the time gap's sessions are its missions); selection maximises its pair F1.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from sessions.crossval import CVResult, Method, RuleMethod, chosen_counts, nested_cv
from sessions.error_kinds import adjacent_errors
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.learned import LearnedConfig, LearnedMethod, labelled_pairs, nothing_to_learn
from sessions.metrics import BASELINE_GAP_MINUTES, gold_levels
from sessions.missions import MissionConfig
from sessions.pipeline import embedder_of, sessions_with_missions
from sessions.seeds import check_seed
from sessions.segment import PairScorer, SegmentConfig, segment
from workflows.jobs import common
from workflows.jobs.evaluate_segmentation import GoldLog, read_gold

# The settings the defaults were chosen from (docs/segmentation.md): few knobs, few values.
CASCADE_GRID: dict[str, tuple] = {
    "join_within_s": (0.0, 60.0),
    "break_after_minutes": (90.0, 180.0, 360.0),
    "min_jaccard": (0.05, 0.1, 0.2),
}
MISSION_GRID: dict[str, tuple] = {"window": (3, 10), "min_jaccard": (0.25, 0.3)}
# With a session model (--model): the p_same at which it joins what lexical evidence would break, and links
# missions (one knob for both, as `evaluate segmentation --min-p-same` is usually given).
MODEL_GRID: tuple[float, ...] = (0.2, 0.3, 0.5, 0.7, 0.9)
BASELINE_MINUTES = 30
LEARNED = "learned classifier"


@dataclass(frozen=True)
class EvaluateCrossvalJob:
    """What `sessionflow evaluate crossval` cross-validates, on which truth."""

    gt: str | None = field(default=None, metadata={"help": "a ground-truth file"})
    format: str | None = common.log_format(common.GOLD_FORMAT_HELP)
    read: ReadOptions = common.read_options()
    level: str | None = field(
        default=None,
        metadata={"help": "the gold level scored and chosen on: sessions or missions (not set: sessions if there)"},
    )
    folds: int = field(default=5, metadata={"help": "outer folds of users"})
    inner: int = field(default=4, metadata={"help": "inner folds (of each outer fold's training users)"})
    seed: int = field(default=0, metadata={"help": "how users are dealt into folds"})
    model: str | None = field(
        default=None,
        metadata={
            "help": "a session model URI (models:/session-model@champion): adds the cascade with it, its "
            f"min_p_same chosen from {', '.join(f'{p:g}' for p in MODEL_GRID)} by the inner folds (a segmenter "
            "model is cross-validated by `train segmenter`)"
        },
    )

    def __post_init__(self) -> None:
        check_cv_settings(self.folds, self.inner, self.seed, self.level)


def check_cv_settings(folds: int, inner: int, seed: int, level: str | None) -> None:
    """ValueError in one line for folds or inner folds under 2, a seed out of range
    (`sessions.seeds.check_seed`), or an unknown level."""
    if folds < 2 or inner < 2:
        raise ValueError("--folds and --inner must be at least 2")
    check_seed(seed, "--seed")
    if level not in (None, "sessions", "missions"):
        raise ValueError(f"--level {level!r}: choose sessions or missions")


@dataclass(frozen=True)
class CrossvalScores:
    """Each system's `CVResult`, the level scored and the labelled events."""

    results: dict[str, CVResult]
    level: str
    gold: pl.DataFrame
    read: GoldLog
    users_unlabelled: int  # users without a label at `level`: left out of the folds
    users_unlabelled_rows: int  # their rows
    not_estimated: dict[str, str] = field(default_factory=dict)  # system -> why it has no estimate

    def table(self) -> pl.DataFrame:
        """system, folds, then `<key>_mean` and `<key>_sd` of the scored level."""
        rows = []
        for name, result in self.results.items():
            s = result.summary().filter(level=self.level, gold=self.level)
            rows.append(s.drop("level", "gold").with_columns(system=pl.lit(name)))
        return pl.concat(rows).select("system", pl.exclude("system"))

    def chosen(self) -> dict[str, dict[str, int]]:
        """Per system, how many outer folds chose each of its candidates."""
        return {name: chosen_counts(result) for name, result in self.results.items()}

    def errors_by_kind(self) -> dict[str, dict[str, int]]:
        """Per system, its out-of-fold errors on adjacent queries at the scored level, by
        kind (`sessions.error_kinds.adjacent_errors`, told apart by the shipped cascade's
        evidence): where each system loses, on users whose choice was made without them."""
        column = {"sessions": "session_id", "missions": "mission_id"}[self.level]
        gold = self.gold.select("row_id", "user_id", "ts", "query", gold=f"gold_{self.level[:-1]}")
        return {
            name: adjacent_errors(gold.join(r.out_of_fold.select("row_id", pred=column), on="row_id"), "pred", "gold")
            for name, r in self.results.items()
        }

    def by_user_size(self) -> pl.DataFrame:
        """Pair-counting scores of each system's out-of-fold groups, by users' history length."""
        frames = [
            r.by_user_size(self.gold).filter(level=self.level, gold=self.level).with_columns(system=pl.lit(name))
            for name, r in self.results.items()
        ]
        return pl.concat(frames)


def grid(base: Any, values: dict[str, tuple]) -> dict[str, object]:
    """Every combination of `values` over the dataclass `base`, named `k=v, ...`."""
    names = list(values)
    return {
        ", ".join(f"{k}={v:g}" for k, v in zip(names, combo, strict=True)): dataclasses.replace(
            base, **dict(zip(names, combo, strict=True))
        )
        for combo in itertools.product(*(values[k] for k in names))
    }


def rule(seg: SegmentConfig, missions: MissionConfig) -> RuleMethod:
    """The cascade with these settings, sessions and missions, as a candidate."""
    return RuleMethod(lambda events: sessions_with_missions(events, seg, missions))


def time_gap(minutes: float) -> RuleMethod:
    """Sessions cut at gaps over `minutes`, each its own mission, as a candidate."""
    cfg = SegmentConfig(method="time", gap_minutes=minutes)
    return RuleMethod(lambda events: segment(events, cfg).with_columns(mission_id=pl.col("session_id")))


def time_gap_grid() -> dict[str, Method]:
    """The time-gap baselines (`BASELINE_GAP_MINUTES`) as candidates, named `<minutes> min`:
    the inner folds choose among them the strongest gap a procedure can claim."""
    return {f"{m:g} min": time_gap(m) for m in BASELINE_GAP_MINUTES}


def systems(level: str, scorer: PairScorer | None = None) -> dict[str, dict[str, Method]]:
    """The systems cross-validated at `level`, each as its candidates; with `scorer` (a
    session model) also the cascade with it, at each p_same of `MODEL_GRID`."""
    seg, missions = SegmentConfig(), MissionConfig()
    # each level's settings are chosen on its own gold: the session grid on sessions,
    # the mission grid (over the shipped sessions) on missions
    if level == "missions":
        chosen = {f"missions {name}": rule(seg, m) for name, m in grid(missions, MISSION_GRID).items()}
    else:
        chosen = {name: rule(s, missions) for name, s in grid(seg, CASCADE_GRID).items()}
    # the simpler rules; on mission gold with the cascade's linking, so that what linking adds is apart
    if level == "missions":
        linked = {
            f"time-gap {BASELINE_MINUTES} min + linking": {
                "30 min": rule(SegmentConfig(method="time", gap_minutes=BASELINE_MINUTES), missions)
            },
            "lexical + linking": {"lexical": rule(SegmentConfig(method="lexical"), missions)},
        }
    else:
        linked = {"lexical": {"lexical": rule(SegmentConfig(method="lexical"), missions)}}
    return {
        f"time-gap {BASELINE_MINUTES} min": {"30 min": time_gap(BASELINE_MINUTES)},
        "time gap, chosen from the grid": time_gap_grid(),
        **linked,
        "cascade (shipped settings)": {"shipped": rule(seg, missions)},
        "cascade, chosen from the grid": chosen,
        LEARNED: {
            m: LearnedMethod(LearnedConfig(model=m), gold=f"gold_{level[:-1]}")
            for m in ("gradient_boosting", "logistic")
        },
        **({"cascade + session model, p_same chosen": with_model(scorer)} if scorer is not None else {}),
    }


def with_model(scorer: PairScorer) -> dict[str, Method]:
    """The shipped cascade with a session model, as candidates named `min_p_same=p`: the
    model joins what lexical evidence would break, and links missions, at p_same >= p."""
    seg, missions = SegmentConfig(), MissionConfig()

    def at(p: float) -> RuleMethod:
        s, m = dataclasses.replace(seg, min_p_same=p), dataclasses.replace(missions, min_p_same=p)
        return RuleMethod(lambda events: sessions_with_missions(events, s, m, scorer, embedder_of(scorer)))

    return {f"min_p_same={p:g}": at(p) for p in MODEL_GRID}


@dataclass(frozen=True)
class LabelledUsers:
    """A ground-truth file's users with a label at `level` (`gold`), as cross-validation takes them."""

    gt: str  # the file
    gold: pl.DataFrame  # the events of users with at least one label at `level`
    level: str  # sessions or missions
    column: str  # gold_session or gold_mission
    read: GoldLog
    users_unlabelled: int  # users without a label at `level`: left out

    @property
    def users_unlabelled_rows(self) -> int:
        """The rows of the users left out: with `gold`'s and the rejected ones, every row of the file."""
        return self.read.events.height - self.gold.height


def labelled_users(
    gt: str | None, fmt: str | None, level: str | None, options: ReadOptions = DEFAULT_READ
) -> LabelledUsers:
    """Read `gt` (with `options`) and keep the users labelled at `level` (not set:
    sessions where the file has them, else missions). ValueError / FileNotFoundError in
    one line for a missing file or option, or a level the file does not have."""
    gt = common.gold_log(gt)
    read = read_gold(gt, common.require(fmt, "format"), options)
    present = dict((name, col) for col, name in gold_levels(read.events))
    level = level or next(iter(present))
    if level not in present:
        raise ValueError(f"--level {level}: {gt} has gold {' and '.join(present)} only")
    gold = read.events.filter(pl.col(present[level]).is_not_null().any().over("user_id"))
    unlabelled = read.events["user_id"].n_unique() - gold["user_id"].n_unique()
    return LabelledUsers(gt, gold, level, present[level], read, unlabelled)


def session_model(uri: str | None) -> PairScorer | None:
    """The session model at `uri` (None without one). ValueError in one line, before
    the model is loaded, for a segmenter model (whose own nested CV is `train
    segmenter`'s), another kind of model or a lookup table, or no model there
    (`workflows.tracking.store.require_model`)."""
    if uri is None:
        return None
    from workflows.tracking.segmenter_model import segmentation_model
    from workflows.tracking.store import KINDS, require_model, use_store

    use_store(existing=True)
    if require_model(uri, ("session", "segmenter"), takes=KINDS["session"]) == "segmenter":
        raise ValueError(f"{uri} is a segmenter model; this takes a session model "
                         "(a segmenter's own nested CV is `train segmenter`'s)")  # fmt: skip
    return segmentation_model(uri)  # the store is open: what `segment.session_scorer` would do again


def run(job: EvaluateCrossvalJob) -> CrossvalScores:
    """Nested cross-validation of every system of `systems` on `job.gt`.

    ValueError / FileNotFoundError for bad settings or inputs (fewer users than folds).
    """
    scorer = session_model(job.model)
    users = labelled_users(job.gt, job.format, job.level, job.read)
    gold, level = users.gold, users.level
    candidates_of = systems(level, scorer)
    not_estimated = {}
    unlearnable = nothing_to_learn(*labelled_pairs(gold, users.column), level)
    if unlearnable:  # the rules are estimated all the same (a classifier of one kind scored 1.000 on all one session)
        del candidates_of[LEARNED]
        not_estimated[LEARNED] = unlearnable
    results = {
        name: nested_cv(gold, candidates, (level, level, "f1"), outer=job.folds, inner=job.inner, seed=job.seed)
        for name, candidates in candidates_of.items()
    }
    return CrossvalScores(results, level, gold, users.read, users.users_unlabelled, users.users_unlabelled_rows,
                          not_estimated)  # fmt: skip
