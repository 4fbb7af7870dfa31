"""HierarCaps (Alper & Averbuch-Elor 2024): captions in 4-level hierarchies, general to specific.

    motorized transportation => motorcycle => a motorcycle parked in front => A black Honda ...

The directory holds `hierarcaps_test.csv` (`id, captions, image_url`: the 1,000 test
hierarchies) and `hierarcaps_test_expanded.csv.gz` (`positive, negative, image_url`:
5,000 images, chains in the format of the HierarCaps train file). Training uses the
positive chains of the expanded file whose image is not a test image; evaluation the
test file. A caption is a node; each caption's ancestors are the captions above it in
any chain it is part of (not closed across chains on purpose: a generic caption such
as "man" sits in thousands of chains, and closing through it would make every chain's
top an ancestor of unrelated images' captions); its depth is the highest level
(0 = most general) it appears at.

Hierarchical retrieval (`retrieval_task`, text only: the images are not used): the
most specific caption of each test hierarchy asks for its ancestors, the other
captions of its chain, among the distinct captions of all test hierarchies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from hierarchies.datasets import Hierarchy

SEPARATOR = " => "
LEVELS = 4
TEST_FILE = "hierarcaps_test.csv"
EXPANDED_FILE = "hierarcaps_test_expanded.csv.gz"


def _chains(column: pl.Series) -> np.ndarray:
    """(n, 4) captions of ` => `-joined chains; a chain of another length is an error."""
    parts = column.str.split(SEPARATOR)
    bad = parts.list.len() != LEVELS
    if bad.any():
        raise ValueError(f"{int(bad.sum())} chains without {LEVELS} levels, e.g. {column.filter(bad)[0]!r}")
    return np.asarray(parts.to_list(), dtype=object).astype(str)


def read_test_chains(directory: str | Path) -> np.ndarray:
    """The 1,000 test hierarchies as (n, 4) captions, general first."""
    table = pl.read_csv(Path(directory) / TEST_FILE)
    return _chains(table["captions"].str.strip_chars())


def retrieval_task(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pool (distinct captions of `chains`), each chain's captions as pool indices
    (n, levels), the queries (each chain's most specific caption) and `relevant`
    (queries, pool): a query's ancestors, the other captions of its chain."""
    pool, index = np.unique(chains, return_inverse=True)
    index = index.reshape(chains.shape)
    queries = index[:, -1]
    relevant = np.zeros((len(index), len(pool)), dtype=bool)
    relevant[np.arange(len(index))[:, None], index[:, :-1]] = True
    relevant[np.arange(len(index)), queries] = False  # a caption repeated in its own chain is not its ancestor
    return pool, index, queries, relevant


def train_hierarchy(directory: str | Path) -> Hierarchy:
    """The positive chains of the expanded file whose image is not a test image, as a closure."""
    directory = Path(directory)
    test_images = pl.read_csv(directory / TEST_FILE)["image_url"]
    expanded = pl.read_csv(directory / EXPANDED_FILE).filter(~pl.col("image_url").is_in(test_images.implode()))
    return chains_hierarchy(_chains(expanded["positive"].str.strip_chars()))


def chains_hierarchy(chains: np.ndarray) -> Hierarchy:
    """Captions of (n, levels) chains as nodes; every caption above another in a chain is its ancestor."""
    names, index = np.unique(chains, return_inverse=True)
    index = index.reshape(chains.shape)
    pairs = [
        (index[:, i], index[:, j], np.full(len(index), i - j == 1)) for i in range(chains.shape[1]) for j in range(i)
    ]
    table = pl.DataFrame(
        {
            "child": np.concatenate([c for c, _, _ in pairs]),
            "ancestor": np.concatenate([a for _, a, _ in pairs]),
            "direct": np.concatenate([d for _, _, d in pairs]),
        }
    )
    table = (
        table.filter(pl.col("child") != pl.col("ancestor")).group_by("child", "ancestor").agg(pl.col("direct").any())
    )
    table = table.sort("child", "ancestor")
    depth = np.full(len(names), chains.shape[1], dtype=np.int64)
    np.minimum.at(depth, index.ravel(), np.tile(np.arange(chains.shape[1]), len(index)))
    return Hierarchy(
        names=names,
        texts=names,
        edges=table.select("child", "ancestor").to_numpy().astype(np.int64),
        direct=table["direct"].to_numpy(),
        depth=depth,
    )
