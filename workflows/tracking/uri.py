"""Where MLflow runs go, without importing MLflow.

A Ray task that only hands the tracking URI on (the segment, mine and score tasks)
imports this, not `store`: importing mlflow costs each new worker process about 1.7 s
of CPU (2 cores), paid on every node of every job.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE = "mlflow.db"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or sqlite:///<cwd>/mlflow.db; relative SQLite paths made absolute."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE}"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


# Each kind of model's own experiment (and registered model) and what it is, as the MLflow
# UI shows it (its description, which `store` writes); the jobs refuse another kind's as
# --experiment.
NOTES = {
    "session-model": "Session model: a bi-encoder fine-tuned with InfoNCE on query pairs mined from sessions "
    "(`sessionflow train session`); p(same session) of two queries. Headline metric: val_auc.",
    "hierarchy-model": "Hierarchy model: WordNet or HierarCaps embedded in the Poincare ball, a lookup table or "
    "a text encoder (`sessionflow train hierarchy`); a query's specificity is its norm. Headline metric: map.",
    "segmenter-model": "Segmenter: a scikit-learn same-session classifier of consecutive queries, fitted on "
    "ground truth (`sessionflow train segmenter`). Headline metric: cv_f1_mean (user-level nested CV).",
}
