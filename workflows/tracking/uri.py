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
