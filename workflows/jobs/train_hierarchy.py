"""Training hierarchy embeddings with Ray Train (DDP), tracked in MLflow.

Two kinds of model, one loop (`workflows.training.loop`):

- `--model lookup`: a point per node (Nickel & Kiela 2017; `models.poincare`),
  Riemannian SGD with a burn-in (lr x `burnin_lr_factor`, negatives by frequency) and
  `negatives` sampled non-ancestors per pair; manifold poincare, euclidean or order;
- `--model NAME` (an encoder name of the session model): the text model
  (`models.hierarchy`: `head` expmap0, with a `hidden` layer or linear, or HiT's);
  LP-FT (Kumar et al. 2022): the head is first fitted alone on the frozen encoder's
  vectors for `head_epochs` (at `head_lr`), then head and encoder are fine-tuned
  together by Riemannian Adam (the head at `lr`, the encoder at `encoder_lr`);
  negatives shared by the batch (every node of the batch is encoded
  once), ranked by a distance softmax or HiT's triplet hinge (`ranking`), plus the
  norm term (a child `margin` per level farther from the origin than its ancestor, or
  at least `margin`: `norm_loss`).

Examples are the (child, ancestor) pairs of the closure, less a held-out share of
edges or nodes (`holdout`); with `hit-multi` or `hit-mixed`, the training edges of
HiT's task (He et al. 2024, `hierarchies.hit`: direct edges only), whose F1 is then
scored at every evaluation. Settings not given take their model's value
(`MODEL_DEFAULTS`, resolved by `HierarchyTrainConfig.resolved`). Every evaluation
computes reconstruction MAP and mean rank on the training pairs (the monitor: the
best checkpoint is the one of highest `map`), link prediction on the held-out pairs,
and Spearman(norm, depth). The text
model is registered as `hierarchy-model` (pyfunc: text -> point, norm) with
`champion` on the best reconstruction MAP; lookup tables are logged, not registered
(they cannot place a text they have not seen).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from models.choices import HEADS, MANIFOLDS, NORM_LOSSES, RANKINGS, TEXT_MANIFOLDS
from sessions.seeds import check_seed
from workflows.distributed.runtime import require_cpus, require_gpus
from workflows.jobs import common
from workflows.training.hierarchy import (
    HierarchyData,
    HierarchyTask,
    evaluate_with_baselines,
    load_data,
    load_model,
    refuse_unread_nodes,
)
from workflows.training.loop import (
    Trained,
    TrainOutcome,
    gpus_needed,
    require_one_global_batch,
    require_storage,
    train_best,
    training_ray,
)

EXPERIMENT = "hierarchy-model"
DATA = ("wordnet-mammals", "wordnet-nouns", "hierarcaps:DIR")  # as --help names it
# a text model's loss settings with defaults of their own, which a lookup table never reads (its
# ball has curvature 1, its loss the distance softmax of Nickel & Kiela). --gloss names the nodes
# of its figures; --max-length, unread too, stays allowed: the demo sets it for either model
TEXT_MODEL_LOSS = ("curvature", "ranking", "triplet_margin", "norm_weight", "norm_loss")
WORDNET = DATA[:2]
HOLDOUTS = ("none", "edges", "nodes", "hit-multi", "hit-mixed")
# The settings that draw the held-out pairs (`evaluate hierarchy`'s split check).
SPLIT = ("data", "holdout", "holdout_share", "seed")
# A reconstruction MAP compares with another (the champion) only on the same evaluation data: the digest of
# its nodes, pairs evaluated and test chains (`evaluation_digest`), not the settings that drew them (runs that
# differ only in a --seed that draws nothing, without a held-out split, were never compared; a HierarCaps
# directory whose files changed compared by its path)
CHAMPION_SAME = ("eval_digest",)
DEFAULT_DIM = 10
# Each kind of model's best measured setting (docs/hierarchy-model.md, with the runs
# that show it): a setting not given takes its model's value. The lookup table's is
# Nickel & Kiela's (2017) mammals recipe, Riemannian SGD at lr 25 after a burn-in of
# 10 epochs at lr 2.5: reconstruction MAP 0.965 at dim 5 (the paper: 0.927). The text
# model's: a head with a 512-wide hidden layer, fitted alone on the frozen encoder's
# vectors for 50 epochs at 1e-2 (LP-FT's first stage; 40 s here), then fine-tuned with
# the encoder for 5 epochs at 1e-3 (head) and 3e-5 (encoder), decaying linearly to 0,
# norm margin 1.0 per level: on the mammals at dim 10 MAP 0.92 after the first stage
# (before: a linear head, margin 0.5, no first stage, 1e-2 / 1e-4: 0.707).
# A text model's WordNet node trains under one of its names a step (its lemmas joined, or
# one lemma alone; `hierarchies.datasets.NodeNames`): the default command's model types
# the mammals log's reformulations 0.799 in nested CV (0.658 on the joined lemmas alone)
# at reconstruction MAP 0.902 (0.919) (docs/hierarchy-model.md).
SCHEDULES = ("constant", "linear")
NAMES = ("all", "text")
MODEL_DEFAULTS: dict[str, dict[str, int | float | str]] = {
    "lookup": {"epochs": 150, "burnin_epochs": 10, "batch_size": 256, "negatives": 50, "lr": 25.0,
               "schedule": "constant"},
    "text": {"epochs": 5, "burnin_epochs": 0, "batch_size": 64, "negatives": 64, "lr": 1e-3, "encoder_lr": 3e-5,
             "schedule": "linear", "hidden": 512, "head_epochs": 50, "head_lr": 1e-2, "names": "all",
             "sibling_negatives": 0},
}  # fmt: skip


def _by_model(name: str) -> str:
    shown = {model: f"{own[name]:g}" if isinstance(own[name], float | int) else own[name]
             for model, own in MODEL_DEFAULTS.items() if name in own}  # fmt: skip
    return "; ".join(f"{'a text model' if model == 'text' else model}: {value}" for model, value in shown.items())


@dataclass(frozen=True)
class HierarchyTrainConfig:
    """What `sessionflow train hierarchy` trains, and how."""

    data: str = field(
        default="wordnet-mammals", metadata={"help": "wordnet-mammals, wordnet-nouns, or hierarcaps:DIR (text models)"}
    )
    model: str = field(
        default="minilm-local",
        metadata={
            "help": "lookup (a point per node, Nickel & Kiela 2017), or an encoder: minilm-local, tiny, a Hub id"
        },
    )
    manifold: str = field(
        default="poincare",
        metadata={
            "help": "poincare or euclidean (order too, for lookup)",
            "choices": MANIFOLDS,
        },
    )
    dim: int = field(
        default=DEFAULT_DIM, metadata={"help": "dimensions of the embedding (--head hit: the encoder's width)"}
    )
    curvature: float = field(
        default=1.0, metadata={"help": "curvature of a text model's Poincare ball (its negative; a lookup's: 1)"}
    )
    head: str = field(
        default="expmap0",
        metadata={
            "help": "text model: expmap0 (a hidden layer or linear, scale, expmap0 to the unit ball) or hit (the "
            "encoder's vectors are the points, in a ball of radius sqrt(width): Hierarchy Transformers, "
            "He et al. 2024)",
            "choices": HEADS,
        },
    )
    hidden: int | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": "text model, head expmap0: width of the hidden layer before expmap0 (0: a linear map) "
            f"({_by_model('hidden')})",
        },
    )
    head_epochs: int | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": "text model: epochs that fit the head alone on the frozen encoder's vectors before the "
            "encoder is fine-tuned (LP-FT, Kumar et al. 2022; 0: none; not limited by --max-steps) "
            f"({_by_model('head_epochs')})",
        },
    )
    head_lr: float | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": "text model: learning rate of the head fitted alone (head_epochs), decaying linearly to 0 "
            f"({_by_model('head_lr')})",
        },
    )
    mobius_layers: int = field(default=0, metadata={"help": "Mobius linear layers after expmap0"})
    names: str | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "choices": NAMES,
            "help": "text model: the names a node trains under: all (each step one of them at random: its lemmas "
            "joined, or one lemma alone, as a log writes it; with --gloss each followed by the gloss) or text (the "
            "lemmas joined alone); evaluated on the joined text either way; the same where a node has one name "
            f"(HiT's protocol, HierarCaps) ({_by_model('names')})",
        },
    )
    sibling_negatives: int | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": "text model: up to this many hard negatives per pair, the child's siblings (other children "
            "of its direct parents, never an ancestor the training pairs show), drawn anew each step and added to "
            "the batch's shared negatives for that pair alone (HiT's hard negatives, He et al. 2024) "
            f"({_by_model('sibling_negatives')})",
        },
    )
    gloss: bool = field(default=False, metadata={"help": "node text = lemmas and the WordNet gloss"})
    holdout: str = field(
        default="none",
        metadata={
            "help": "held out for link prediction: a share of the edges or nodes, or the test pairs of HiT's "
            "multi-hop or mixed-hop task (He et al. 2024: trains on direct edges only, entity names as texts)",
            "choices": HOLDOUTS,
        },
    )
    holdout_share: float = field(default=0.1, metadata={"help": "share of edges or nodes held out"})
    epochs: int | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": f"passes over the training pairs (a text model: fine-tuning, after --head-epochs) "
            f"({_by_model('epochs')})",
        },
    )
    max_steps: int = field(
        default=0,
        metadata={
            "help": "stop after this many steps or after --epochs, whichever comes first (0: the epochs decide; "
            "a text model's head fit is apart)"
        },
    )
    batch_size: int | None = field(
        default=None, metadata={"shown": "by model", "help": f"pairs per worker and step ({_by_model('batch_size')})"}
    )
    negatives: int | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": f"non-ancestors per pair (lookup) or per batch (text model) ({_by_model('negatives')})",
        },
    )
    lr: float | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": f"learning rate (the text model's head while fine-tuned with the encoder) ({_by_model('lr')})",
        },
    )
    encoder_lr: float | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": f"learning rate of the text model's encoder ({_by_model('encoder_lr')})",
        },
    )
    schedule: str | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "choices": SCHEDULES,
            "help": "the learning rate over the run (times any burn-in factor): constant, or linear decay to 0 "
            f"({_by_model('schedule')})",
        },
    )
    burnin_epochs: int | None = field(
        default=None,
        metadata={
            "shown": "by model",
            "help": f"epochs at lr x burnin-lr-factor, negatives by frequency ({_by_model('burnin_epochs')})",
        },
    )
    burnin_lr_factor: float = field(default=0.1, metadata={"help": "learning rate factor during the burn-in"})
    norm_weight: float = field(
        default=1.0, metadata={"help": "weight of the norm term (general texts near the origin)"}
    )
    margin: float = field(default=1.0, metadata={"help": "norm gap per level between a child and its ancestor"})
    ranking: str = field(
        default="softmax",
        metadata={
            "help": "text model: softmax (distance softmax over the negatives, Nickel & Kiela 2017) or triplet "
            "(HiT's hinge: the ancestor nearer than each negative by --triplet-margin)",
            "choices": RANKINGS,
        },
    )
    triplet_margin: float = field(default=5.0, metadata={"help": "ranking triplet: the margin (HiT: 5.0)"})
    norm_loss: str = field(
        default="level",
        metadata={
            "help": "level: the gap is margin x levels (squared error); order: at least margin (hinge)",
            "choices": NORM_LOSSES,
        },
    )
    max_length: int = field(default=32, metadata={"help": "tokens per node text at most"})
    max_eval_nodes: int = field(
        default=2000,
        metadata={"help": "reconstruction and link prediction each rank the ancestors of at most this many nodes"},
    )
    eval_every: int = field(default=100, metadata={"help": "steps between evaluations and checkpoints"})
    patience: int = field(default=3, metadata={"help": "stop after this many evaluations without a better MAP"})
    workers: int = field(default=1, metadata={"help": "Ray Train workers (DDP)"})
    gpu: bool = field(default=False, metadata={"help": "one GPU per worker (nccl)"})
    amp: bool = field(
        default=False, metadata={"help": "mixed precision on GPU (the hyperbolic head runs in float64 anyway)"}
    )
    max_failures: int = field(
        default=2, metadata={"help": "worker failures survived (resumed from the last checkpoint)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of splits, order and initialisation"})

    def __post_init__(self) -> None:
        if self.data not in WORDNET and not self.data.startswith("hierarcaps:"):
            raise ValueError(f"data must be one of {', '.join(DATA)}, got {self.data!r}")
        directory = self.data.removeprefix("hierarcaps:") if self.data.startswith("hierarcaps:") else None
        if directory is not None and (not directory.strip() or directory != directory.strip()):
            raise ValueError(f"--data {self.data!r}: give the directory of HierarCaps' files right after the colon "
                             "(hierarcaps:DIR, no space)")  # fmt: skip
        if self.hierarcaps and self.lookup:
            raise ValueError("HierarCaps trains text models (a lookup table places no caption it has not seen): "
                             "give --model an encoder")  # fmt: skip
        if self.hierarcaps and self.holdout != "none":
            raise ValueError("HierarCaps is evaluated on its own test hierarchies: no --holdout")
        # one setting a message: its subject is named as the user gave it (`_with_flags`), a second word is not
        if self.head not in HEADS:
            raise ValueError(f"head must be expmap0 or hit, not {self.head!r}")
        if self.ranking not in RANKINGS:
            raise ValueError(f"ranking must be softmax or triplet, not {self.ranking!r}")
        if self.head == "hit" and (self.lookup or self.manifold != "poincare" or self.mobius_layers):
            raise ValueError("--head hit is a text model's encoder on the ball: no lookup, Mobius layers or euclidean")
        head_given = self.hidden or self.head_epochs or self.head_lr is not None or self.lr is not None  # 0: none
        if self.head == "hit" and head_given:  # a learning rate given was recorded as the run's and trained nothing
            raise ValueError("--head hit adds no layer to fit: no --hidden, --head-epochs, --head-lr or --lr (the "
                             "encoder trains at --encoder-lr)")  # fmt: skip
        if self.lookup and self.mobius_layers:
            raise ValueError("--mobius-layers: the text model's setting, not for --model lookup")
        if self.manifold == "euclidean" and self.mobius_layers:  # a worker's traceback after Ray had started
            raise ValueError("--mobius-layers: Mobius layers live on the Poincare ball, not for --manifold euclidean")
        text_only = ("hidden", "head_epochs", "head_lr", "names", "sibling_negatives", "encoder_lr")
        given = [name for name in text_only if getattr(self, name) is not None]
        default = {f.name: f.default for f in fields(self)}
        changed = [name for name in TEXT_MODEL_LOSS if getattr(self, name) != default[name]]
        if self.manifold != "order":  # the margin of order embeddings (Vendrov et al. 2016) is a lookup's too
            changed += ["margin"] if self.margin != default["margin"] else []
        if self.lookup and given + changed:
            flags = ", ".join("--" + name.replace("_", "-") for name in given + changed)
            raise ValueError(f"{flags}: the text model's settings, not for --model lookup (they change nothing)")
        if self.manifold == "euclidean" and self.curvature != default["curvature"]:
            raise ValueError("--curvature: the Poincare ball's, not for --manifold euclidean (it changes nothing)")
        if self.names is not None and self.names not in NAMES:
            raise ValueError(f"names must be one of {NAMES}, got {self.names!r}")
        if self.schedule is not None and self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.norm_loss not in NORM_LOSSES:
            raise ValueError(f"norm_loss must be level or order, got {self.norm_loss!r}")
        if self.holdout not in HOLDOUTS:
            raise ValueError(f"holdout must be one of {HOLDOUTS}, got {self.holdout!r}")
        manifolds = MANIFOLDS if self.lookup else TEXT_MANIFOLDS
        if self.manifold not in manifolds:
            raise ValueError(f"manifold must be one of {manifolds} for model {self.model!r}")
        if self.gloss and self.holdout.startswith("hit-"):
            raise ValueError("HiT's protocol names each entity (its first lemma): no --gloss")
        if self.gloss and (self.lookup or self.hierarcaps):  # taken, and logged as gloss True (a new user's find)
            raise ValueError("--gloss: WordNet's glosses in a text model's node texts, not for "
                             f"{'--model lookup' if self.lookup else 'HierarCaps (its captions are the texts)'} "
                             "(it changes nothing)")  # fmt: skip
        if self.lookup and self.holdout == "nodes":
            raise ValueError("a lookup table cannot embed held-out nodes: use --holdout edges or a text model")
        for name in ("dim", "epochs", "batch_size", "negatives", "max_length", "max_eval_nodes", "eval_every",
                     "patience", "workers"):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in (
            "mobius_layers",
            "max_steps",
            "hidden",
            "head_epochs",
            "encoder_lr",
            "burnin_epochs",
            "norm_weight",
            "margin",
            "triplet_margin",
            "max_failures",
            "sibling_negatives",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        check_seed(self.seed)
        for name in ("curvature", "head_lr", "burnin_lr_factor"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.lr is not None and self.lr <= 0:
            raise ValueError("lr must be positive (0 no longer means the model's default: leave it out, or null)")
        for name in ("lr", "head_lr", "encoder_lr"):
            common.check_learning_rate(name, getattr(self, name))
        if not 0.0 <= self.holdout_share < 1.0:
            raise ValueError("holdout_share must be in [0, 1)")
        if self.holdout in ("edges", "nodes") and self.holdout_share == 0:
            raise ValueError(f"holdout_share must be above 0 to hold out {self.holdout} (or --holdout none)")

    def resolved(self) -> HierarchyTrainConfig:
        """This config with every setting not given (None) set to its model's value in
        `MODEL_DEFAULTS`, and a HierarCaps directory as its absolute path: what trains,
        and what the run records (`evaluate hierarchy`, run from another directory, reads
        the same data, and two runs compare as of one data by the directory they read)."""
        own = dict(MODEL_DEFAULTS["lookup" if self.lookup else "text"])
        if self.head == "hit":  # nothing of its own to fit: the run records what trained
            own |= {"hidden": 0, "head_epochs": 0, "head_lr": None, "lr": None}
        given = {name: value for name, value in own.items() if getattr(self, name) is None}
        if self.hierarcaps is not None:  # a relative directory was read again from wherever evaluation ran
            given["data"] = f"hierarcaps:{os.path.abspath(self.hierarcaps)}"
        return replace(self, **given)

    @property
    def lookup(self) -> bool:
        """Whether the model is a lookup table (`--model lookup`), not a text model."""
        return self.model == "lookup"

    @property
    def hierarcaps(self) -> Path | None:
        """The directory of `--data hierarcaps:DIR` (`~` expanded), None for other data."""
        return Path(self.data.removeprefix("hierarcaps:")).expanduser() if self.data.startswith("hierarcaps:") else None

    def to_dict(self) -> dict:
        """The config as JSON-ready values (the run's params and `config.json`)."""
        return asdict(self)


def space(cfg: HierarchyTrainConfig) -> str:
    """Where a run's points live, as its name and the console say it: HiT's ball (the
    encoder's width, whatever --dim says) or the manifold and --dim."""
    return "HiT's ball" if cfg.head == "hit" else f"{cfg.manifold} {cfg.dim}-d"


def _finish(
    trained: Trained, data: HierarchyData, cfg: HierarchyTrainConfig, run_id: str, register: bool
) -> TrainOutcome:
    import mlflow

    from models.hierarchy_metrics import no_chain_read, node_points
    from workflows.figures import poincare_disk, specificity_by_depth
    from workflows.tracking.hierarchy_model import NAME, log_hierarchy_model
    from workflows.tracking.hierarchy_model import norms as norms_of
    from workflows.tracking.store import Promotion
    from workflows.tracking.store import register as register_model

    split, directory, last = data.split, trained.model, trained.last_step
    model = load_model(directory, cfg, split.full.n_nodes)
    points = node_points(model, split.full.texts)  # once, for the metrics and the figures
    metrics = evaluate_with_baselines(model, data, cfg, points)
    metrics |= {"best_step": trained.state["best_step"], "steps": last}
    # once, at the last step (the loop's evaluations are the eval/ curves): the logged model's
    mlflow.log_metrics(metrics, step=last)
    mlflow.log_dict(cfg.to_dict(), "config.json")
    figures = []
    title = f"{cfg.data}: {cfg.model}, MAP {metrics['map']:.3f}"
    if cfg.manifold == "poincare":  # more than 2 dimensions drawn around the root (disk_points)
        disk = directory.parent / "poincare_disk.png"
        curvature = getattr(model, "curvature", 1.0)  # a lookup table's ball has curvature 1
        figures.append(poincare_disk(points, split.full.texts, split.full.depth, title, disk, curvature=curvature))
    if data.chains is None:  # WordNet: the norm of every node by its depth
        norms = norms_of(model, points)
        figures.append(
            specificity_by_depth(norms, split.full.depth, title, directory.parent / "specificity_by_depth.png")
        )
    for figure in figures:
        mlflow.log_artifact(str(figure))
    figures = [f.name for f in figures]
    notes = tuple(note for note in [no_chain_read(metrics)] if note)  # HierarCaps with no test chain read
    if cfg.lookup:
        mlflow.log_artifacts(str(directory), "table")
        return TrainOutcome(run_id, f"runs:/{run_id}/table", None, Promotion(False), metrics, trained.where, figures,
                            trained.stopped, notes)  # fmt: skip
    model_uri = log_hierarchy_model(directory, cfg.model)
    described = (f"{cfg.model} -> {cfg.manifold} ({cfg.dim}-d) on {cfg.data}, held out: {cfg.holdout}: "
                 f"reconstruction MAP {metrics['map']:.4f}.")  # fmt: skip
    registered, champion = (
        register_model(model_uri, NAME, "map", same=CHAMPION_SAME, description=described)
        if register
        else (None, Promotion(False))
    )
    return TrainOutcome(run_id, f"runs:/{run_id}/model", registered, champion, metrics, trained.where, figures,
                        trained.stopped, notes)  # fmt: skip


@dataclass(frozen=True)
class TrainHierarchyJob:
    """What `sessionflow train hierarchy` trains, how, and where it records the run."""

    hierarchy: HierarchyTrainConfig = field(default_factory=HierarchyTrainConfig, metadata={"prefix": ""})
    experiment: str = common.experiment(EXPERIMENT)
    register: bool = common.register()
    storage: str | None = common.storage()
    address: str | None = common.address()

    def __post_init__(self) -> None:
        common.check_experiment(self.experiment, EXPERIMENT)


def evaluation_digest(data: HierarchyData, cfg: HierarchyTrainConfig) -> str:
    """A digest of what the champion's metric (reconstruction MAP) and link prediction are
    computed on (`common.rows_digest`): every node by name (each child's ancestors are
    ranked among all of them), the training pairs and held-out pairs evaluated (a sample
    of `max_eval_nodes` children, drawn by the seed, where there are more) and
    HierarCaps' test chains. Two runs with the same digest are scored on the same data,
    whatever their seed, path or settings (the seed draws nothing without a held-out
    split or a sample); a directory whose files changed is other data under one path."""
    import numpy as np
    import polars as pl

    from models.hierarchy_metrics import of_children
    from workflows.jobs.common import rows_digest  # the jobs' digest, as the session model's and segmenter's

    split, most = data.split, cfg.max_eval_nodes
    names = split.full.names

    def pairs(kind: str, edges: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"kind": kind, "a": names[edges[:, 0]], "b": names[edges[:, 1]]},
                            schema={"kind": pl.String, "a": pl.String, "b": pl.String})  # fmt: skip

    parts = [pl.DataFrame({"kind": "node", "a": names, "b": ""}, schema={"kind": pl.String, "a": pl.String,
                                                                         "b": pl.String})]  # fmt: skip
    parts.append(pairs("reconstruction", of_children(split.train_edges(), most, cfg.seed)))
    if len(split.test_edges):
        parts.append(pairs("link", of_children(split.test_edges, most, cfg.seed)))
    if data.chains is not None:
        parts.append(pl.DataFrame({"kind": "chain", "a": [" => ".join(c) for c in data.chains.tolist()], "b": ""}))
    return rows_digest(pl.concat(parts))


