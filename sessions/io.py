"""Writing outputs atomically and reading them back.

A job writes every file under a temporary name and renames it into place when it is
complete, so a killed job never leaves a half file that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
import pyarrow.parquet as pq


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class ParquetSink:
    """Append polars frames of one schema to a Parquet dataset directory, published on close.

    Each frame becomes a part file (`part-00000.parquet`, ...), written by a
    background thread while the caller prepares the next frame (polars releases
    the GIL, so reading and writing share the cores); at most two frames wait. The
    directory is built under a temporary name and renamed into place on success; on
    an exception inside the `with` block it is removed and nothing is published.

    Example:
        >>> with ParquetSink("out/events.parquet", EVENT_SCHEMA) as sink:
        ...     for block in blocks:
        ...         sink.write(block)
    """

    def __init__(self, path: str | Path, schema: dict[str, pl.DataType]) -> None:
        self.path = Path(path)
        self.rows = 0
        self._schema = schema
        self._tmp = _temporary(self.path)
        self._parts = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()

    def __enter__(self) -> ParquetSink:
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-sink")
        return self

    def write(self, frame: pl.DataFrame) -> None:
        assert self._pool is not None, "use ParquetSink as a context manager"
        if not frame.height:
            return
        while len(self._pending) >= 2:
            self._pending.popleft().result()
        part = self._tmp / f"part-{self._parts:05d}.parquet"
        self._pending.append(self._pool.submit(frame.cast(self._schema).write_parquet, part))  # type: ignore[arg-type]
        self._parts += 1
        self.rows += frame.height

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._pool is not None
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pool.shutdown()
        if exc_type is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        if self._parts == 0:  # an empty dataset still tells its schema
            pl.DataFrame(schema=self._schema).write_parquet(self._tmp / "part-00000.parquet")
        _publish(self._tmp, self.path)


class MemorySink:
    """Keeps the frames written to it (optionally only some columns), for a next
    step that consumes them directly instead of reading them back from disk."""

    def __init__(self, columns: list[str] | None = None) -> None:
        self.rows = 0
        self._columns = columns
        self._frames: list[pl.DataFrame] = []

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self._frames.append(frame.select(self._columns) if self._columns else frame)
            self.rows += frame.height

    def frame(self, schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
        """Everything written, as one frame (empty with `schema` when nothing was)."""
        if not self._frames:
            return pl.DataFrame(schema=schema)
        return pl.concat(self._frames, rechunk=False)


def _publish(tmp: Path, path: Path) -> None:
    """Move a finished file or directory into place, replacing an older one."""
    if path.is_dir() and tmp.is_dir():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    elif path.is_dir():
        shutil.rmtree(path)
        os.replace(tmp, path)
    else:
        if tmp.is_dir() and path.exists():
            path.unlink()
        os.replace(tmp, path)


def write_parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write one frame to a Parquet file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    frame.write_parquet(tmp)
    _publish(tmp, path)
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
        return pl.scan_parquet(sorted(path.rglob("*.parquet")))
    return pl.scan_parquet(path)


def read_table(path: str | Path) -> pl.DataFrame:
    """`scan_table`, collected."""
    return scan_table(path).collect()


def parquet_rows(path: str | Path) -> int:
    """Rows in a Parquet file or dataset directory, from the metadata alone."""
    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
