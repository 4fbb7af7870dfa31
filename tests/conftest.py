"""Shared fixtures: small files written by the tests themselves, and a tiny concept
hierarchy so that the synthetic-log tests need no WordNet."""

from __future__ import annotations

import os

# Ray, when a test starts one: no token auth, loopback only, no 2 s pause per report.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")

import polars as pl
import pytest

from synth import Taxonomy

TINY_EDGES = [
    ("animal.n.01", "organism.n.01"), ("dog.n.01", "animal.n.01"), ("cat.n.01", "animal.n.01"),
    ("bird.n.01", "animal.n.01"), ("poodle.n.01", "dog.n.01"), ("terrier.n.01", "dog.n.01"),
    ("toy_poodle.n.01", "poodle.n.01"), ("persian_cat.n.01", "cat.n.01"), ("siamese_cat.n.01", "cat.n.01"),
    ("parrot.n.01", "bird.n.01"), ("vehicle.n.01", "artifact.n.01"), ("car.n.01", "vehicle.n.01"),
    ("truck.n.01", "vehicle.n.01"), ("cab.n.01", "car.n.01"), ("coupe.n.01", "car.n.01"),
    ("artifact.n.01", "entity.n.01"), ("organism.n.01", "entity.n.01"),
]  # fmt: skip


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