def run(job: TrainHierarchyJob, run_name: str | None = None) -> TrainOutcome:
    """Train, evaluate, log and (text models, optionally) register a hierarchy model; see the module docstring.

    ValueError / FileNotFoundError for bad settings or data.
    """
    cfg = job.hierarchy.resolved()
    require_gpus(gpus_needed(cfg), job.address, "--gpu", "train on CPUs without --gpu")  # before the imports
    require_cpus(cfg.workers, job.address)
    from models.encoder import check_encoder
    from workflows.tracking.store import training_run

    if cfg.head == "hit" and cfg.dim != DEFAULT_DIM:  # a --dim given beside it was lost without a word
        raise ValueError(f"--head hit embeds in the encoder's own width: no --dim (given {cfg.dim})")
    if not cfg.lookup:
        encoder_width = check_encoder(cfg.model, max_length=cfg.max_length)  # before any worker starts
        if cfg.head == "hit":  # HiT's head keeps the encoder's width: the run records it
            cfg = replace(cfg, dim=encoder_width)
    require_storage(job.storage)
    data = load_data(cfg)
    refuse_unread_nodes(data, cfg)  # before Ray and the run: such a node has no point (NaN)
    split = data.split
    params = {**cfg.to_dict(), "nodes": split.full.n_nodes, "train_edges": len(split.train_edges()),
              "test_edges": len(split.test_edges), "test_nodes": len(split.test_nodes),
              "eval_digest": evaluation_digest(data, cfg)}  # fmt: skip
    named = ", joined lemmas alone" if cfg.names == "text" else ""  # the default names every run
    named += f", {cfg.sibling_negatives} sibling negatives" if cfg.sibling_negatives else ""
    name = run_name or f"{cfg.model} {space(cfg)} on {cfg.data}{named}, held out: {cfg.holdout}"
    description = (f"Hierarchy model: {cfg.data} ({split.full.n_nodes:,} nodes) embedded by {cfg.model} in a "
                   f"{cfg.dim}-d {cfg.manifold}; held out: {cfg.holdout}.")  # fmt: skip
    task = HierarchyTask(cfg, data)
    require_one_global_batch(task.examples, cfg)
    with (
        training_ray(job.address, job.storage),
        training_run(job.experiment, "train hierarchy", params, name, description) as run_id,
        train_best(task, run_id, "hierarchy-model", job.storage) as trained,
    ):
        _log_inputs(data, cfg)
        return _finish(trained, data, cfg, run_id, job.register)


