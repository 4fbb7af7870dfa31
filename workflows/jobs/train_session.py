"""Fine-tuning the session model with Ray Train (DDP), tracked in MLflow.

The driver (`train_session`) turns mined pairs into training examples
(`sessions.pairs.triplets`) and validation pairs, opens an MLflow run, and runs the
shared Ray Train loop (`workflows.training.loop`: DDP, checkpoints, early stopping,
resumption after a worker failure, rank-0 logging) with the `SessionTask`
(`workflows.training.session`): InfoNCE on (anchor, positive, hard negative) batches,
validation ROC AUC of the dot product.

Afterwards the driver takes the checkpoint of best validation AUC, fits the
calibration on the validation pairs, logs its ROC curve next to the baselines' (the
encoder before fine-tuning, 3-gram Jaccard), a PCA projection of the validation users'
largest missions before and after fine-tuning (when the sessions the pairs came from
are at hand), and the pyfunc model, registers it as `session-model`, and moves the
`champion` alias to it when its validation AUC is the best of the registered versions
validated on the same pairs (`pairs_digest`: their content, not where they were read).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import polars as pl

from sessions import storage
from sessions.io import is_complete, read_json, read_table, scan_table
from sessions.pairs import order_pairs, triplets
from sessions.seeds import check_seed
from workflows.distributed.runtime import require_cpus, require_gpus
from workflows.jobs import common
from workflows.training.loop import (
    Trained,
    TrainOutcome,
    gpus_needed,
    require_one_global_batch,
    require_storage,
    train_best,
    training_ray,
)
from workflows.training.session import SessionTask

EXPERIMENT = "session-model"


@dataclass(frozen=True)
class SessionTrainConfig:
    """What `sessionflow train session` trains, and how."""

    model: str = field(
        default="minilm-local", metadata={"help": "encoder to fine-tune: minilm-local, tiny, a Hub id or a directory"}
    )
    epochs: int = field(default=1, metadata={"help": "passes over the training examples"})
    max_steps: int = field(
        default=0,
        metadata={"help": "stop after this many steps or after --epochs, whichever comes first (0: the epochs decide)"},
    )
    batch_size: int = field(
        default=64, metadata={"help": "examples per worker and step (the global batch is workers x this)"}
    )
    lr: float = field(default=3e-5, metadata={"help": "peak learning rate (AdamW, linear warm-up and decay)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_share: float = field(default=0.1, metadata={"help": "share of the steps spent warming the learning rate up"})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature"})
    max_length: int | None = field(
        default=None, metadata={"help": "tokens per query at most (none: a trained model's own, else 32)"}
    )
    eval_every: int = field(default=100, metadata={"help": "steps between validations, each one a checkpoint"})
    patience: int = field(default=3, metadata={"help": "stop after this many validations without a better AUC"})
    max_val_pairs: int = field(
        default=4000, metadata={"help": "validation pairs at most (a sample, the same for every --seed)"}
    )
    max_train_examples: int = field(default=0, metadata={"help": "training examples at most (0: all)"})
    workers: int = field(default=1, metadata={"help": "Ray Train workers (DDP)"})
    gpu: bool = field(default=False, metadata={"help": "one GPU per worker (nccl, mixed precision)"})
    amp: bool = field(default=True, metadata={"help": "mixed precision (bf16, else fp16) on GPU"})
    max_failures: int = field(
        default=2, metadata={"help": "worker failures survived (resumed from the last checkpoint)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the example order and initialisation"})

    def resolved(self) -> SessionTrainConfig:
        """This config with `max_length` not given (None) set to what the model directory
        `model` saved (a trained model's own), else 32: what trains, and what the run
        records. (A default of 32 cut a model saved at 64 to 32, without a word.)"""
        if self.max_length is not None:
            return self
        from models.encoder import saved_settings

        return replace(self, max_length=saved_settings(self.model).get("max_length", 32))

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "patience", "workers", "max_val_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("temperature", "lr"):  # each check names the one setting that fails it
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        common.check_learning_rate("lr", self.lr)
        if self.temperature < common.FLOAT32_TINY:  # 1e-300 is 0 in float32: its NaN loss was told as the lr's
            raise ValueError(f"temperature must be at least {common.FLOAT32_TINY:.4g} (float32's smallest normal "
                             "number: the loss divides by it in float32)")  # fmt: skip
        for name in ("max_steps", "max_train_examples", "max_failures", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError("max_length must be at least 1")
        if not 0.0 <= self.warmup_share <= 1.0:
            raise ValueError("warmup_share must be in [0, 1]")
        check_seed(self.seed)

    def to_dict(self) -> dict:
        """The config as JSON-ready values (the run's params and `config.json`)."""
        return asdict(self)


PAIRS_COLUMNS = ("query_a", "query_b", "label", "kind", "user_id", "split")  # what training reads of `mine`'s pairs
# The seed of the --max-val-pairs sample, not --seed: runs on the same pairs validate on the same sample, and
# compete for champion (`val_pairs_digest`); --seed 1 drew another, and runs differing only in their seed were not
# compared (the breaker's find). 0: the sample the default --seed drew before
VAL_SAMPLE_SEED = 0


def training_data(pairs_path: str, cfg: SessionTrainConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training examples from the train split, validation pairs) of a `mine` output
    (a local path or a URI). ValueError / FileNotFoundError in one line, before any
    worker starts, for pairs that are not there, not a `mine` output's, or bad
    (`common.read_pairs_table`: every pair of the file, whatever its split), or too
    few for a batch or a validation (every one of these checks that fails, in the one
    line: the splits' first). The pairs are taken in their canonical order
    (`sessions.pairs.order_pairs`), so that the same pairs give the same examples and
    the same sample of validation pairs however their rows were written (the Ray
    engine's `mine` writes them by bucket of users, the local one in that order); the
    sample is seeded by `VAL_SAMPLE_SEED`, the same whatever `cfg.seed`."""
    pairs = order_pairs(common.read_pairs_table(pairs_path, PAIRS_COLUMNS)[0])
    train = triplets(pairs.filter(pl.col("split") == "train"), seed=cfg.seed)
    if cfg.max_train_examples:
        train = train.head(cfg.max_train_examples)
    val = pairs.filter(pl.col("split") == "val").select("query_a", "query_b", "label")
    sample = val
    if val.height > cfg.max_val_pairs:
        sample = val.sample(cfg.max_val_pairs, seed=VAL_SAMPLE_SEED, shuffle=True)
    # every check the pairs fail, in one line, the splits' own first: said one at a time, the fix of the first met
    # the next (the breaker's find: a 15-row table was told to lower the batch size, then that its val split held
    # no pairs)
    problems = [_train_split_problem(pairs, train), _val_split_problem(val)]
    if not problems[0]:
        try:
            require_one_global_batch(train.height, cfg, "mine a larger log, or ")
        except ValueError as err:
            problems.append(str(err))
    if not problems[1] and sample["label"].n_unique() < 2:  # checked in the whole split, it failed at calibration
        problems.append(
            f"--max-val-pairs {cfg.max_val_pairs:,}: its sample of the val split's {val.height:,} pairs is all "
            f"{'positive' if sample['label'][0] else 'negative'}, and validation needs both; raise --max-val-pairs"
        )
    if said := [problem for problem in problems if problem]:
        raise ValueError("; and ".join(said))
    return train, sample


def _train_split_problem(pairs: pl.DataFrame, train: pl.DataFrame) -> str | None:
    """What keeps the train split of `pairs` from giving `train` any example, and what to
    do; None when it gives some."""
    if train.height:
        return None
    # `mine --gold` puts every pair in test, `--train-share 0` none in train
    held = ", ".join(f"{split} {n:,}" for split, n in sorted(pairs["split"].value_counts().iter_rows()))
    labels = pairs.filter(pl.col("split") == "train")["label"]
    if len(labels):  # pairs of one label give no example: each needs a positive and a negative
        one = (
            "positive, and each training example needs a negative too: give pairs mined with "
            "--negatives-per-positive above 0"
            if labels[0]
            else "negative: no example without a positive"
        )
        return f"the train split's {_all_of(len(labels))} {one} ({held})"
    return (f"the train split holds no pairs ({held}): give pairs mined with a --train-share above 0 "
            "(`mine --gold` pairs are for `evaluate pairs`)")  # fmt: skip


def _val_split_problem(val: pl.DataFrame) -> str | None:
    """What keeps the validation pairs `val` (the whole val split) from a validation, and
    what to do; None when they hold both labels."""
    if val["label"].n_unique() == 2:
        return None
    if not val.height:
        return ("the val split holds no pairs: `mine` put none of the log's users there (--val-share of them, by a "
                "hash of user_id); mine a larger log or raise --val-share")  # fmt: skip
    return (f"the val split's {_all_of(val.height)} {'positive' if val['label'][0] else 'negative'}, and "
            "validation needs both; mine a larger log or raise --val-share")  # fmt: skip


def _all_of(pairs: int) -> str:
    """`N pairs are all` (of one label), or `1 pair is`."""
    return "1 pair is" if pairs == 1 else f"{pairs:,} pairs are all"


def _finish(
    trained: Trained, val: pl.DataFrame, cfg: SessionTrainConfig, pairs_path: str, run_id: str, register: bool
) -> TrainOutcome:
    """Calibrate the best checkpoint, log figures and the model, register it."""
    import mlflow

    from models.calibration import calibrated_metrics, pair_metrics
    from models.encoder import load_encoder
    from models.session import pair_scores
    from workflows.figures import embedding_projection, roc_figure
    from workflows.jobs.evaluate_pairs import JACCARD, baseline_scores
    from workflows.tracking.session_model import NAME, log_session_model
    from workflows.tracking.store import Promotion
    from workflows.tracking.store import register as register_model

    with tempfile.TemporaryDirectory() as tmp:
        encoder, pretrained = load_encoder(str(trained.model)), load_encoder(cfg.model, max_length=cfg.max_length)
        labels = val["label"].to_numpy()
        scores = pair_scores(encoder, val["query_a"].to_list(), val["query_b"].to_list())
        calibration, m = calibrated_metrics(scores, labels)  # the AUC of the scores, before calibration
        baselines = baseline_scores(val, pretrained, cfg.model)
        metrics = {
            "val_auc": m.auc, "val_accuracy": m.accuracy, "best_step": trained.state["best_step"],
            "steps": trained.last_step, "calibration_slope": calibration.slope,
            "calibration_intercept": calibration.intercept,
            "val_auc_not_fine_tuned": pair_metrics(baselines[f"{cfg.model}, not fine-tuned"], labels).auc,
            "val_auc_jaccard": pair_metrics(baselines[JACCARD], labels).auc,
        }  # fmt: skip
        figures = [roc_figure(labels, {"session model": scores, **baselines}, "validation pairs",
                              Path(tmp) / "val_roc.png")]  # fmt: skip
        sample = mission_sample(pairs_path)
        if sample is not None:
            path, silhouettes = embedding_projection(
                {"not fine-tuned": pretrained.encode(sample["query"].to_list()),
                 "fine-tuned": encoder.encode(sample["query"].to_list())},
                sample["mission_id"].to_numpy(), "validation users' largest missions (PCA)",
                Path(tmp) / "mission_pca.png",
            )  # fmt: skip
            figures.append(path)
            metrics |= {"mission_silhouette_not_fine_tuned": silhouettes["not fine-tuned"],
                        "mission_silhouette": silhouettes["fine-tuned"]}  # fmt: skip
        # once, at the last step (the loop's evaluations are the eval/ curves): the registered model's
        mlflow.log_metrics(metrics, step=trained.last_step)
        for figure in figures:
            mlflow.log_artifact(str(figure))
        mlflow.log_dict(cfg.to_dict(), "config.json")
        model_uri = log_session_model(trained.model, calibration, cfg.model, Path(tmp) / "model")
    described = (f"{cfg.model} fine-tuned on the pairs of {storage.absolute(pairs_path)}: validation AUC "
                 f"{metrics['val_auc']:.4f} (not fine-tuned {metrics['val_auc_not_fine_tuned']:.4f}).")  # fmt: skip
    registered, champion = (
        register_model(model_uri, NAME, "val_auc", same=("val_pairs_digest",), description=described)
        if register
        else (None, Promotion(False))
    )
    return TrainOutcome(run_id, f"runs:/{run_id}/model", registered, champion, metrics, trained.where,
                        [f.name for f in figures], trained.stopped, fine_tuning_notes(metrics, cfg.model))  # fmt: skip


def fine_tuning_notes(metrics: dict, model: str) -> tuple[str, ...]:
    """A note where the fine-tuned model's validation AUC is no better than the encoder it
    started from (`model`, not fine-tuned, on the same pairs): a new user's 10 steps gave
    0.9038 against 0.9041, which the summary showed as 0.904 and 0.904 beside
    "champion: yes" (the first model validated on those pairs). () otherwise."""
    tuned, before = metrics["val_auc"], metrics["val_auc_not_fine_tuned"]
    if tuned > before:
        return ()
    return (f"fine-tuning did not beat the encoder it started from on the validation pairs: AUC {tuned:.4f}, "
            f"{model} not fine-tuned {before:.4f} (more steps, more pairs, or another --lr may)",)  # fmt: skip


def pairs_digest(pairs: pl.DataFrame) -> str:
    """A digest of labelled pairs (`query_a`, `query_b`, `label`, in their order:
    `common.rows_digest`). Two runs validated on the same pairs have the same digest,
    wherever the pairs were read from."""
    return common.rows_digest(pairs.select("query_a", "query_b", "label"))


def mission_sample(pairs_path: str, missions: int = 12, per_mission: int = 25) -> pl.DataFrame | None:
    """Distinct queries (`query`, `mission_id`: the user's id and the mission's, as one
    text) of the validation users' `missions` largest missions (by distinct queries, at
    least 5), at most `per_mission` of each, from the sessions the pairs were mined from
    (None when those are not at hand, or fewer than two missions qualify). A mission is
    its user's, whatever its id (a table of one's own may number each user's from 1).
    The same pairs give the same sample, whatever `--seed` and the rows' order (seeded by
    `VAL_SAMPLE_SEED`): runs compared for champion draw their figure from the same
    queries."""
    report = storage.join(pairs_path, "report.json")
    if not storage.exists(report):
        return None
    source = read_json(report).get("source", "")
    if not source or not is_complete(source) or "mission_id" not in scan_table(source).collect_schema():
        return None
    users = read_table(common.pairs_location(pairs_path)).filter(pl.col("split") == "val")["user_id"].unique()
    queries = (
        scan_table(source)
        .select(pl.col("user_id").cast(pl.String), "query", pl.col("mission_id").cast(pl.String))
        .filter(pl.col("user_id").is_in(users.cast(pl.String).implode()))
        .select("query", mission_id=pl.concat_str("user_id", "mission_id", separator="\t"))
        .unique()
        .sort("mission_id", "query")
        .collect()
        .with_columns(size=pl.len().over("mission_id"))
        .filter(pl.col("size") >= 5)
    )
    largest = queries.unique("mission_id").sort(["size", "mission_id"], descending=[True, False]).head(missions)
    sample = (
        queries.filter(pl.col("mission_id").is_in(largest["mission_id"].implode()))
        .sample(fraction=1.0, shuffle=True, seed=VAL_SAMPLE_SEED)
        .group_by("mission_id", maintain_order=True)
        .head(per_mission)
        .select("query", "mission_id")
    )
    return sample if sample["mission_id"].n_unique() >= 2 else None


@dataclass(frozen=True)
class TrainSessionJob:
    """What `sessionflow train session` trains on, how, and where it records the run."""

    pairs: str | None = field(default=None, metadata={"help": "a `mine` output directory (its pairs.parquet)"})
    session: SessionTrainConfig = field(default_factory=SessionTrainConfig, metadata={"prefix": ""})
    experiment: str = common.experiment(EXPERIMENT)
    register: bool = common.register()
    storage: str | None = common.storage()
    address: str | None = common.address()

    def __post_init__(self) -> None:
        common.check_experiment(self.experiment, EXPERIMENT)


def run(job: TrainSessionJob, run_name: str | None = None) -> TrainOutcome:
    """Train, calibrate, log and (optionally) register a session model; see the module docstring.

    Returns the MLflow run, the logged and registered model and the metrics. ValueError /
    FileNotFoundError for bad settings or inputs (no pairs, fewer than one global batch).
    """
    require_gpus(gpus_needed(job.session), job.address, "--gpu", "train on CPUs without --gpu")  # before the imports
    require_cpus(job.session.workers, job.address)
    from models.encoder import check_encoder
    from workflows.tracking.store import log_table, training_run

    pairs_path, cfg = common.require(job.pairs, "pairs"), job.session.resolved()
    check_encoder(cfg.model, max_length=cfg.max_length)  # before any worker starts
    train, val = training_data(pairs_path, cfg)
    require_storage(job.storage)
    # the validation pairs themselves decide which versions compete for champion: pairs mined again into the
    # same directory (another seed, other users in val) are other pairs, the same pairs anywhere the same
    params = {**cfg.to_dict(), "pairs": storage.absolute(pairs_path), "train_examples": train.height,
              "val_pairs": val.height, "val_pairs_digest": pairs_digest(val)}  # fmt: skip
    name = run_name or f"{cfg.model} on {storage.name(pairs_path)}, {cfg.workers} worker(s), lr {cfg.lr:g}"
    description = (f"Session model: {cfg.model} fine-tuned with InfoNCE on the training pairs of {pairs_path} "
                   f"({train.height:,} examples), validated on {val.height:,} pairs of other users.")  # fmt: skip
    with (
        training_ray(job.address, job.storage),
        training_run(job.experiment, "train session", params, name, description) as run_id,
        train_best(SessionTask(cfg, train, val), run_id, "session-model", job.storage) as trained,
    ):
        log_table(train, pairs_path, "pairs (train)", "training")
        log_table(val, pairs_path, "pairs (validation)", "validation")
        return _finish(trained, val, cfg, pairs_path, run_id, job.register)
