"""The names of the models' options, imported without torch: the CLI (`workflows.cli`)
offers them as choices and checks them before any model module loads.

`HEADS`: a hierarchy text model's heads (`models.hierarchy.HierarchyTextModel`);
`RANKINGS` and `NORM_LOSSES`: the ranking and norm terms of its batch loss
(`models.hierarchy.hierarchy_batch_loss`); `MANIFOLDS`: the spaces of a lookup table
(`models.poincare.LookupEmbedding`), the first two of which a text model takes too
(`TEXT_MANIFOLDS`).
"""

from __future__ import annotations

HEADS = ("expmap0", "hit")
RANKINGS = ("softmax", "triplet")
NORM_LOSSES = ("level", "order")
MANIFOLDS = ("poincare", "euclidean", "order")
TEXT_MANIFOLDS = MANIFOLDS[:2]
