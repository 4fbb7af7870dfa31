"""The tiny concept hierarchy (tests/conftest.py) as index arrays, for the models' tests."""

from __future__ import annotations

import pytest

from hierarchies.closure import transitive_closure
from hierarchies.datasets import Hierarchy, build_hierarchy


@pytest.fixture(scope="session")
def tiny_hierarchy(tiny_taxonomy) -> Hierarchy:
    """18 nodes, 54 closure edges: animals and vehicles under entity."""
    return build_hierarchy(transitive_closure(tiny_taxonomy.edges), tiny_taxonomy.edges, tiny_taxonomy.concepts)
