"""A fresh MLflow store per test: tracking and registry both, so that no test reads a
registry (or an active experiment) another test left as mlflow's global default; and
one local Ray per module for the modules whose jobs run on Ray."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import psutil
import pytest
import ray.data  # noqa: F401  (its loggers write to the stderr of their first import: here, not a CliRunner's)
from mlflow.tracking import MlflowClient


@pytest.fixture(scope="module")
def shared_ray() -> Iterator[None]:
    """One local Ray for a module's jobs, started as a job starts its own (`ray_runtime`:
    127.0.0.1 only, no dashboard); each job finds it running and leaves it up, as a job
    submitted to a cluster does. It saves Ray's start and stop (~14 s here) for every
    job but the first, and it checks that jobs hand their workers everything they need
    explicitly (the MLflow store of each test differs from the one at Ray's start)."""
    from workflows.distributed.runtime import ray_runtime

    with ray_runtime():
        yield


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Callable[[Path], str]:
    """`empty_store(path)`: `sqlite:///PATH`, a new MLflow store with nothing in it, as
    MLflow makes one (its schema by alembic's migrations, which take ~2 s a store
    here, ~4 s the first, and the Default experiment): a copy of a store made once per working
    directory, from which the Default experiment's artifact location is resolved."""
    made: dict[str, Path] = {}

    def copy(path: Path) -> str:
        cwd = os.getcwd()
        if cwd not in made:
            made[cwd] = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
            MlflowClient(f"sqlite:///{made[cwd]}").search_experiments()
        shutil.copyfile(made[cwd], path)
        return f"sqlite:///{path}"

    return copy


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store) -> MlflowClient:
    uri = empty_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("Default")  # not the experiment id an earlier test left active, of another store
    return MlflowClient(uri, registry_uri=uri)


def ray_train_workers() -> list[psutil.Process]:
    """This test's Ray Train workers: descendants of this process (the local Ray it started)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any("RayTrainWorker" in part for part in p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def last_logged_step(store: MlflowClient, experiment: str) -> int:
    """The last step whose loss the (only) run of `experiment` has logged."""
    found = store.get_experiment_by_name(experiment)
    runs = store.search_runs([found.experiment_id]) if found else []
    history = store.get_metric_history(runs[0].info.run_id, "loss") if runs else []
    return max((m.step for m in history), default=0)


def registered_checkpoints(storage: Path) -> int:
    """How many checkpoints Ray Train's controller has registered for the run under
    `storage`: those named in its checkpoint manager's snapshot. A worker's
    `ray.train.report` returns once the report is queued; the controller registers it
    when it next polls the worker, and a worker killed in between takes it along."""
    for snapshot in storage.glob("*/checkpoint_manager_snapshot.json"):
        try:
            return len(json.loads(snapshot.read_text())["checkpoint_results"])
        except (OSError, ValueError, KeyError):
            return 0  # being written: read again
    return 0


@pytest.fixture
def kill_a_worker(store) -> Callable[[threading.Thread, Path, str, int, int], None]:
    """`kill_a_worker(thread, storage, experiment, after_step, workers)`: wait until the
    training running in `thread` has logged `after_step` and Ray Train has registered a
    checkpoint under `storage`, check that it has `workers` Ray Train workers, and kill
    the last of them."""

    def kill(thread: threading.Thread, storage: Path, experiment: str, after_step: int, workers: int) -> None:
        deadline = time.monotonic() + 300
        while (
            thread.is_alive()
            and time.monotonic() < deadline
            and (last_logged_step(store, experiment) < after_step or not registered_checkpoints(storage))
        ):
            time.sleep(0.1)
        found = ray_train_workers()
        assert len(found) == workers
        found[-1].kill()

    return kill
