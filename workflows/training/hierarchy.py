"""The hierarchy models' part of the shared Ray Train loop (`workflows.training.loop`).

`HierarchyTask` trains one of two models on the (child, ancestor) pairs of a
hierarchy's closure (`load_data`: WordNet, less a held-out share of edges or nodes,
or HiT's training edges, `hit_data`; or HierarCaps):

- a lookup table (`models.poincare`, Nickel & Kiela 2017): Riemannian SGD, negatives
  per pair (`NegativeSampler`; by frequency during the burn-in), `lookup_loss`;
- the text model (`models.hierarchy`): Adam (`adam`: Riemannian Adam where a parameter
  lives on a manifold; the encoder at its own rate), negatives shared by the batch
  (`NegativeSampler.shared`, drawn from the training nodes only) and, if asked, each
  pair's own (the child's siblings: `hierarchies.datasets.Siblings`), each node under
  one of its names (`names` all: drawn anew every step from `Hierarchy.aliases`),
  `hierarchy_batch_loss`.

The negatives and names of a step come from a generator seeded by (seed, rank, step),
so a run resumed from a checkpoint redraws exactly the draws of the run that died. Every
evaluation is `evaluate_model` (`models.hierarchy_metrics`: reconstruction, link
prediction, Spearman(norm, depth), and on HierarCaps the chain metrics). The driver
is `workflows.jobs.train_hierarchy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hierarchies.datasets import Hierarchy, NodeNames, PairIndex, Siblings, Split, split_edges, split_nodes
from hierarchies.hit import TASKS, HitSplits, hit_splits, hit_wordnet
from workflows.training.loop import Batches, ModelNotFinite, TrainTask, steps_per_epoch

if TYPE_CHECKING:
    import torch

    from models.hierarchy import HierarchyTextModel
    from models.poincare import LookupEmbedding
    from workflows.jobs.train_hierarchy import HierarchyTrainConfig


@dataclass(frozen=True)
class HierarchyData:
    """What a hierarchy model trains and is evaluated on."""

    split: Split
    chains: np.ndarray | None = None  # HierarCaps test hierarchies (n, 4), general first
    hit: HitSplits | None = None  # HiT's protocol (`--holdout hit-multi` or `hit-mixed`)
    hit_tasks: tuple[str, ...] = ()  # the tasks whose test pairs the model never trained on
    dropped_two_way_pairs: int = 0  # HierarCaps pairs that chains order both ways (`hierarchies.hierarcaps`)


def load_data(cfg: HierarchyTrainConfig) -> HierarchyData:
    """The hierarchy of `cfg.data`, its held-out part, and for HierarCaps the test chains."""
    if cfg.hierarcaps:
        from hierarchies.hierarcaps import chains_hierarchy, read_test_chains, train_chains, two_way_pairs

        chains = train_chains(cfg.hierarcaps)
        h, test = chains_hierarchy(chains), read_test_chains(cfg.hierarcaps)
        return HierarchyData(split_edges(h, 0.0), test, dropped_two_way_pairs=2 * len(two_way_pairs(chains)))
    if cfg.holdout.startswith("hit-"):
        return hit_data(hit_wordnet(cfg.data), cfg.holdout, cfg.seed)
    return HierarchyData(_wordnet_split(cfg))


def refuse_unread_nodes(data: HierarchyData, cfg: HierarchyTrainConfig) -> None:
    """ValueError in one line when the text model `cfg.model` cannot read the text of some
    node of `data` (its tokenizer reads it as unknown tokens alone, or no token:
    `models.encoder.unread_texts`, such as `蛋糕 🍰` to MiniLM): such a node has no point
    (NaN, by design), so it can neither train nor be scored, and it stopped training at
    its first evaluation as if the run had diverged, whatever the learning rates. It is
    refused rather than left out: a node is the ancestor of others, whose chains would
    lose a level without a word. A lookup table reads no text: nothing to check."""
    if cfg.lookup:
        return
    from models.encoder import load_tokenizer, unread_texts

    texts = data.split.full.texts
    unread = unread_texts(load_tokenizer(cfg.model), texts.tolist(), cfg.max_length)
    if unread.any():
        raise ValueError(unread_nodes_said(cfg.data, cfg.model, texts, unread))


def unread_nodes_said(data: str, model: str, texts: np.ndarray, unread: np.ndarray) -> str:
    """The one line that refuses the nodes `unread` ((n,) bool) of `texts` (n,) of `data`."""
    first = str(texts[np.flatnonzero(unread)[0]])
    return (f"{data}: {np.count_nonzero(unread):,} of its {len(texts):,} nodes have a text that {model} reads as "
            f"unknown tokens alone (the first: {first!r}), so no point can place them; remove or reword them in "
            "the data, or give --model an encoder whose vocabulary reads them")  # fmt: skip


def hit_data(h: Hierarchy, holdout: str, seed: int) -> HierarchyData:
    """HiT's protocol on `h` (`hierarchies.hit`): training on the task's training edges
    (direct edges only), its test positives held out for link prediction, and the
    tasks scored at every evaluation: `hit-multi` multi-hop inference; `hit-mixed`
    mixed-hop prediction, and multi-hop too (its test pairs are transitive: no model
    of either task trained on them). KeyError for another `holdout`; ValueError as
    `hierarchies.hit.hit_splits`."""
    splits = hit_splits(h, seed)
    task = {"hit-multi": "multi_hop", "hit-mixed": "mixed_hop"}[holdout]
    keep = PairIndex(splits.train[task], h.n_nodes).contains(h.edges[:, 0], h.edges[:, 1])
    split = Split(h, h.with_edges(keep), np.arange(h.n_nodes), splits.test[task].positives, np.empty(0, np.int64))
    return HierarchyData(split, hit=splits, hit_tasks=TASKS if task == "mixed_hop" else (task,))


def adam(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """Adam over parameter `groups` (torch's form: dicts with "params" and "lr"): geoopt's
    `RiemannianAdam` (Bécigneul & Ganea 2019) when a parameter lives on a manifold (a
    `geoopt.ManifoldParameter`), else torch's `Adam` with its multi-tensor update. On
    Euclidean parameters the two are one update, p − lr·m̂ / (√v̂ + ε), with the same
    defaults; torch's takes 10.6 ms a step of the text model's head fit on the mammals
    against 12.0 ms (2 cores), the same head to float rounding."""
    import geoopt
    import torch

    if any(isinstance(p, geoopt.ManifoldParameter) for g in groups for p in g["params"]):
        return geoopt.optim.RiemannianAdam(groups)
    return torch.optim.Adam(groups, foreach=True)


def _wordnet_split(cfg: HierarchyTrainConfig) -> Split:
    from hierarchies.datasets import wordnet_mammals, wordnet_nouns

    h = (wordnet_mammals if cfg.data == "wordnet-mammals" else wordnet_nouns)(gloss=cfg.gloss)
    if cfg.holdout == "edges":
        return split_edges(h, cfg.holdout_share, cfg.seed)
    if cfg.holdout == "nodes":
        return split_nodes(h, cfg.holdout_share, cfg.seed)
    return split_edges(h, 0.0, cfg.seed)


class HierarchyTask(TrainTask):
    """The hierarchy models' part of the shared loop."""

    monitor = "map"
    unit = "edges"

    def __init__(self, cfg: HierarchyTrainConfig, data: HierarchyData) -> None:
        cfg = cfg.resolved()  # the model's own defaults for what was not given
        self.cfg, self.data, self.split = cfg, data, data.split
        # Euclidean gradients of points near the ball's boundary are large by nature (the
        # Riemannian step rescales them): clipping them would freeze the lookup table
        self.clip_norm = None if cfg.lookup else 1.0
        self.edges = self.split.train_edges()  # indices into split.full
        self.steps_per_epoch = steps_per_epoch(len(self.edges), cfg.workers, cfg.batch_size)  # `Batches`' epochs
        self.fitted: dict[str, float] = {}  # what `fit_head` did, for `built`
        full = self.split.full  # a text model's names: all of each node's, or its text alone
        self.names = full.aliases if cfg.names == "all" else NodeNames.single(full.texts)
        train = self.split.train  # siblings by the training hierarchy's direct edges, in `full`'s indices
        direct = self.split.nodes[train.edges[train.direct]]
        self.siblings = Siblings(direct, full.n_nodes) if cfg.sibling_negatives else None
        from models.poincare import NegativeSampler

        # HiT's closed world: no ancestor is a negative, held out or not (`hierarchies.hit`)
        known = full.edges if data.hit is not None else None
        self.sampler = NegativeSampler(self.edges, full.n_nodes, np.random.default_rng(cfg.seed), exclude=known)

    @property
    def examples(self) -> int:
        return len(self.edges)

    def build(self, resume: Path | None, device: Any, rank: int) -> Any:
        import torch

        from models.poincare import LookupEmbedding

        self.rank = rank
        if self.cfg.lookup:
            model = LookupEmbedding(self.split.full.n_nodes, self.cfg.dim, self.cfg.manifold, seed=self.cfg.seed)
            if resume:
                model.load_state_dict(torch.load(resume / "table.pt", map_location="cpu", weights_only=True))
            return model.to(device)
        from models.encoder import load_encoder
        from models.hierarchy import HierarchyTextModel, load_hierarchy_model

        if resume:  # its head was fitted before the checkpoint was written
            return load_hierarchy_model(resume).to(device)
        cfg = self.cfg
        encoder = load_encoder(cfg.model, max_length=cfg.max_length, normalize=cfg.head != "hit", seed=cfg.seed)
        model = HierarchyTextModel(
            encoder, cfg.dim, manifold=cfg.manifold, curvature=cfg.curvature, mobius_layers=cfg.mobius_layers,
            head=cfg.head, hidden=cfg.hidden, seed=cfg.seed,
        ).to(device)  # fmt: skip
        if cfg.head_epochs:  # 0 for HiT's head, which has nothing of its own to fit (`resolved`)
            self.fit_head(model)
        return model

    def fit_head(self, model: HierarchyTextModel) -> None:
        """The first stage of LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained
        Features"): `head_epochs` epochs of the head alone on the frozen encoder's vectors
        of the training nodes' names (computed once, in eval mode), with the run's loss,
        batch size, shared negatives and names drawn as `draw` does, Adam (`adam`) at
        `head_lr` decaying linearly to 0; the encoder is fine-tuned after. Every worker
        fits the same head (the draws depend on the seed and step alone; DDP starts from
        rank 0's anyway). `built` gives its last loss, steps and seconds (logged at step 0).
        """
        import time

        import torch

        from models.hierarchy import hierarchy_batch_loss

        cfg, full, nodes = self.cfg, self.split.full, self.split.nodes  # held-out nodes are never encoded
        texts, rows = self.names.texts, self.names.rows(nodes)
        vectors = torch.zeros(len(texts), model.encoder.dim, device=model.device)  # (L, H), every name
        encoded = model.encoder.encode(texts[rows].tolist())  # (names of N, H), eval mode: no dropout
        vectors[torch.from_numpy(rows).to(model.device)] = torch.from_numpy(encoded).to(model.device)
        head = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
        batches = Batches(len(self.edges), cfg.batch_size, cfg.seed, rank=0, size=1)
        total = batches.total_steps(cfg.head_epochs, 0)
        optimizer = adam([{"params": head, "lr": cfg.head_lr}])
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_decay(total))
        loss, start = torch.zeros(()), time.perf_counter()
        for step in range(total):
            batch = self.edges[batches(step)[1]]
            rng = np.random.default_rng([cfg.seed, step, 1 << 30])  # apart from `loss`'s draws
            negatives, valid, text_of = self.draw(batch, rng)
            loss = hierarchy_batch_loss(model, model, texts, full.depth, batch, negatives, valid,
                                        cfg.norm_weight, cfg.margin, cfg.norm_loss, cfg.ranking,
                                        cfg.triplet_margin, vectors, text_of)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        self.fitted = {"head_fit_loss": float(loss.detach()), "head_fit_steps": total,
                       "head_fit_seconds": time.perf_counter() - start}  # fmt: skip

    def draw(self, batch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A text model's draws for the (child, ancestor) pairs `batch` (B, 2): the
        negatives (K + B * S,) and which are valid for each pair (B, K + B * S), and the
        row in `names.texts` of the name each node goes by this step ((n,) int64).

        The first K negatives are shared by the batch, drawn among the training nodes (a
        held-out node's text is never seen, not even as a negative); then, with
        `sibling_negatives` S, pair i's own S siblings of its child (`Siblings`), valid
        for pair i alone."""
        self.sampler.rng = rng
        negatives, valid = self.sampler.shared(batch[:, 0], self.cfg.negatives, self.split.nodes)
        if self.siblings is not None:
            k, b = self.cfg.sibling_negatives, len(batch)
            own, own_valid = self.siblings.draw(batch[:, 0], k, rng, self.sampler.ancestors)  # (B, S)
            block = np.zeros((b, b, k), dtype=bool)  # pair i's siblings: its own columns only
            block[np.arange(b), np.arange(b)] = own_valid
            negatives = np.concatenate([negatives, own.ravel()])
            valid = np.concatenate([valid, block.reshape(b, b * k)], axis=1)
        return negatives, valid, self.names.draw(rng)

    def built(self) -> dict[str, float]:
        return self.fitted

    def optimizer(self, model: Any, total_steps: int) -> tuple[Any, Any]:
        """A lookup table: geoopt's Riemannian SGD (Bonnabel 2013, as Nickel & Kiela 2017) at `lr`;
        the text model: `adam` (Riemannian Adam, Bécigneul & Ganea 2019, where a parameter lives on
        a manifold), the encoder at `encoder_lr` and the head at `lr`. Both with a LambdaLR of
        `lr_factor` (the burn-in, then constant or linear decay)."""
        import geoopt
        import torch

        cfg, lr = self.cfg, self.cfg.lr
        if cfg.lookup:
            optimizer = geoopt.optim.RiemannianSGD(model.parameters(), lr=lr)
        else:
            module = getattr(model, "module", model)
            encoder = {id(p) for p in module.encoder.parameters()}
            head = [p for p in module.parameters() if id(p) not in encoder and p.requires_grad]
            trainable = [p for p in module.encoder.parameters() if p.requires_grad]
            groups = [{"params": trainable, "lr": cfg.encoder_lr}, {"params": head, "lr": lr}]
            optimizer = adam([g for g in groups if g["params"]])  # HiT's head has no parameters of its own
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor(total_steps))

    def lr_factor(self, total_steps: int) -> Callable[[int], float]:
        """The learning rate's factor at each step (0-based) of a run of `total_steps`:
        `burnin_lr_factor` during the burn-in, times 1 (`schedule` constant) or a linear
        decay from 1 to 0 over the run (`linear`)."""
        cfg, burnin = self.cfg, self.cfg.burnin_epochs * self.steps_per_epoch
        decay = linear_decay(total_steps)

        def factor(step: int) -> float:
            burning = cfg.burnin_lr_factor if step < burnin else 1.0
            return burning * (decay(step) if cfg.schedule == "linear" else 1.0)

        return factor

    def loss(self, model: Any, module: Any, rows: np.ndarray, step: int, device: Any) -> Any:
        """A lookup table: `lookup_loss` (Nickel & Kiela 2017's distance softmax, or Vendrov et
        al. 2016's margin for order embeddings), each pair's negatives drawn by frequency during
        the burn-in, uniformly after; the text model: `hierarchy_batch_loss` over `draw`'s
        negatives and names. Draws seeded by (seed, rank, step); a scalar () tensor."""
        from models.hierarchy import hierarchy_batch_loss
        from models.poincare import lookup_loss

        cfg, batch = self.cfg, self.edges[rows]
        rng = np.random.default_rng([cfg.seed, self.rank, step])  # the same draws after a resume
        if cfg.lookup:
            self.sampler.rng = rng
            burnin = step < cfg.burnin_epochs * self.steps_per_epoch
            negatives, valid = self.sampler(batch[:, 0], cfg.negatives, by_frequency=burnin)
            return lookup_loss(model, batch, negatives, valid, margin=cfg.margin)  # order embeddings' margin
        negatives, valid, text_of = self.draw(batch, rng)
        # the encoder runs: fine-tuned with the head (`fit_head` fitted the head first)
        return hierarchy_batch_loss(model, module, self.names.texts, self.split.full.depth, batch, negatives,
                                    valid, cfg.norm_weight, cfg.margin, cfg.norm_loss, cfg.ranking,
                                    cfg.triplet_margin, text_of=text_of)  # fmt: skip

    def evaluate(self, module: Any, rank: int, size: int) -> dict[str, float]:
        return evaluate_model(module, self.data, self.cfg, rank, size)

    def save(self, module: Any, directory: Path) -> None:
        import torch

        if self.cfg.lookup:
            directory.mkdir(parents=True, exist_ok=True)
            torch.save(module.state_dict(), directory / "table.pt")
        else:
            module.save(directory)


def linear_decay(total_steps: int) -> Callable[[int], float]:
    """A learning-rate factor from 1 at step 0 down to 0 at `total_steps` (0 after)."""
    return lambda step: max(0.0, 1.0 - step / total_steps)


def load_model(directory: Path, cfg: HierarchyTrainConfig, n_nodes: int) -> Any:
    """A model saved by `HierarchyTask.save`: a `LookupEmbedding` or a `HierarchyTextModel`, on the CPU."""
    import torch

    from models.hierarchy import load_hierarchy_model
    from models.poincare import LookupEmbedding

    if not cfg.lookup:
        return load_hierarchy_model(directory)
    table = LookupEmbedding(n_nodes, cfg.dim, cfg.manifold)
    table.load_state_dict(torch.load(directory / "table.pt", map_location="cpu", weights_only=True))
    return table


def evaluate_model(
    module: LookupEmbedding | HierarchyTextModel,
    data: HierarchyData,
    cfg: HierarchyTrainConfig,
    rank: int = 0,
    size: int = 1,
    points: np.ndarray | None = None,
) -> dict:
    """`models.hierarchy_metrics.evaluate_points` of every node (`points` (n, d), encoded here unless
    given), and for HierarCaps `chain_metrics`; the workers share the encoding."""
    from models.hierarchy_metrics import chain_metrics, evaluate_points, hit_metrics, node_points

    if points is None:
        points = node_points(module, data.split.full.texts, rank, size)
    if not np.isfinite(points).all() and hasattr(module, "encoder"):  # a text the model cannot read: NaN by design
        from models.encoder import unread_texts

        texts = data.split.full.texts
        unread = unread_texts(module.encoder.tokenizer, texts.tolist(), module.encoder.max_length)
        if unread.any():  # refused before training (`refuse_unread_nodes`): no divergence
            raise ValueError(unread_nodes_said(cfg.data, cfg.model, texts, unread))
    if not np.isfinite(points).all():  # its metrics would rank NaN distances (every worker holds all points)
        raise ModelNotFinite(f"the points of {np.count_nonzero(~np.isfinite(points).all(axis=1)):,} of its "
                             f"{len(points):,} nodes became NaN or infinite")  # fmt: skip
    device = next(module.parameters()).device
    metrics = evaluate_points(points, module.distance, data.split, cfg.max_eval_nodes, cfg.seed, device)
    if data.chains is not None:
        metrics |= chain_metrics(module, data.chains, rank, size)
    if data.hit is not None:
        metrics |= hit_metrics(points, module.distance, module.norm, data.hit, data.hit_tasks, device)
    return metrics


def evaluate_with_baselines(
    module: LookupEmbedding | HierarchyTextModel,
    data: HierarchyData,
    cfg: HierarchyTrainConfig,
    points: np.ndarray | None = None,
) -> dict[str, float]:
    """`evaluate_model` of a trained model, and on HierarCaps the pretrained encoder's
    numbers next to it (`models.hierarchy_metrics.pretrained_chain_metrics`) and the
    pairs the data's chains order both ways, left out of training (`dropped_two_way_pairs`)."""
    from models.hierarchy_metrics import pretrained_chain_metrics

    metrics = evaluate_model(module, data, cfg, points=points)
    if data.chains is not None:
        metrics |= pretrained_chain_metrics(cfg.model, data.chains, cfg.max_length)
        metrics["dropped_two_way_pairs"] = data.dropped_two_way_pairs
    return metrics
