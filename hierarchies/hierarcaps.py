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
(0 = most general) it appears at. A caption twice in one chain is refused, with its
line. Two captions that chains order both ways tell no order: the published training
chains order 14 pairs of near-synonyms so ("food => dish" and "dish => food", "tv" and
"television"), and both (child, ancestor) pairs of each are dropped (`two_way_pairs`;
the metric `dropped_two_way_pairs` counts those dropped, twice the captions' pairs);
any other cycle through chains is refused (`hierarchies.datasets.refuse_cycles`).

Hierarchical retrieval (`retrieval_task`, text only: the images are not used): the
most specific caption of each test hierarchy asks for its ancestors, the other
captions of its chain, among the distinct captions of all test hierarchies.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from hierarchies.datasets import Hierarchy

SEPARATOR = " => "
LEVELS = 4
TEST_FILE = "hierarcaps_test.csv"
EXPANDED_FILE = "hierarcaps_test_expanded.csv.gz"


def _chains(column: pl.Series, path: Path, records: pl.Series) -> np.ndarray:
    """(n, 4) captions of ` => `-joined chains (each caption stripped of the spaces around
    it), read from the `records` (n,) of the CSV file `path` (0: the first after the
    header). ValueError naming the file and the first such record's line for none, an
    empty field, a chain of another length, an empty caption, or a caption twice in one
    chain (its own ancestor)."""
    if not len(column):
        raise ValueError(f"no edges in {path}: it holds no chain")
    parts = column.str.split(SEPARATOR).list.eval(pl.element().str.strip_chars())  # "a=>b" is one caption
    short = (parts.list.len() != LEVELS).fill_null(True).to_numpy()
    empty = parts.list.eval(pl.element() == "").list.any().fill_null(False).to_numpy()
    if (bad := short | empty).any():
        rows = np.flatnonzero(bad)
        row = int(rows[0])
        chain = column[row]
        more = f" ({len(rows)} such chains)" if len(rows) > 1 else ""
        if not chain:
            what = "no chain"
        elif short[row]:
            what = f"{chain!r} is not {LEVELS} captions joined by {SEPARATOR!r}"
        else:
            what = f"{chain!r} has an empty caption"
        raise ValueError(f"{path} line {_line(path, records[row])}: {what}{more}")
    chains = np.asarray(parts.to_list(), dtype=object).astype(str)
    ordered = np.sort(chains, axis=1)
    repeats = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    if len(repeats):
        row = repeats[0]
        twice = str(ordered[row, 1:][ordered[row, 1:] == ordered[row, :-1]][0])
        more = f" ({len(repeats)} such chains)" if len(repeats) > 1 else ""
        raise ValueError(
            f"{path} line {_line(path, records[int(row)])}: {twice!r} twice in one chain, its own ancestor{more}"
        )
    return chains


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record of `path` (gzipped or not) with the line it starts on (from 1:
    the header's, which comes first): a quoted caption may span lines. Python's csv
    module, read again only to name a line in an error."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rt", encoding="utf-8-sig", newline="", errors="replace") as text:
        reader = csv.reader(text)
        start = 1
        for fields in reader:
            yield start, fields
            start = reader.line_num + 1


def _line(path: Path, record: int) -> int:
    """The line of `path` (from 1, the header's) on which CSV record `record` (0: the
    first after the header) starts."""
    start = 1
    for index, (start, _) in enumerate(_records(path)):
        if index == record + 1:
            return start
    return start


def _ragged(path: Path) -> str:
    """Where `path` first has a record with more fields than its header: "line N: K
    fields, the header has M" (or "" when Python's csv module finds none)."""
    header = None
    for start, fields in _records(path):
        if header is None:
            header = len(fields)
        elif len(fields) > header:
            return f"line {start}: {len(fields)} fields, the header has {header}"
    return ""


COLUMNS = {TEST_FILE: ("captions", "image_url"), EXPANDED_FILE: ("positive", "image_url")}  # what is read of each


def _read(path: Path) -> pl.DataFrame:
    """The CSV file `path` with `record`, each row's index (0: the first after the header).
    ValueError naming the file for one that is empty, damaged (a cut gzip stream) or not
    CSV, or without the columns read of it (`COLUMNS`); FileNotFoundError for none."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (HierarCaps' directory holds {TEST_FILE} and {EXPANDED_FILE})")
    try:
        table = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.NoDataError:
        raise ValueError(f"{path}: empty, not HierarCaps' {path.name} (no header)") from None
    except (pl.exceptions.PolarsError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "more fields" in reason and (where := _ragged(path)):
            raise ValueError(f"{path} {where}") from None
        raise ValueError(f"{path}: cannot be read as CSV ({reason})") from None
    missing = [c for c in COLUMNS.get(path.name, ()) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(map(repr, missing))} (its columns: {', '.join(table.columns)}); "
            f"HierarCaps' {path.name} has {', '.join(COLUMNS[path.name])}"
        )
    return table.with_row_index("record")


def read_test_chains(directory: str | Path) -> np.ndarray:
    """The 1,000 test hierarchies as (n, 4) captions, general first (ValueError as `_chains`,
    and as `_read` for a file without its columns)."""
    path = Path(directory) / TEST_FILE
    table = _read(path)
    return _chains(table["captions"].str.strip_chars(), path, table["record"])


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


def train_chains(directory: str | Path) -> np.ndarray:
    """The positive chains (n, 4) of the expanded file whose image is not a test image
    (a row without an image is none: it trains) (ValueError as `_chains`, and for a
    test file without images)."""
    directory = Path(directory)
    test_images = _read(directory / TEST_FILE)["image_url"]
    path = directory / EXPANDED_FILE
    expanded = _read(path).filter(~pl.col("image_url").is_in(test_images.drop_nulls().implode()).fill_null(False))
    return _chains(expanded["positive"].str.strip_chars(), path, expanded["record"])


def train_hierarchy(directory: str | Path) -> Hierarchy:
    """The training chains (`train_chains`) as a hierarchy (`chains_hierarchy`)."""
    return chains_hierarchy(train_chains(directory))


def _pairs(chains: np.ndarray) -> tuple[np.ndarray, pl.DataFrame]:
    """The captions (n,) of (k, levels) chains, sorted, and every (child, ancestor) pair
    of them once: `child`, `ancestor` (indices into the captions), `direct` (one level
    apart in some chain), `two_way` (two captions that other chains order the other way)."""
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
    table = table.group_by("child", "ancestor").agg(pl.col("direct").any())
    reverse = table.filter(pl.col("child") != pl.col("ancestor")).select(child="ancestor", ancestor="child")
    two_way = table.join(reverse.with_columns(two_way=pl.lit(True)), on=["child", "ancestor"], how="left")
    return names, two_way.with_columns(pl.col("two_way").fill_null(False))


def two_way_pairs(chains: np.ndarray) -> np.ndarray:
    """(k, 2) captions, each pair (a, b) with a < b that some of the (n, levels) `chains`
    order a above b and others b above a: neither is the other's ancestor."""
    names, table = _pairs(chains)
    both = table.filter("two_way", pl.col("child") < pl.col("ancestor")).sort("child", "ancestor")
    return names[both.select("child", "ancestor").to_numpy()].reshape(-1, 2)


def chains_hierarchy(chains: np.ndarray) -> Hierarchy:
    """Captions of (n, levels) chains as nodes; every caption above another in a chain is
    its ancestor, but for pairs that other chains order the other way (`two_way_pairs`).
    ValueError (`Hierarchy`) for a caption twice in a chain or a cycle through chains."""
    names, table = _pairs(chains)
    index = np.searchsorted(names, chains)
    table = table.filter(~pl.col("two_way")).sort("child", "ancestor")
    depth = np.full(len(names), chains.shape[1], dtype=np.int64)
    np.minimum.at(depth, index.ravel(), np.tile(np.arange(chains.shape[1]), len(index)))
    return Hierarchy(
        names=names,
        texts=names,
        edges=table.select("child", "ancestor").to_numpy().astype(np.int64),
        direct=table["direct"].to_numpy(),
        depth=depth,
    )
