"""Writing outputs atomically and reading them back.

A job writes every file under a temporary name and renames it into place when it is
complete, so a killed job never leaves a half file that looks finished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class ParquetSink:
    """Append polars frames of one schema to a Parquet file, published on close.

    Each frame becomes (at least) one row group. On an exception inside the `with`
    block the temporary file is removed and nothing is published.

    Example:
        >>> with ParquetSink("out/events.parquet", EVENT_SCHEMA) as sink:
        ...     for block in blocks:
        ...         sink.write(block)
    """

    def __init__(self, path: str | Path, schema: dict[str, pl.DataType]) -> None:
        self.path = Path(path)
        self.rows = 0
        self._schema = pl.DataFrame(schema=schema).to_arrow().schema
        self._tmp = _temporary(self.path)
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ParquetSink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")
        return self

    def write(self, frame: pl.DataFrame) -> None:
        assert self._writer is not None, "use ParquetSink as a context manager"
        if frame.height:
            self._writer.write_table(pa.Table.from_batches(frame.to_arrow().to_batches(), self._schema))
            self.rows += frame.height

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._writer is not None
        self._writer.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write one frame to Parquet atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    frame.write_parquet(tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (indented, keys in the order given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def scan_table(path: str | Path) -> pl.LazyFrame:
    """A Parquet output of any job, written as one file or as a dataset directory."""
    path = Path(path)
    if path.is_dir():
        return pl.scan_parquet(path / "**" / "*.parquet")
    return pl.scan_parquet(path)


def parquet_rows(path: str | Path) -> int:
    """Rows in a Parquet file or dataset directory, from the metadata alone."""
    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
