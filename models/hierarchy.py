"""The hierarchy text model: text -> a point of the Poincaré ball (or of R^d).

Two heads (`HEADS`):

- `expmap0`: encoder (mean-pooled transformer) -> linear, or an MLP of one hidden
  layer (`hidden` > 0: linear, GELU, linear) -> learned scale -> expmap0 on
  geoopt.PoincareBall(c) [-> Möbius linear layers]; `manifold="euclidean"` stops
  after the scale: the flat twin, for comparison;
- `hit` (Hierarchy Transformers, He et al. 2024): the encoder's mean-pooled vector,
  not normalised, *is* the point, on the ball of curvature 1/H (radius √H, H the
  encoder's width); no layer is added (He et al. report that rescaling into the unit
  ball trains worse).

The distance from the origin says how specific a text is (general texts near the
origin); distances between points hold the hierarchy. The head after the encoder
runs in float64: in float32 geoopt keeps points 4e-3 away from the boundary, which
flattens everything deeper than a tangent norm of about 3. Tangent vectors are
clipped to `max_tangent_norm` before `expmap0`, and points are projected back into
the ball after every Möbius layer, so no NaN can come out.

Training (`hierarchy_loss`) ranks each child nearer its ancestor than to
non-ancestors, by the distance softmax of Nickel & Kiela 2017
(`models.poincare.distance_softmax_loss`) or by HiT's triplet hinge (the ancestor
nearer by a margin than each negative), plus a norm term: a child lies `margin`
farther from the origin than its ancestor, per level between them, so that the norm
reads as depth (`level`), or at least `margin` farther (`order`: HiT's centripetal
loss).
`hierarchy_batch_loss` encodes a batch of node pairs and calls it; given the frozen
encoder's vectors of every node, it runs the head alone (`HierarchyTextModel.place`):
how a head is fitted before the encoder is fine-tuned (`workflows.training.hierarchy`).

Shapes: B rows of a batch (texts in `forward`, (child, ancestor) pairs in the losses),
K negatives shared by a batch, U distinct nodes of a batch, L tokens, d the point's
dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geoopt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.choices import HEADS, NORM_LOSSES, RANKINGS, TEXT_MANIFOLDS
from models.encoder import TextEncoder, by_length, eval_mode, forward_by_length, load_encoder, unread_as
from models.poincare import distance_softmax_loss


class MobiusLinear(nn.Module):
    """A hyperbolic linear layer: x -> (W ⊗ x) ⊕ b on the ball (Ganea et al. 2018)."""

    def __init__(self, dim: int, ball: geoopt.PoincareBall) -> None:
        super().__init__()
        self.ball = ball
        self.weight = nn.Parameter(torch.eye(dim, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(dim, dtype=torch.float64))  # a tangent vector at the origin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Points (B, d) float64 on the ball -> (W ⊗ x) ⊕ b, (B, d), projected into the ball."""
        y = self.ball.mobius_matvec(self.weight, x)  # (B, d)
        return self.ball.projx(self.ball.mobius_add(y, self.ball.expmap0(self.bias)))


