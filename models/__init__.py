"""Torch modules, losses and metrics on embeddings: the math of sessionflow's two models.

The room: text encoders (`encoder`), the session model's training loss and pair scores
(`session`, `losses`, `calibration`), the hyperbolic hierarchy text model and its
batch loss (`hierarchy`), the lookup-table reference (`poincare`), metrics of
hierarchy embeddings (`hierarchy_metrics`), and rows merged across DDP workers
(`shards`); the names of their options, importable without torch (`choices`).
Everything here runs in one process on plain tensors and arrays; how it is
distributed is decided by `workflows/`.

May import: torch, transformers, geoopt, numpy, scikit-learn, and from `hierarchies/`
its metrics and data types. Never ray, mlflow, `sessions/` or `workflows/`.
"""