def _log_inputs(data: HierarchyData, cfg: HierarchyTrainConfig) -> None:
    """The tables the run read, as MLflow dataset inputs (as `train session` logs its
    pairs): the (child, ancestor) pairs trained on, those held out, and HierarCaps'
    test chains, by node text."""
    import numpy as np
    import polars as pl

    from hierarchies.datasets import Hierarchy
    from sessions import storage
    from workflows.tracking.store import log_table

    split = data.split
    source = storage.absolute(cfg.hierarcaps) if cfg.hierarcaps else f"{cfg.data} (WordNet 3.0, nltk)"

    def pairs(h: Hierarchy, edges: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"child": h.texts[edges[:, 0]], "ancestor": h.texts[edges[:, 1]]},
                            schema={"child": pl.String, "ancestor": pl.String})  # fmt: skip

    log_table(pairs(split.train, split.train.edges), source, "hierarchy pairs (train)", "training")
    if len(split.test_edges):
        log_table(pairs(split.full, split.test_edges), source, "hierarchy pairs (held out)", "evaluation")
    if data.chains is not None:
        chains = pl.DataFrame(data.chains.astype(object), schema=[f"level_{i}" for i in range(data.chains.shape[1])],
                              orient="row")  # fmt: skip
        log_table(chains, source, "HierarCaps test chains", "evaluation")
