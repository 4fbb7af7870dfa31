"""Shared fixtures: a working directory of the session's own, small files written by the
tests themselves, and a tiny concept hierarchy so that the synthetic-log tests need no
WordNet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Ray, when a test starts one: no 2 s pause per report. (That a local Ray listens on
# 127.0.0.1 only is the product's doing, checked below, not this file's.)
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
# torch's OpenMP threads sleep when they wait instead of spinning: with `make test`'s
# two workers (or anything else) on the same cores, spinning threads took the CPU from
# the work (a small model's step: 40 ms spinning, 21 ms sleeping, 13 ms on a quiet
# machine). Read when torch loads, so set before any test imports it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import polars as pl
import pytest
from listeners import ListenerWatch

from synth import Taxonomy

TINY_EDGES = [
    ("animal.n.01", "organism.n.01"), ("dog.n.01", "animal.n.01"), ("cat.n.01", "animal.n.01"),
    ("bird.n.01", "animal.n.01"), ("poodle.n.01", "dog.n.01"), ("terrier.n.01", "dog.n.01"),
    ("toy_poodle.n.01", "poodle.n.01"), ("persian_cat.n.01", "cat.n.01"), ("siamese_cat.n.01", "cat.n.01"),
    ("parrot.n.01", "bird.n.01"), ("vehicle.n.01", "artifact.n.01"), ("car.n.01", "vehicle.n.01"),
    ("truck.n.01", "vehicle.n.01"), ("cab.n.01", "car.n.01"), ("coupe.n.01", "car.n.01"),
    ("artifact.n.01", "entity.n.01"), ("organism.n.01", "entity.n.01"),
]  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def scratch_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test (and every module's fixtures) runs in a working directory of the
    session's own, not in the checkout it was started from: what is written relative to
    it lands there. Run from the checkout, the suite left MLflow's files in it: a SQLite
    store's default artifact root is `./mlruns`, resolved against the working directory
    when a client first opens the store, so the Default experiment of every test's store
    and each experiment a job made there kept its runs' artifacts in ./mlruns, whatever
    MLFLOW_TRACKING_URI said; and a job given no MLFLOW_TRACKING_URI wrote ./mlflow.db.
    A test that changes directory itself (`monkeypatch.chdir`) comes back here; a
    subprocess started without `cwd` starts here."""
    checkout = Path.cwd()
    scratch = tmp_path_factory.mktemp("cwd")
    os.chdir(scratch)
    yield scratch
    os.chdir(checkout)


@pytest.fixture(autouse=True)
def only_loopback_listeners(request):
    """Every test: nothing this process or its descendants open listens beyond
    127.0.0.1 / ::1 while the test runs (tests marked `own_network` run their cluster
    in a network namespace of its own, which this cannot see into; `listens_everywhere`:
    the test of this watch itself)."""
    if request.node.get_closest_marker("own_network") or request.node.get_closest_marker("listens_everywhere"):
        yield
        return
    watch = ListenerWatch(float(os.environ.get("LISTENER_WATCH_INTERVAL", "0.25")))
    watch.start()
    yield
    found = watch.stop()
    assert not found, f"listening beyond loopback: {sorted(found)}"


@pytest.fixture(scope="session")
def wordnet_taxonomy() -> Taxonomy:
    """WordNet's nouns, as the CLI's `synth` uses them (built once, then cached)."""
    return Taxonomy.wordnet()


@pytest.fixture(scope="session")
def tiny_taxonomy() -> Taxonomy:
    return make_tiny_taxonomy()


def make_tiny_taxonomy() -> Taxonomy:
    """Two small trees (animals, vehicles) under entity, WordNet-shaped."""
    edges = pl.DataFrame(TINY_EDGES, schema=["child", "parent"], orient="row")
    ids = sorted(set(edges["child"]) | set(edges["parent"]))
    depth = {"entity.n.01": 0}
    while len(depth) < len(ids):
        for child, parent in TINY_EDGES:
            if parent in depth:
                depth[child] = depth[parent] + 1
    lex = {
        i: (
            "noun.artifact"
            if i in {"vehicle.n.01", "car.n.01", "truck.n.01", "cab.n.01", "coupe.n.01", "artifact.n.01"}
            else "noun.animal"
        )
        for i in ids
    }
    concepts = pl.DataFrame(
        {
            "id": ids,
            "lemmas": [[i.split(".")[0].replace("_", " ")] for i in ids],
            "lemma_counts": [[3] for _ in ids],
            "depth": [depth[i] for i in ids],
            "lexname": [lex[i] for i in ids],
        },
        schema_overrides={"lemma_counts": pl.List(pl.Int32), "depth": pl.Int32},
    )
    return Taxonomy(concepts, edges)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_server(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """moto's standalone server on 127.0.0.1 (with `env` added to its environment), its
    output in `log`; its URL, once it answers."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    port = free_port()
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except urllib.error.HTTPError:  # it answered (refusing a request that has no credentials)
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """An S3-compatible endpoint on 127.0.0.1 (moto's standalone server) standing in for
    the cloud's object store, which cannot be reached here; its URL."""
    yield from moto_server(tmp_path_factory.mktemp("moto") / "moto.log")


@pytest.fixture(scope="session")
def s3_checking_credentials(tmp_path_factory):
    """An S3-compatible endpoint on 127.0.0.1 that checks credentials, as a cloud's store
    does (moto's endpoint takes any): it knows no key, so it refuses every request; its URL."""
    yield from moto_server(tmp_path_factory.mktemp("moto") / "moto.log", {"INITIAL_NO_AUTH_ACTION_COUNT": "0"})


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip


@pytest.fixture
def s3(s3_endpoint, monkeypatch, request) -> str:
    """A fresh bucket on the local endpoint, and the standard AWS variables pointing at
    it (what a user sets for any S3-compatible store); `s3://BUCKET`."""
    import re

    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


# The modules that take minutes (Ray Train jobs, the two-node cluster, the demo), the
# longest first. Under pytest-xdist (`make test`: --dist loadscope, a module to a
# worker) they start first, so that the two workers run them side by side and the many
# short modules fill in behind; a run in one process keeps the files' order.
LONGEST_MODULES = (
    "test_train_hierarchy.py", "test_cluster.py", "test_training_hierarchy.py", "test_demo.py",
    "test_train_session.py", "test_score.py", "test_signals.py", "test_ray_engine.py", "test_private_ray.py",
    "test_nodes.py",
)  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not a pytest-xdist worker (where the tests are collected)
        return
    rank = {name: i for i, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each module's own order kept
