"""Stream a synthetic log to disk: AOL TSV (optionally compressed) or DiffusionDB Parquet."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from synth.config import SynthConfig
from synth.generate import Chunk, generate
from synth.taxonomy import Taxonomy


@dataclass(frozen=True)
class SynthSummary:
    path: str
    style: str
    rows: int
    users: int
    sessions: int
    missions: int
    seconds: float


def write_log(
    cfg: SynthConfig, taxonomy: Taxonomy, path: str | Path, on_chunk: Callable[[Chunk], None] | None = None
) -> SynthSummary:
    """Generate the log of cfg into path, atomically.

    `--style aol` writes the AOL collection's TSV (header `AnonID Query QueryTime
    ItemRank ClickURL` plus the gold columns), compressed when the name ends in
    `.gz`, `.bz2` or `.zst`; `--style prompt` writes a DiffusionDB `metadata.parquet`
    with the gold columns.
    """
    start = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    rows = users = sessions = missions = 0
    try:
        writer = _TsvWriter(tmp, path) if cfg.style == "aol" else _ParquetWriter(tmp)
        with writer:
            for chunk in generate(cfg, taxonomy):
                writer.write(chunk.rows)
                rows += chunk.rows.height
                users += chunk.users
                sessions += chunk.sessions
                missions += chunk.missions
                if on_chunk is not None:
                    on_chunk(chunk)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return SynthSummary(str(path), cfg.style, rows, users, sessions, missions, round(time.perf_counter() - start, 2))


class _TsvWriter:
    def __init__(self, tmp: Path, final: Path) -> None:
        compression = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}.get(final.suffix)
        self._stream = pa.output_stream(str(tmp), compression=compression)
        self._header = True

    def __enter__(self) -> _TsvWriter:
        return self

    def write(self, rows: pl.DataFrame) -> None:
        rows.write_csv(self._stream, separator="\t", include_header=self._header, quote_style="never", null_value="")
        self._header = False

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


class _ParquetWriter:
    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> _ParquetWriter:
        return self

    def write(self, rows: pl.DataFrame) -> None:
        table = rows.to_arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
