"""Training hierarchy embeddings with Ray Train (DDP), tracked in MLflow.

Two kinds of model, one loop (`workflows.training.loop`):

- `--model lookup`: a point per node (Nickel & Kiela 2017; `models.poincare`),
  Riemannian SGD with a burn-in (lr x `burnin_lr_factor`, negatives by frequency) and
  `negatives` sampled non-ancestors per pair; manifold poincare, euclidean or order;
- `--model NAME` (an encoder name of the session model): the text model
  (`models.hierarchy`), Riemannian Adam (the encoder at `encoder_lr`), negatives
  shared by the batch (every node of the batch is encoded once), plus the norm term
  (a child `margin` per level farther from the origin than its ancestor).

Examples are the (child, ancestor) pairs of the closure, less a held-out share of
edges or nodes (`holdout`). Every evaluation computes reconstruction MAP and mean
rank on the training pairs (the monitor: the best checkpoint is the one of highest
`map`), link prediction on the held-out pairs, and Spearman(norm, depth). The text
model is registered as `hierarchy-model` (pyfunc: text -> point, norm) with
`champion` on the best reconstruction MAP; lookup tables are logged, not registered
(they cannot place a text they have not seen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hierarchies.datasets import Split, split_edges, split_nodes
from workflows.training.loop import Trained, TrainTask, merge_shards, train_best

EXPERIMENT = "hierarchy-model"
DATA = ("wordnet-mammals", "wordnet-nouns", "hierarcaps:PATH")
HOLDOUTS = ("none", "edges", "nodes")


@dataclass(frozen=True)
class HierarchyTrainConfig:
    """What `sessionflow train hierarchy` trains, and how."""

    data: str = "wordnet-mammals"
    model: str = "minilm-local"  # lookup, or an encoder name: minilm-local, tiny, a Hub id or a directory
    manifold: str = "poincare"  # poincare, euclidean (and order for lookup)
    dim: int = 10
    curvature: float = 1.0
    mobius_layers: int = 0
    gloss: bool = False  # node text = lemmas + ": " + gloss
    holdout: str = "none"  # none, edges or nodes
    holdout_share: float = 0.1
    epochs: int = 5
    max_steps: int = 0
    batch_size: int = 64  # pairs per worker and step
    negatives: int = 64
    lr: float = 0.0  # 0: 25 for lookup (Riemannian SGD), 1e-3 for the text model's head (Riemannian Adam)
    encoder_lr: float = 3e-5
    burnin_epochs: int = 0  # lookup: 10 recommended
    burnin_lr_factor: float = 0.1
    norm_weight: float = 1.0
    margin: float = 0.5  # norm gap per level between a child and its ancestor
    norm_loss: str = "level"  # level: the gap is margin x levels (squared error); order: at least margin (hinge)
    max_length: int = 32
    max_eval_nodes: int = 2000  # reconstruction ranks the ancestors of at most this many nodes
    eval_every: int = 100
    patience: int = 3
    workers: int = 1
    gpu: bool = False
    amp: bool = False  # the hyperbolic head runs in float64 anyway
    max_failures: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.data not in DATA[:2] and not self.data.startswith("hierarcaps:"):
            raise ValueError(f"data must be one of {', '.join(DATA)}, got {self.data!r}")
        if self.hierarcaps and (self.lookup or self.holdout != "none"):
            raise ValueError("HierarCaps trains text models, evaluated on its test hierarchies (no --holdout)")
        if self.norm_loss not in ("level", "order"):
            raise ValueError(f"norm_loss must be level or order, got {self.norm_loss!r}")
        if self.holdout not in HOLDOUTS:
            raise ValueError(f"holdout must be one of {HOLDOUTS}, got {self.holdout!r}")
        manifolds = ("poincare", "euclidean", "order") if self.lookup else ("poincare", "euclidean")
        if self.manifold not in manifolds:
            raise ValueError(f"manifold must be one of {manifolds} for model {self.model!r}")
        if self.lookup and self.holdout == "nodes":
            raise ValueError("a lookup table cannot embed held-out nodes: use --holdout edges or a text model")
        for name in ("dim", "epochs", "batch_size", "negatives", "eval_every", "patience", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @property
    def lookup(self) -> bool:
        return self.model == "lookup"

    @property
    def hierarcaps(self) -> Path | None:
        return Path(self.data.removeprefix("hierarcaps:")) if self.data.startswith("hierarcaps:") else None

    @property
    def learning_rate(self) -> float:
        return self.lr or (25.0 if self.lookup else 1e-3)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HierarchyData:
    """What a hierarchy model trains and is evaluated on."""

    split: Split
    chains: np.ndarray | None = None  # HierarCaps test hierarchies (n, 4), general first


def load_data(cfg: HierarchyTrainConfig) -> HierarchyData:
    """The hierarchy of `cfg.data`, its held-out part, and for HierarCaps the test chains."""
    if cfg.hierarcaps:
        from hierarchies.hierarcaps import read_test_chains, train_hierarchy

        return HierarchyData(split_edges(train_hierarchy(cfg.hierarcaps), 0.0), read_test_chains(cfg.hierarcaps))
    return HierarchyData(_wordnet_split(cfg))


def _wordnet_split(cfg: HierarchyTrainConfig) -> Split:
    from hierarchies.datasets import wordnet_mammals, wordnet_nouns

    h = (wordnet_mammals if cfg.data == "wordnet-mammals" else wordnet_nouns)(gloss=cfg.gloss)
    if cfg.holdout == "edges":
        return split_edges(h, cfg.holdout_share, cfg.seed)
    if cfg.holdout == "nodes":
        return split_nodes(h, cfg.holdout_share, cfg.seed)
    return split_edges(h, 0.0, cfg.seed)


def evaluate_points(
    points: np.ndarray, distance, split: Split, max_nodes: int, seed: int = 0, device: Any = "cpu"
) -> dict[str, float]:
    """Reconstruction (training pairs), link prediction (held-out pairs) and Spearman(norm, depth).

    `points` (n, d) are the points of every node of `split.full`; `distance(x, y)` the
    model's distance over torch tensors; reconstruction ranks the ancestors of
    at most `max_nodes` children (a seeded sample), each among all nodes; `device`: the
    model's (a ball's curvature is a parameter, on the GPU with the model).
    """
    import torch

    from hierarchies.metrics import link_prediction, reconstruction, spearman_norm_depth
    from models.poincare import distances

    table = _Points(torch.from_numpy(points).to(device), distance)
    train_edges = split.train_edges()
    children = np.unique(train_edges[:, 0])
    if len(children) > max_nodes:
        keep = np.random.default_rng(seed).choice(children, max_nodes, replace=False)
        sample = train_edges[np.isin(train_edges[:, 0], keep)]
    else:
        sample = train_edges
    n = len(points)
    metrics = dict(reconstruction(lambda u: distances(table, u), sample, n))
    if len(split.test_edges):
        linked = link_prediction(lambda u: distances(table, u), split.test_edges, train_edges, n)
        metrics |= {f"link_{k}": v for k, v in linked.items()}
    # the distance from the origin of the ball grows with the Euclidean norm: the same order
    metrics["spearman_norm_depth"] = spearman_norm_depth(np.linalg.norm(points, axis=1), split.full.depth)
    return metrics


def evaluate_model(
    module,
    data: HierarchyData,
    cfg: HierarchyTrainConfig,
    rank: int = 0,
    size: int = 1,
    points: np.ndarray | None = None,
) -> dict:
    """`evaluate_points` of every node (`points`, encoded here unless given), and for
    HierarCaps `chain_metrics`; the workers share the encoding."""
    if points is None:
        points = node_points(module, data.split.full.texts, rank, size)
    device = next(module.parameters()).device
    metrics = evaluate_points(points, module.distance, data.split, cfg.max_eval_nodes, cfg.seed, device)
    if data.chains is not None:
        metrics |= chain_metrics(module, data.chains, rank, size)
    return metrics


def evaluate_with_baselines(
    module, data: HierarchyData, cfg: HierarchyTrainConfig, points: np.ndarray | None = None
) -> dict[str, float]:
    """`evaluate_model` of a trained model, and on HierarCaps the pretrained encoder's
    numbers next to it (`pretrained_chain_metrics`)."""
    metrics = evaluate_model(module, data, cfg, points=points)
    if data.chains is not None:
        metrics |= pretrained_chain_metrics(cfg.model, data.chains, cfg.max_length)
    return metrics


def chain_metrics(module, chains: np.ndarray, rank: int = 0, size: int = 1) -> dict[str, float]:
    """On HierarCaps' test hierarchies: Kendall's tau of each chain's norms against its
    levels, and hierarchical retrieval (`hierarchies.hierarcaps.retrieval_task`): a
    query retrieves the captions more general than itself (smaller norm), nearest first."""
    import torch

    from hierarchies.hierarcaps import retrieval_task
    from hierarchies.metrics import chain_retrieval, kendall_levels

    pool, index, queries, relevant = retrieval_task(chains)
    device = next(module.parameters()).device
    points = torch.from_numpy(node_points(module, pool, rank, size)).to(device)
    norms = module.norm(points).cpu().numpy()
    distance = np.concatenate(
        [module.distance(points[queries[i : i + 100], None], points[None]).cpu().numpy()
         for i in range(0, len(queries), 100)]
    )  # fmt: skip
    eligible = norms[None, :] < norms[queries, None]
    return {"kendall_tau": kendall_levels(norms[index]), **chain_retrieval(distance, eligible, relevant)}


def pretrained_chain_metrics(encoder_name: str, chains: np.ndarray, max_length: int = 32) -> dict[str, float]:
    """The baselines of HierarCaps, from the pretrained encoder (mean pooling, not
    normalised): Kendall's tau of its Euclidean norm against the levels, and retrieval
    by cosine similarity among all other captions (it has no notion of more general)."""
    from hierarchies.hierarcaps import retrieval_task
    from hierarchies.metrics import chain_retrieval, kendall_levels
    from models.encoder import load_encoder

    pool, index, queries, relevant = retrieval_task(chains)
    vectors = load_encoder(encoder_name, max_length=max_length, normalize=False).encode(pool.tolist())
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.maximum(norms, 1e-12)[:, None]
    eligible = np.ones_like(relevant)
    eligible[np.arange(len(queries)), queries] = False
    retrieval = chain_retrieval(1.0 - unit[queries] @ unit.T, eligible, relevant)
    return {"kendall_tau_pretrained_norm": kendall_levels(norms[index]),
            **{f"pretrained_cosine_{k}": v for k, v in retrieval.items()}}  # fmt: skip


class _Points:
    """Fixed points ranked like a lookup table (`models.poincare.distances`)."""

    def __init__(self, weight, distance) -> None:
        self.weight, self.distance = weight, distance

    def __call__(self, idx):
        return self.weight[idx]


class HierarchyTask(TrainTask):
    """The hierarchy models' part of the shared loop."""

    monitor = "map"
    unit = "edges"

    def __init__(self, cfg: HierarchyTrainConfig, data: HierarchyData) -> None:
        self.cfg, self.data, self.split = cfg, data, data.split
        # Euclidean gradients of points near the ball's boundary are large by nature (the
        # Riemannian step rescales them): clipping them would freeze the lookup table
        self.clip_norm = None if cfg.lookup else 1.0
        self.edges = self.split.train_edges()  # indices into split.full
        self.steps_per_epoch = max(1, len(self.edges) // (cfg.workers * cfg.batch_size))

    @property
    def examples(self) -> int:
        return len(self.edges)

    def build(self, resume: Path | None, device):
        import ray.train
        import torch

        from models.poincare import LookupEmbedding, NegativeSampler

        self.rank = ray.train.get_context().get_world_rank()
        self.sampler = NegativeSampler(self.edges, self.split.full.n_nodes, np.random.default_rng(self.cfg.seed))
        if self.cfg.lookup:
            model = LookupEmbedding(self.split.full.n_nodes, self.cfg.dim, self.cfg.manifold, seed=self.cfg.seed)
            if resume:
                model.load_state_dict(torch.load(resume / "table.pt", map_location="cpu", weights_only=True))
            return model.to(device)
        from models.encoder import load_encoder
        from models.hierarchy import HierarchyTextModel, load_hierarchy_model

        if resume:
            return load_hierarchy_model(resume).to(device)
        encoder = load_encoder(self.cfg.model, max_length=self.cfg.max_length, seed=self.cfg.seed)
        return HierarchyTextModel(
            encoder, self.cfg.dim, manifold=self.cfg.manifold, curvature=self.cfg.curvature,
            mobius_layers=self.cfg.mobius_layers, seed=self.cfg.seed,
        ).to(device)  # fmt: skip

    def optimizer(self, model, total_steps: int):
        import geoopt
        import torch

        cfg, lr = self.cfg, self.cfg.learning_rate
        if cfg.lookup:
            optimizer = geoopt.optim.RiemannianSGD(model.parameters(), lr=lr)
        else:
            module = getattr(model, "module", model)
            encoder = {id(p) for p in module.encoder.parameters()}
            head = [p for p in module.parameters() if id(p) not in encoder and p.requires_grad]
            trainable = [p for p in module.encoder.parameters() if p.requires_grad]
            optimizer = geoopt.optim.RiemannianAdam(
                [{"params": trainable, "lr": cfg.encoder_lr}, {"params": head, "lr": lr}]
            )
        burnin = cfg.burnin_epochs * self.steps_per_epoch
        factor = cfg.burnin_lr_factor
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor if step < burnin else 1.0)

    def loss(self, model, module, rows: np.ndarray, step: int, device):
        import torch

        from models.hierarchy import hierarchy_loss
        from models.poincare import lookup_loss

        cfg, batch = self.cfg, self.edges[rows]
        self.sampler.rng = np.random.default_rng([cfg.seed, self.rank, step])  # the same draws after a resume
        burnin = step < cfg.burnin_epochs * self.steps_per_epoch
        if cfg.lookup:
            negatives, valid = self.sampler(batch[:, 0], cfg.negatives, by_frequency=burnin)
            return lookup_loss(model, batch, negatives, valid, margin=1.0)
        # training nodes only: a held-out node's text is never seen, not even as a negative
        negatives = self.split.nodes[self.sampler.rng.integers(0, len(self.split.nodes), cfg.negatives)]
        valid = ~self.sampler.excluded(batch[:, 0], np.broadcast_to(negatives, (len(batch), cfg.negatives)))
        nodes, where = np.unique(np.concatenate([batch[:, 0], batch[:, 1], negatives]), return_inverse=True)
        tokens = module.encoder.tokenize(self.split.full.texts[nodes].tolist())
        points = model(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
        b = len(batch)
        child, ancestor, negative = points[where[:b]], points[where[b : 2 * b]], points[where[2 * b :]]
        depth = self.split.full.depth
        levels = torch.from_numpy(depth[batch[:, 0]] - depth[batch[:, 1]]).to(device)
        return hierarchy_loss(module, child, ancestor, negative, torch.from_numpy(valid).to(device),
                              cfg.norm_weight, cfg.margin, levels, cfg.norm_loss)  # fmt: skip

    def evaluate(self, module, rank: int, size: int) -> dict[str, float]:
        return evaluate_model(module, self.data, self.cfg, rank, size)

    def save(self, module, directory: Path) -> None:
        import torch

        if self.cfg.lookup:
            directory.mkdir(parents=True, exist_ok=True)
            torch.save(module.state_dict(), directory / "table.pt")
        else:
            module.save(directory)


def node_points(module, texts: np.ndarray, rank: int = 0, size: int = 1) -> np.ndarray:
    """float64 points of every node: the table of a lookup model, or each worker's share of the texts."""
    from models.poincare import LookupEmbedding

    if isinstance(module, LookupEmbedding):
        return (
            module.weight.detach().abs().cpu().numpy()
            if module.kind == "order"
            else module.weight.detach().cpu().numpy()
        )
    return merge_shards(module.points(texts[rank::size].tolist()), rank, size, len(texts))


@dataclass(frozen=True)
class HierarchyOutcome:
    run_id: str
    model_uri: str  # runs:/<run_id>/model
    registered: str | None  # models:/hierarchy-model/<version>
    champion: bool
    metrics: dict
    figures: list[str]


def train_hierarchy(
    cfg: HierarchyTrainConfig,
    *,
    experiment: str = EXPERIMENT,
    register: bool = True,
    storage: str | None = None,
    address: str | None = None,
    run_name: str | None = None,
) -> HierarchyOutcome:
    """Train, evaluate, log and (text models, optionally) register a hierarchy model."""
    from workflows.tracking.store import training_run

    data = load_data(cfg)
    split = data.split
    params = {**cfg.to_dict(), "nodes": split.full.n_nodes, "train_edges": len(split.train_edges()),
              "test_edges": len(split.test_edges), "test_nodes": len(split.test_nodes)}  # fmt: skip
    with (
        training_run(experiment, "train hierarchy", params, run_name) as run_id,
        train_best(HierarchyTask(cfg, data), run_id, "hierarchy-model", storage, address) as trained,
    ):
        return _finish(trained, data, cfg, run_id, register)


def load_model(directory: Path, cfg: HierarchyTrainConfig, n_nodes: int) -> Any:
    """A model saved by `HierarchyTask.save`."""
    import torch

    from models.hierarchy import load_hierarchy_model
    from models.poincare import LookupEmbedding

    if not cfg.lookup:
        return load_hierarchy_model(directory)
    table = LookupEmbedding(n_nodes, cfg.dim, cfg.manifold)
    table.load_state_dict(torch.load(directory / "table.pt", map_location="cpu", weights_only=True))
    return table


def _finish(trained: Trained, data: HierarchyData, cfg, run_id: str, register: bool):
    import mlflow

    from workflows.figures import poincare_disk, specificity_by_depth
    from workflows.tracking.hierarchy_model import NAME, log_hierarchy_model
    from workflows.tracking.hierarchy_model import norms as norms_of
    from workflows.tracking.store import register as register_model

    split, directory, last = data.split, trained.model, trained.last_step
    model = load_model(directory, cfg, split.full.n_nodes)
    points = node_points(model, split.full.texts)  # once, for the metrics and the figures
    metrics = evaluate_with_baselines(model, data, cfg, points)
    metrics |= {"best_step": trained.state["best_step"], "steps": last}
    # at the last step, after the loop's own values: the run shows the logged model's
    mlflow.log_metrics(metrics, step=last)
    mlflow.log_dict(cfg.to_dict(), "config.json")
    figures = []
    title = f"{cfg.data}: {cfg.model}, MAP {metrics['map']:.3f}"
    if cfg.dim == 2 and cfg.manifold == "poincare":
        figures.append(
            poincare_disk(points, split.full.texts, split.full.depth, title, directory.parent / "poincare_disk.png")
        )
    if data.chains is None:  # WordNet: the norm of every node by its depth
        norms = norms_of(model, points)
        figures.append(
            specificity_by_depth(norms, split.full.depth, title, directory.parent / "specificity_by_depth.png")
        )
    for figure in figures:
        mlflow.log_artifact(str(figure))
    figures = [f.name for f in figures]
    if cfg.lookup:
        mlflow.log_artifacts(str(directory), "table")
        return HierarchyOutcome(run_id, f"runs:/{run_id}/table", None, False, metrics, figures)
    model_uri = log_hierarchy_model(directory, cfg.model)
    registered, champion = (
        register_model(model_uri, NAME, "map", same=("data", "holdout")) if register else (None, False)
    )
    return HierarchyOutcome(run_id, f"runs:/{run_id}/model", registered, champion, metrics, figures)
