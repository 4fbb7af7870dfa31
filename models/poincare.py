"""Lookup-table hierarchy embeddings: the reference of the text model.

- Poincaré embeddings (Nickel & Kiela 2017, "Poincaré Embeddings for Learning
  Hierarchical Representations"): one point per node in the Poincaré ball, trained so
  that each (child u, ancestor v) pair of the transitive closure is closer than u is
  to sampled non-ancestors: loss = -log(exp(-d(u, v)) / sum_{v' in {v} ∪ N(u)} exp(-d(u, v'))).
  Riemannian SGD, a burn-in with a smaller learning rate and negatives drawn
  by node frequency, float64 so that points near the boundary keep their precision.
- the same in Euclidean space (`manifold="euclidean"`), the flat twin;
- order embeddings (Vendrov et al. 2016, "Order-Embeddings of Images and Language"),
  the Euclidean hierarchy baseline: points in R+^d (absolute values of the table), an
  ancestor should lie below its child in every coordinate; violation
  E(u, v) = ||max(0, x_v - x_u)||^2; max-margin loss E(u, v) + sum_{v'} max(0, margin - E(u, v')).

Training runs in `sessionflow train hierarchy --model lookup` (the shared Ray Train
loop; `workflows.training.hierarchy.HierarchyTask`); one step of it is

    sampler = NegativeSampler(h.edges, h.n_nodes, np.random.default_rng(0))
    model = LookupEmbedding(h.n_nodes, dim=5)
    negatives, valid = sampler(batch[:, 0], 50)                 # batch: (B, 2) child, ancestor
    lookup_loss(model, batch, negatives, valid).backward()      # then a geoopt RiemannianSGD step

For ranking, `distances` gives d(u, ·) (the violation for order embeddings):

    reconstruction(lambda u: distances(model, u), h.edges, h.n_nodes)

Shapes: B pairs of a batch, K negatives per pair, n nodes, dim the table's width.
"""

from __future__ import annotations

import geoopt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hierarchies.datasets import PairIndex, draw_non_ancestors, self_or_ancestor
from models.choices import MANIFOLDS


def poincare_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Geodesic distance in the unit Poincaré ball (curvature -1) over the last dim, broadcasting:
    arcosh(1 + 2 ||x - y||^2 / ((1 - ||x||^2)(1 - ||y||^2))), Nickel & Kiela eq. (1).

    Equal to `geoopt.PoincareBall().dist` and about twice as fast on small dims. The
    argument is kept at least 1 + the dtype's epsilon, where arcosh's derivative is
    finite (at 1 it is not, and two equal points would give a NaN gradient).
    """
    sq = (x - y).pow(2).sum(-1)  # (...,): the last dim summed
    denom = (1 - x.pow(2).sum(-1)) * (1 - y.pow(2).sum(-1))  # (...,)
    return torch.acosh((1 + 2 * sq / denom).clamp_min(1 + torch.finfo(sq.dtype).eps))


def order_violation(child: torch.Tensor, ancestor: torch.Tensor) -> torch.Tensor:
    """E(child, ancestor) = ||max(0, ancestor - child)||^2 over the last dim (broadcasting); 0 when ordered."""
    return F.relu(ancestor - child).pow(2).sum(-1)  # (...,)


def distance_softmax_loss(d_pos: torch.Tensor, d_neg: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -log softmax(-d)[positive], the negatives where `valid`.

    d_pos: (B,) distance of each child to its ancestor; d_neg: (B, K) to its negatives;
    valid: (B, K) bool, False for a negative slot left empty (a node with too few non-ancestors).
    """
    logits = torch.cat([-d_pos[:, None], (-d_neg).masked_fill(~valid, float("-inf"))], dim=1)  # (B, 1 + K)
    return F.cross_entropy(logits, torch.zeros(len(d_pos), dtype=torch.long, device=d_pos.device))  # ()


