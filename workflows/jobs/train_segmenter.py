"""`sessionflow train segmenter`: the same-session classifier, fitted on ground truth,
estimated by user-level nested cross-validation, tracked and registered in MLflow.

1. The ground-truth file's users labelled at the level (`evaluate_crossval.labelled_users`).
2. The estimate: `sessions.crossval.nested_cv` of the classifier (its model chosen
   by the inner folds among `--classifier`), with the shipped cascade scored on the
   same outer folds beside it; both logged as `cv_<score>_mean` / `_sd` and
   `cascade_cv_<score>_mean` / `_sd`, with `crossval.json` (folds and choices).
3. The model: chosen by the same procedure on all the users (`sessions.crossval.choose`)
   and fitted on all of them; logged as a pyfunc (`workflows.tracking.segmenter_model`)
   and registered as `segmenter-model`, `champion` when its nested pair F1 is the best
   among versions trained on the same file at the same level.

`sessionflow segment LOG --method learned --model models:/segmenter-model@champion`
then cuts a log with it. It runs in one process (scikit-learn; no Ray).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from sessions import storage
from sessions.crossval import choose, nested_cv
from sessions.formats.options import ReadOptions
from sessions.learned import (
    NO_PAIRS,
    LearnedConfig,
    LearnedMethod,
    SameSessionClassifier,
    labelled_pairs,
    nothing_to_learn,
)
from sessions.missions import MissionConfig
from sessions.segment import SegmentConfig
from workflows.jobs import common
from workflows.jobs.evaluate_crossval import check_cv_settings, labelled_users, rule
from workflows.training.loop import TrainOutcome

EXPERIMENT = "segmenter-model"
CLASSIFIERS = ("gradient_boosting", "logistic")
# What the CV estimate is measured on: the gold rows read (`gt_digest`: the file's content as
# read with its --format and --map, not its path: a mapping of the text column as the users
# was compared with the file mapped right, and made champion by its inflated 0.973, the
# training breaker's find) and level, and the outer folds of users (`--folds`, dealt by
# `--seed`); an estimate compares with another only under the same (the champion), since
# seeds alone move it by about 0.01 (docs/segmentation.md).
ESTIMATE = ("gt_digest", "level", "folds", "seed")


def gold_digest(gold: pl.DataFrame, column: str) -> str:
    """The digest of gold rows as segmentation reads them (`common.rows_digest`): each
    user's queries in time order, those of one time stamp in the file's (the order the
    rules read them in), with their labels in `column`; the order of the users in the
    file, and of a user's rows of different times, changes nothing (the change breaker's
    shuffled copy of a file was not compared with its champion)."""
    return common.rows_digest(gold.sort("user_id", "ts", maintain_order=True).select("user_id", "ts", "query", column))


@dataclass(frozen=True)
class TrainSegmenterJob:
    """What `sessionflow train segmenter` fits on, how it is chosen and estimated, and where it is recorded."""

    gt: str | None = field(default=None, metadata={"help": "a ground-truth file (sessions or missions)"})
    format: str | None = common.log_format(common.GOLD_FORMAT_HELP)
    read: ReadOptions = common.read_options()
    level: str | None = field(
        default=None,
        metadata={
            "help": "the gold level fitted and scored: sessions or missions (not set: sessions "
            "where the file has them, else missions)"
        },
    )
    classifier: str = field(
        default="auto", metadata={"help": "gradient_boosting, logistic, or auto (the inner folds choose)"}
    )
    threshold: float = field(default=0.5, metadata={"help": "a pair below this P(same session) breaks"})
    folds: int = field(default=5, metadata={"help": "outer folds of users (the estimate)"})
    inner: int = field(default=4, metadata={"help": "inner folds (the choice of classifier)"})
    seed: int = field(default=0, metadata={"help": "how users are dealt into folds, and the classifier's seed"})
    experiment: str = common.experiment(EXPERIMENT)
    register: bool = common.register()

    def __post_init__(self) -> None:
        common.check_experiment(self.experiment, EXPERIMENT)
        if self.classifier not in (*CLASSIFIERS, "auto"):
            raise ValueError(f"--classifier {self.classifier!r}: choose {', '.join(CLASSIFIERS)} or auto")
        LearnedConfig(threshold=self.threshold)  # its checks
        check_cv_settings(self.folds, self.inner, self.seed, self.level)

    def candidates(self, gold_column: str) -> dict[str, LearnedMethod]:
        """The classifiers the inner folds choose among (one unless `auto`)."""
        names = CLASSIFIERS if self.classifier == "auto" else (self.classifier,)
        return {
            name: LearnedMethod(LearnedConfig(model=name, threshold=self.threshold, seed=self.seed), gold=gold_column)
            for name in names
        }  # type: ignore[arg-type]


def cv_metrics(summary: pl.DataFrame, level: str, prefix: str) -> dict[str, float]:
    """`<prefix><score>_mean` / `_sd` of a `CVResult.summary` at `level` against its own gold."""
    row = summary.filter(level=level, gold=level).drop("level", "gold", "folds").row(0, named=True)
    return {f"{prefix}{key}": float(value) for key, value in row.items()}


def run(job: TrainSegmenterJob, run_name: str | None = None) -> TrainOutcome:
    """Estimate, fit, log and (optionally) register the classifier; see the module docstring.

    ValueError / FileNotFoundError in one line for bad settings or inputs (a missing
    file, too few users for the folds, consecutive pairs of one class only).
    """
    import mlflow

    from workflows.tracking.segmenter_model import NAME, log_segmenter_model
    from workflows.tracking.store import Promotion, check_store, log_table, training_run
    from workflows.tracking.store import register as register_model

    # a store that cannot be opened is named now, not after the cross-validation; a new SQLite
    # store is made by the run, so a refused log or option leaves no empty mlflow.db behind
    check_store()
    users = labelled_users(job.gt, job.format, job.level, job.read)
    gold, level = users.gold, users.level
    selection = (level, level, "f1")
    unlearnable = nothing_to_learn(*labelled_pairs(gold, users.column), level)
    if unlearnable == NO_PAIRS:
        raise ValueError(f"{job.gt}: {NO_PAIRS}")
    candidates = job.candidates(users.column)
    # nested_cv prepares the candidates (pair features once), which `choose` and the fit then reuse
    learned = nested_cv(gold, candidates, selection, outer=job.folds, inner=job.inner, seed=job.seed)
    classifier, inner = choose(gold, candidates, selection, job.inner, job.seed)
    if unlearnable:  # after the cross-validation, whose refusal of too few users comes first
        raise ValueError(f"{job.gt}: {unlearnable}")
    fitted: SameSessionClassifier = candidates[classifier].classifier(gold)
    cascade = nested_cv(gold, {"shipped": rule(SegmentConfig(), MissionConfig())}, selection, job.folds, job.inner,
                        job.seed)  # fmt: skip
    metrics = {**cv_metrics(learned.summary(), level, "cv_"), **cv_metrics(cascade.summary(), level, "cascade_cv_")}
    params = {
        "gt": storage.absolute(users.gt), "format": job.format, "map": job.read.map, "level": level,
        "gt_digest": gold_digest(gold, users.column), "classifier": classifier,
        "classifier_choice": job.classifier, "threshold": job.threshold, "folds": job.folds, "inner": job.inner,
        "seed": job.seed,
        "users": gold["user_id"].n_unique(), "rows": gold.height, "users_unlabelled": users.users_unlabelled,
        "users_unlabelled_rows": users.users_unlabelled_rows, "rows_rejected": sum(users.read.rejected.values()),
    }  # fmt: skip
    name = run_name or f"{classifier} on {storage.name(users.gt)} ({level})"
    description = (f"Segmenter: {classifier} same-session classifier fitted on the {gold['user_id'].n_unique()} "
                   f"users of {storage.absolute(users.gt)} ({level}); nested CV pair F1 {metrics['cv_f1_mean']:.3f} ± "
                   f"{metrics['cv_f1_sd']:.3f} (shipped cascade {metrics['cascade_cv_f1_mean']:.3f}).")  # fmt: skip
    with training_run(job.experiment, "train segmenter", params, name, description) as run_id:
        log_table(gold, storage.absolute(users.gt), "ground truth", "training")
        mlflow.log_metrics({**metrics, **{f"inner_f1_{candidate}": score for candidate, score in inner.items()}})
        mlflow.log_dict(
            {"folds": learned.folds.to_dicts(), "cascade_folds": cascade.folds.to_dicts(), "inner_f1": inner,
             "rejected": users.read.rejected, "users_unlabelled": users.users_unlabelled,
             "users_unlabelled_rows": users.users_unlabelled_rows, "unlabelled": users.read.unlabelled()},
            "crossval.json",
        )  # fmt: skip
        model_uri = log_segmenter_model(fitted, level)
    registered, champion = (
        register_model(model_uri, NAME, "cv_f1_mean", same=ESTIMATE, description=description)
        if job.register
        else (None, Promotion(False))
    )
    shown = headline(metrics, classifier, level)
    rejected = ", ".join(f"{reason} {count:,}" for reason, count in users.read.rejected.items())
    without = gold[users.column].null_count()  # rows of labelled users without a label: segmented, not learned from
    shown = {
        "rows of labelled users (users)": f"{gold.height:,} ({gold['user_id'].n_unique():,})"
        + (f", {without:,} of them without a label" if without else ""),
        "rows rejected": rejected or "0",
        "users without a label (left out)": f"{users.users_unlabelled:,} ({users.users_unlabelled_rows:,} rows)",
        **shown,
    }
    read_as = (f"{users.gt} read as {users.read.read_as}",) if users.read.read_as else ()
    return TrainOutcome(run_id, f"runs:/{run_id}/model", registered, champion, shown, None, [],
                        notes=read_as + users.read.notes)  # fmt: skip


HEADLINE = {"f1": "pair F1", "ari": "adjusted Rand", "boundary_f1": "boundary F1", "adjacent_accuracy": "adjacent acc."}


def headline(metrics: dict[str, float], classifier: str, level: str) -> dict[str, str]:
    """The figures `train segmenter` prints: nested CV mean ± sd of the classifier and of the cascade."""
    out = {"level": level, "classifier (chosen on all users)": classifier}
    for prefix, system in (("cv_", "segmenter: {} (nested CV)"), ("cascade_cv_", "shipped cascade: {} (same folds)")):
        for key, name in HEADLINE.items():
            mean, sd = metrics[f"{prefix}{key}_mean"], metrics[f"{prefix}{key}_sd"]
            out[system.format(name)] = f"{mean:.3f} ± {sd:.3f}"
    return out
