"""`sessionflow compare` and `sessionflow promote`: the runs and registered models in MLflow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sessions.storage import first_line

if TYPE_CHECKING:
    from workflows.tracking.compare import Comparison


@dataclass(frozen=True)
class CompareJob:
    """Which runs `sessionflow compare` puts side by side, and what it shows of them."""

    experiment: str = field(default="session-model", metadata={
        "help": "MLflow experiment: session-model, hierarchy-model, segmenter-model, demo (any in it)"})  # fmt: skip
    metrics: tuple[str, ...] = field(default=(), metadata={
        "help": "metrics to show, comma-separated (none: the experiment's key metrics)"})  # fmt: skip
    params: tuple[str, ...] = field(default=(), metadata={
        "help": "parameters to show, comma-separated (none: the key ones that differ)"})  # fmt: skip
    max_runs: int = field(default=20, metadata={"help": "show the latest this many runs"})

    def __post_init__(self) -> None:
        if self.max_runs < 1:
            raise ValueError("--max-runs must be at least 1")


@dataclass(frozen=True)
class PromoteJob:
    """Which version `sessionflow promote` makes the champion."""

    name: str | None = field(default=None, metadata={
        "help": "registered model: session-model, hierarchy-model or segmenter-model", "argument": True})  # fmt: skip
    version: str | None = field(default=None, metadata={
        "help": "the version to give the `champion` alias", "argument": True})  # fmt: skip


def compare(job: CompareJob) -> Comparison:
    """The runs of `job.experiment` in the tracking store, side by side; ValueError for an unknown experiment."""
    from workflows.tracking.compare import compare as compare_runs
    from workflows.tracking.store import use_store

    return compare_runs(use_store(existing=True), job.experiment, job.max_runs, list(job.metrics) or None,
                        list(job.params) or None)  # fmt: skip


def _unloadable(name: str, version: str, err: BaseException) -> ValueError:
    from workflows.tracking.store import tracking_uri

    unreadable = f"{name} version {version}: its model files cannot be read ({first_line(err)})"
    return ValueError(f"{unreadable}; no job could load it as the champion (tracking store: {tracking_uri()})")


def promote(job: PromoteJob) -> tuple[str, str, str | None]:
    """Give `job.version` of `job.name` the champion alias; (the alias, the version as
    MLflow numbers it: `01` is 1, the version that held the alias before or None).

    ValueError when the model or version does not exist, when the version's model files
    cannot be read (deleted artifacts: a champion no one could load), or when one of the
    project's own names (session-model, hierarchy-model, segmenter-model) would get a
    champion of another kind, which every job that loads it would then refuse.
    """
    from mlflow.exceptions import MlflowException

    from workflows.jobs.common import require
    from workflows.tracking.store import (
        CHAMPION,
        KINDS,
        model_kind,
        registered,
        require_finished,
        tracking_uri,
        use_store,
    )

    name, version = require(job.name, "name", argument=True), require(job.version, "version", argument=True)
    if not re.fullmatch(r"\s*[0-9]+\s*", version):
        raise ValueError(f"VERSION {version!r}: a version is a whole number (1, 2, ...)")
    version = str(int(version))  # " 2" named no version for the kind's check, yet MLflow moved the alias
    client = use_store(existing=True, writes="moves the champion alias in it")
    kind = {f"{kind}-model": kind for kind in KINDS}.get(name)  # a name the jobs load their champion by
    held = None
    try:
        client.get_model_version(name, version)
    except MlflowException:  # no such version: said below, with the versions there are
        pass
    else:
        require_finished(client, name, version)  # before loading it: a refused version's model need not be read
        try:
            held = model_kind(f"models:/{name}/{version}")
        except (MlflowException, OSError) as err:
            raise _unloadable(name, version, err) from None
    if kind and held is not None and held != kind:  # the jobs would refuse the champion it made
        raise ValueError(f"{name} version {version} is {KINDS.get(held, held)}: the champion of {name} must be "
                         f"{KINDS[kind]} (register it under its own name)")  # fmt: skip
    if kind and held == kind:  # the jobs load it: so does this, once (a weight file gone or cut leaves MLmodel)
        import mlflow

        try:
            mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        except Exception as err:  # whatever a damaged model raises (OSError, safetensors', pickle's)
            raise _unloadable(name, version, err) from None
    try:
        before = client.get_model_version_by_alias(name, CHAMPION).version
    except MlflowException:
        before = None
    try:
        client.set_registered_model_alias(name, CHAMPION, version)  # its run checked above (`require_finished`)
    except MlflowException as err:
        reason = err.message.splitlines()[0].rstrip(".")
        known = registered(client, f"models:/{name}/{version}")
        raise ValueError(f"{name} version {version}: {reason}; {known} (tracking store: {tracking_uri()})") from None
    return CHAMPION, version, before