def order_margin_loss(e_pos: torch.Tensor, e_neg: torch.Tensor, valid: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over the batch of E(pos) + sum over valid negatives of max(0, margin - E(neg)) (Vendrov et al. 2016)."""
    return (e_pos + (F.relu(margin - e_neg) * valid).sum(1)).mean()  # (B, K) -> (B,) -> ()


class LookupEmbedding(nn.Module):
    """One trainable point per node: a `geoopt.ManifoldParameter` (n, dim) on the ball or in R^dim.

    init: coordinates uniform in [-init, init], as Nickel & Kiela.
    ValueError for a `manifold` not in MANIFOLDS.
    """

    def __init__(
        self,
        n_nodes: int,
        dim: int,
        manifold: str = "poincare",
        init: float = 1e-3,
        dtype: torch.dtype = torch.float64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if manifold not in MANIFOLDS:
            raise ValueError(f"manifold must be one of {MANIFOLDS}, got {manifold!r}")
        self.kind = manifold
        self.manifold = geoopt.PoincareBall() if manifold == "poincare" else geoopt.Euclidean(ndim=1)
        start = torch.empty(n_nodes, dim, dtype=dtype).uniform_(
            -init, init, generator=torch.Generator().manual_seed(seed)
        )
        self.weight = geoopt.ManifoldParameter(start, manifold=self.manifold)  # (n, dim)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Points of the nodes `idx` (any shape) -> (*idx.shape, dim)."""
        x = self.weight[idx]  # (*idx.shape, dim)
        return x.abs() if self.kind == "order" else x  # order embeddings live in R+^d

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d(x, y) over the last dim, broadcasting; for order embeddings E(child x, ancestor y)."""
        if self.kind == "poincare":
            return poincare_distance(x, y)
        return order_violation(x, y) if self.kind == "order" else self.manifold.dist(x, y)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        """Distance from the origin (2 artanh |x| on the ball; |x| in R^d)."""
        return self.manifold.dist0(x) if self.kind == "poincare" else x.norm(dim=-1)


@torch.no_grad()
def distances(model: LookupEmbedding, u_idx: np.ndarray, budget: int = 1 << 22) -> np.ndarray:
    """(len(u_idx), n) distances from the nodes `u_idx` to every node, a block of columns at a time
    (`budget` bounds the elements of one (rows, cols, dim) intermediate)."""
    u = model(torch.as_tensor(np.asarray(u_idx), dtype=torch.long))[:, None, :]  # (b, 1, dim)
    n, dim = model.weight.shape
    step = max(1, budget // max(1, len(u) * dim))
    blocks = [
        model.distance(u, model(torch.arange(s, min(s + step, n)))[None, :, :])  # (b, cols)
        for s in range(0, n, step)
    ]
    return torch.cat(blocks, dim=1).cpu().numpy()  # (b, n)


class NegativeSampler:
    """Draws, for each child u, nodes that are neither u nor an ancestor of u.

    edges: (m, 2) (child, ancestor) training pairs: the ancestors, and the frequencies
    of the burn-in; exclude: the pairs that are never negatives, when not those.

    Uniform draws, or by frequency (how often a node is an ancestor, plus one, to the
    power 0.75: word2vec's smoothed unigram draw, Mikolov et al. 2013, as the burn-in of
    Nickel & Kiela 2017's code draws, facebookresearch/poincare-embeddings
    `hype/graph_dataset.pyx`, there without the plus one). A draw that hits u or an ancestor is
    redrawn a few times; one still bad then is marked invalid (left out of the loss),
    which happens only when u has almost no non-ancestors.
    """

    def __init__(
        self,
        edges: np.ndarray,
        n_nodes: int,
        rng: np.random.Generator,
        rounds: int = 10,
        exclude: np.ndarray | None = None,
    ) -> None:
        self.n, self.rng, self.rounds = n_nodes, rng, rounds
        self.ancestors = PairIndex(edges if exclude is None else exclude, n_nodes)
        counts = (1.0 + np.bincount(edges[:, 1], minlength=n_nodes)) ** 0.75  # (n,)
        self.cdf = np.cumsum(counts / counts.sum())  # (n,)

    def _draw(self, shape: tuple[int, ...], by_frequency: bool) -> np.ndarray:
        if by_frequency:
            return np.searchsorted(self.cdf, self.rng.random(shape), side="right").clip(max=self.n - 1)
        return self.rng.integers(0, self.n, shape)

    def excluded(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(B, k) True where t[i, j] is u[i] itself or one of its ancestors: never a negative of u[i]."""
        return self_or_ancestor(self.ancestors, u, t)

    def __call__(self, u: np.ndarray, k: int, by_frequency: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(negatives (B, k), valid (B, k)) for the children `u` (B,)."""
        t, bad = draw_non_ancestors(self.ancestors, u, k, lambda shape: self._draw(shape, by_frequency), self.rounds)
        return t, ~bad

    def shared(self, u: np.ndarray, k: int, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(negatives (k,), valid (B, k)): `k` nodes drawn uniformly from `candidates`, shared by
        the children `u` (B,), as the text model trains (every node of a batch is encoded once).

        A draw that is u[i] itself or one of its ancestors is not redrawn (the other
        children share it): it is marked invalid for u[i] alone.
        """
        negatives = candidates[self.rng.integers(0, len(candidates), k)]  # (k,)
        valid = ~self.excluded(u, np.broadcast_to(negatives, (len(u), k)))  # (B, k)
        return negatives, valid


def lookup_loss(
    model: LookupEmbedding, batch: np.ndarray, neg: np.ndarray, valid: np.ndarray, margin: float = 1.0
) -> torch.Tensor:
    """The loss of (child, ancestor) pairs `batch` (B, 2) against negatives `neg` (B, K) where `valid`:
    the distance softmax, or the max-margin loss of order embeddings. `model` may be a DDP wrapper.
    Returns a scalar () tensor."""
    table = getattr(model, "module", model)
    device = table.weight.device
    u = model(torch.from_numpy(batch[:, :1]).to(device))  # (B, 1, dim)
    v = model(torch.from_numpy(np.concatenate([batch[:, 1:], neg], axis=1)).to(device))  # (B, 1 + K, dim)
    d = table.distance(u, v)  # (B, 1 + K)
    valid_t = torch.from_numpy(valid).to(device)
    if table.kind == "order":
        return order_margin_loss(d[:, 0], d[:, 1:], valid_t, margin)
    return distance_softmax_loss(d[:, 0], d[:, 1:], valid_t)
