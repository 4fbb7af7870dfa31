"""The reference mammal closure, by its digest: the tests need no copy of ../shared."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import polars as pl
import pytest

# SHA-256 of the reference mammal closure (../shared/data/wordnet/mammal_closure.csv,
# made by the Poincaré-embeddings code), as sorted "id1,id2\n" lines: 6,540 edges.
MAMMAL_CLOSURE_SHA256 = "1f719df8b56f9f9c133f04f2a654b7eecc79282417bc422260bf2648d7a47166"


@pytest.fixture(scope="session")
def is_reference_mammal_closure() -> Callable[[pl.DataFrame], bool]:
    """Whether a closure (`id1` child, `id2` ancestor) is the reference, edge for edge."""

    def check(closure: pl.DataFrame) -> bool:
        rows = closure.select("id1", "id2").sort("id1", "id2").rows()
        return hashlib.sha256("".join(f"{a},{b}\n" for a, b in rows).encode()).hexdigest() == MAMMAL_CLOSURE_SHA256

    return check
