"""The session model's computations: one training step's loss, and pair scores.

The model is a bi-encoder (`models.encoder.TextEncoder`, unit-length vectors): the
score of two queries is the dot product of their vectors (their cosine), and a
higher score means more likely the same session. `Calibration` turns scores into
`p(same session)`.

Shapes: B examples of a batch, L tokens, H the encoder's width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from models.encoder import TextEncoder, forward_by_length
from models.losses import batch_info_nce


def info_nce_loss(
    model: nn.Module,
    encoder: TextEncoder,
    anchors: Sequence[str],
    positives: Sequence[str],
    negatives: Sequence[str],
    ids: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """InfoNCE of a local batch of (anchor, positive, hard negative) examples.

    `model` is what runs the forward pass (the encoder itself, or its DDP wrapper);
    `encoder` tokenizes. anchors, positives, negatives: B texts each; ids: (B, 3) int64
    text ids of (anchor, positive, negative), on the model's device (equal text, equal
    id: duplicates are masked). The texts go through `models.encoder.forward_by_length`
    (passes of texts of similar length); the loss (a scalar) is
    `models.losses.batch_info_nce` (van den Oord et al. 2018).

        loss = info_nce_loss(encoder, encoder, ["cheap flights"], ["flights to paris"], ["tax forms"],
                             torch.tensor([[0, 1, 2]]), temperature=0.05)
    """
    n = len(anchors)
    vectors = forward_by_length(model, encoder, [*anchors, *positives, *negatives], ids.device)  # (3 B, H)
    return batch_info_nce(vectors[:n], vectors[n : 2 * n], vectors[2 * n :], ids, temperature)


def distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts (first-seen order) and, for each text, its index among them."""
    index: dict[str, int] = {}
    positions = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index), positions


def pair_scores(
    encoder: TextEncoder, a: Sequence[str], b: Sequence[str], batch_size: int = 256, unread: float = 0.0
) -> np.ndarray:
    """Dot products of the vectors of a[i] and b[i]; every distinct text is encoded once.

    a, b: n texts each -> (n,) float32 (cosines when the encoder normalizes, as the session
    model's does); ValueError when a and b differ in length. A pair with a text the
    encoder cannot read (`models.encoder.unread_texts`: its vector is zeros) scores
    `unread`: 0.0, the dot product, where every pair needs a number (an AUC, a
    calibration's fit), NaN where such a pair has no score.
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} first queries for {len(b)} second ones")
    texts, positions = distinct([*a, *b])
    vectors = encoder.encode(texts, batch_size=batch_size)  # (distinct texts, H)
    va, vb = vectors[positions[: len(a)]], vectors[positions[len(a) :]]  # (n, H) each
    dots = np.einsum("ij,ij->i", va, vb)  # (n,)
    return dots if unread == 0.0 else np.where(va.any(axis=1) & vb.any(axis=1), dots, np.float32(unread))