class HierarchyTextModel(nn.Module):
    """A text encoder and a head (`HEADS`, see the module docstring); `forward` gives
    float64 points (B, d): d = `dim` for `expmap0`, the encoder's width for `hit`
    (whose curvature is then 1 / width, whatever `curvature` says). `hidden`: the
    width of the `expmap0` head's hidden layer (0: a linear map).

    ValueError for a head, manifold or Möbius layers that do not go together.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        dim: int,
        *,
        manifold: str = "poincare",
        curvature: float = 1.0,
        mobius_layers: int = 0,
        max_tangent_norm: float = 6.0,
        head: str = "expmap0",
        hidden: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        if manifold not in TEXT_MANIFOLDS:
            raise ValueError(f"manifold must be poincare or euclidean, got {manifold!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if manifold == "euclidean" and mobius_layers:
            raise ValueError("Möbius layers live on the ball: manifold euclidean takes none")
        if head == "hit" and (manifold != "poincare" or mobius_layers):
            raise ValueError("HiT's head is the encoder itself on the ball: no Möbius layers, manifold poincare")
        if head == "hit" and hidden:
            raise ValueError("HiT's head adds no layer: no hidden width")
        if head == "hit" and encoder.normalize:
            raise ValueError("HiT's head takes the encoder's vectors as they are: load it with normalize=False")
        self.encoder, self.head = encoder, head
        if head == "hit":
            dim, curvature = encoder.dim, 1.0 / encoder.dim  # the ball of radius √H
        self.kind, self.dim, self.curvature, self.max_tangent_norm = manifold, dim, curvature, max_tangent_norm
        self.hidden = hidden
        self.ball = geoopt.PoincareBall(c=curvature) if manifold == "poincare" else geoopt.Euclidean(ndim=1)
        if head == "expmap0":
            self.project = (
                nn.Sequential(nn.Linear(encoder.dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
                if hidden
                else nn.Linear(encoder.dim, dim)
            )
            self.log_scale = nn.Parameter(torch.zeros(()))
        self.mobius = nn.ModuleList(MobiusLinear(dim, self.ball) for _ in range(mobius_layers))

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are (its first parameter's device)."""
        return next(self.encoder.parameters()).device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and attention mask, (B, L) each -> float64 points (B, d): `place` of the encoder's (B, H)."""
        return self.place(self.encoder(input_ids, attention_mask))

    def place(self, vectors: torch.Tensor) -> torch.Tensor:
        """The head: the encoder's vectors (B, H) -> float64 points (B, d)."""
        if self.head == "hit":
            return self.ball.projx(vectors.double())  # (B, H)
        tangent = (self.project(vectors) * self.log_scale.exp()).double()  # (B, d)
        if self.kind == "euclidean":
            return tangent
        norm = tangent.norm(dim=-1, keepdim=True).clamp_min(1e-15)  # (B, 1)
        tangent = tangent * (self.max_tangent_norm / norm).clamp(max=1.0)
        x = self.ball.projx(self.ball.expmap0(tangent))
        for layer in self.mobius:
            x = layer(x)
        return x

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Points of `texts` (one padded batch), with gradients: B texts -> (B, d) float64."""
        tokens = self.encoder.tokenize(texts)
        return self(tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device))

    @torch.no_grad()
    def points(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """float64 points of `texts`, in order; length-sorted batches: n texts -> (n, d), row i for texts[i];
        NaN for a text the tokenizer reads as unknown tokens alone (`models.encoder.unread_texts`: no point)."""
        with eval_mode(self):
            points = by_length(texts, batch_size, self.dim, np.float64, self.embed)
            return unread_as(points, self.encoder.tokenizer, texts, self.encoder.max_length, np.nan)

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Geodesic distance over the last dim, broadcasting."""
        return self.ball.dist(x, y)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        """Distance from the origin: the specificity of a text. (..., d) -> (...,):
        2/√c · artanh(√c ‖x‖) on the ball of curvature c, ‖x‖ in R^d."""
        return self.ball.dist0(x) if self.kind == "poincare" else x.norm(dim=-1)

    # ---- saving ----
    def save(self, directory: str | Path) -> Path:
        """`directory`/encoder (`TextEncoder.save`) and `directory`/head.pt (the head's settings and
        weights, `torch.save`), loadable with `load_hierarchy_model(directory)`; returns `directory`."""
        directory = Path(directory)
        self.encoder.save(directory / "encoder")
        head = {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        settings = {"dim": self.dim, "manifold": self.kind, "curvature": self.curvature, "head": self.head,
                    "hidden": self.hidden, "mobius_layers": len(self.mobius),
                    "max_tangent_norm": self.max_tangent_norm}  # fmt: skip
        torch.save({"settings": settings, "head": head}, directory / "head.pt")
        return directory


def load_hierarchy_model(directory: str | Path) -> HierarchyTextModel:
    """A model written by `HierarchyTextModel.save` (one saved before `hidden` existed has a linear head).

    ValueError when `head.pt` names other weights than its settings make (not a hierarchy
    model), torch's RuntimeError for weights of another shape; FileNotFoundError without
    `head.pt`; errors of `load_encoder` for `encoder/`.
    `head.pt` is unpickled (weights_only=False): load only directories you trust.
    """
    directory = Path(directory)
    saved = torch.load(directory / "head.pt", map_location="cpu", weights_only=False)
    model = HierarchyTextModel(load_encoder(str(directory / "encoder")), **saved["settings"])
    missing, unexpected = model.load_state_dict(saved["head"], strict=False)
    if unexpected or any(not key.startswith("encoder.") for key in missing):
        raise ValueError(f"{directory}: not a hierarchy model ({unexpected or missing})")
    return model


def hierarchy_loss(
    model: HierarchyTextModel,
    child: torch.Tensor,
    ancestor: torch.Tensor,
    negatives: torch.Tensor,
    valid: torch.Tensor,
    norm_weight: float = 1.0,
    margin: float = 0.5,
    levels: torch.Tensor | None = None,
    norm_loss: str = "level",
    ranking: str = "softmax",
    triplet_margin: float = 5.0,
) -> torch.Tensor:
    """Ranking loss over distances plus a norm term.

    child, ancestor: (B, d) points of the edges (child -> ancestor); negatives: (K, d)
    points shared by the batch; valid: (B, K) False where a negative is the child
    itself or one of its ancestors (never a negative); levels: (B,) how many levels
    the ancestor lies above the child (1 when not given).

    The norm term: `level` asks the child to lie `margin` x levels farther from the
    origin than its ancestor, no more and no less (squared error), so that the norm
    grows evenly with depth; `order` only asks for at least `margin` (a hinge: HiT's
    centripetal loss, He et al. 2024, with their margin 0.1).

    The ranking: `softmax`, the distance softmax over the negatives (Nickel & Kiela
    2017); `triplet`, HiT's hyperbolic clustering loss, the mean over valid (child,
    negative) of max(0, d(child, ancestor) − d(child, negative) + `triplet_margin`)
    (their margin: 5.0).

    Returns a scalar (); ValueError for a `norm_loss` not in NORM_LOSSES or a `ranking`
    not in RANKINGS.
    """
    if norm_loss not in NORM_LOSSES:
        raise ValueError(f"norm_loss must be one of {NORM_LOSSES}, got {norm_loss!r}")
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    d_pos = model.distance(child, ancestor)  # (B,)
    d_neg = model.distance(child[:, None, :], negatives[None, :, :])  # (B, K)
    if ranking == "softmax":
        rank_term = distance_softmax_loss(d_pos, d_neg, valid)
    else:
        hinge = F.relu(d_pos[:, None] - d_neg + triplet_margin) * valid  # (B, K)
        rank_term = hinge.sum() / valid.sum().clamp_min(1)
    gap = model.norm(child) - model.norm(ancestor)  # (B,)
    levels = torch.ones_like(gap) if levels is None else levels.to(gap).clamp_min(1)
    level, order = (gap - margin * levels).square(), F.relu(margin - gap)
    norm_term = (level if norm_loss == "level" else order).mean()  # ()
    return rank_term + norm_weight * norm_term


def hierarchy_batch_loss(
    model: nn.Module,
    module: HierarchyTextModel,
    texts: np.ndarray,
    depth: np.ndarray,
    batch: np.ndarray,
    negatives: np.ndarray,
    valid: np.ndarray,
    norm_weight: float = 1.0,
    margin: float = 0.5,
    norm_loss: str = "level",
    ranking: str = "softmax",
    triplet_margin: float = 5.0,
    vectors: torch.Tensor | None = None,
    text_of: np.ndarray | None = None,
) -> torch.Tensor:
    """`hierarchy_loss` of a batch of (child, ancestor) node pairs: encode, then the math.

    model: what runs the forward pass (the model itself, or its DDP wrapper); module:
    the model (tokenizer, distance, norm). texts: (n,) str, the text of every node, or
    with `text_of` (n,) int, the row in `texts` (L,) of the name each node goes by in
    this batch (`hierarchies.datasets.NodeNames.draw`);
    depth: (n,) int, each node's depth (the norm term's levels are depth differences);
    batch: (B, 2) int node indices (child, ancestor); negatives: (K,) node indices,
    valid: (B, K) bool, which of them are negatives of each pair (as
    `NegativeSampler.shared` draws them, shared by the batch; `HierarchyTask.draw` adds
    each pair's own siblings).
    Every distinct node of the batch is encoded once (`models.encoder.forward_by_length`),
    or, given `vectors` (n, H) (or (L, H), as `texts`), the frozen encoder's vectors of
    every node, the head alone places them (`HierarchyTextModel.place`) and the encoder
    does not run.

        negatives, valid = sampler.shared(batch[:, 0], 64, training_nodes)
        loss = hierarchy_batch_loss(model, model, h.texts, h.depth, batch, negatives, valid)
    """
    nodes, where = np.unique(np.concatenate([batch[:, 0], batch[:, 1], negatives]), return_inverse=True)  # (U,)
    device = module.device
    rows = nodes if text_of is None else text_of[nodes]  # (U,) rows of `texts` / `vectors`
    if vectors is None:
        points = forward_by_length(model, module.encoder, texts[rows].tolist(), device)  # (U, d)
    else:
        points = module.place(vectors[torch.from_numpy(rows).to(vectors.device)])  # (U, d)
    b = len(batch)
    child, ancestor, negative = points[where[:b]], points[where[b : 2 * b]], points[where[2 * b :]]  # (B|B|K, d)
    levels = torch.from_numpy(depth[batch[:, 0]] - depth[batch[:, 1]]).to(device)  # (B,)
    return hierarchy_loss(module, child, ancestor, negative, torch.from_numpy(valid).to(device),
                          norm_weight, margin, levels, norm_loss, ranking, triplet_margin)  # fmt: skip
