"""A fresh MLflow store per test: tracking and registry both, so that no test reads a
registry another test left as mlflow's global default."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient


@pytest.fixture
def store(tmp_path, monkeypatch) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, registry_uri=uri)
