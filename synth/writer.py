"""Stream a synthetic log to disk: AOL TSV (optionally compressed) or DiffusionDB Parquet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sessions import storage
from synth.config import SynthConfig
from synth.generate import GOLD, Chunk, generate
from synth.taxonomy import Taxonomy


@dataclass(frozen=True)
class SynthSummary:
    """What `write_log` wrote: its location, style (aol or prompt), output rows (click rows
    and extra images included), users, gold sessions and missions, and wall seconds (to
    0.01 s); `notes`, what it did other than asked (users whose histories outlast --days)."""

    path: str
    style: str
    rows: int
    users: int
    sessions: int
    missions: int
    seconds: float
    notes: tuple[str, ...] = ()


def write_log(
    cfg: SynthConfig, taxonomy: Taxonomy, path: str | Path, on_chunk: Callable[[Chunk], None] | None = None
) -> SynthSummary:
    """Generate the log of cfg into path (a local path or a URI), atomically.

    `--style aol` writes the AOL collection's TSV (header `AnonID Query QueryTime
    ItemRank ClickURL` plus the gold columns), compressed when the name ends in
    `.gz`, `.bz2` or `.zst`; `--style prompt` writes a DiffusionDB `metadata.parquet`
    with the gold columns.
    """
    start = time.perf_counter()
    location = str(path)
    rows = users = sessions = missions = late = 0
    last = 0.0
    chunks = generate(cfg, taxonomy)  # settings it cannot hold fail here, before the output is opened
    with storage.open_output(location) as stream:
        writer = _TsvWriter(stream, location) if cfg.style == "aol" else _ParquetWriter(stream)
        with writer:
            for chunk in chunks:
                writer.write(chunk.rows)
                rows += chunk.rows.height
                users += chunk.users
                sessions += chunk.sessions
                missions += chunk.missions
                late, last = late + chunk.late_users, max(last, chunk.last_ts)
                if on_chunk is not None:
                    on_chunk(chunk)
    first, days = cfg.window
    ends = (last - first.timestamp()) / 86400
    notes = (f"{late:,} user(s) run past the {days} days of --days (the log ends {ends:.0f} days after it starts): "
             f"their bursts, --min-break-s ({cfg.min_break_s:g} s) apart at least, do not fit; give more --days, or "
             "fewer --rows per user",) if late else ()  # fmt: skip
    seconds = round(time.perf_counter() - start, 2)
    return SynthSummary(location, cfg.style, rows, users, sessions, missions, seconds, notes)


def is_synthetic_log(path: str | Path) -> bool:
    """Whether the file at `path` is a log `write_log` wrote: its TSV header (first line,
    decompressed) or its Parquet schema has the gold columns. False for any other file,
    and for one that cannot be read as either."""
    location = str(path)
    try:
        if location.endswith(".parquet"):
            with storage.open_random_access(location) as file:
                names = pq.read_schema(file).names
        else:
            with storage.open_input(location) as stream:
                names = stream.read(1 << 16).split(b"\n", 1)[0].decode("utf-8").rstrip("\r").split("\t")
    except (OSError, ValueError, pa.ArrowException):
        return False
    return set(GOLD) <= set(names)


class _TsvWriter:
    def __init__(self, stream: pa.NativeFile, location: str) -> None:
        compression = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}.get(Path(location).suffix)
        self._stream = pa.CompressedOutputStream(stream, compression) if compression else stream
        self._header = True

    def __enter__(self) -> _TsvWriter:
        return self

    def write(self, rows: pl.DataFrame) -> None:
        rows.write_csv(self._stream, separator="\t", include_header=self._header, quote_style="never", null_value="")
        self._header = False

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None and isinstance(self._stream, pa.CompressedOutputStream):
            self._stream.close()  # flushes the compressed tail; the file itself is closed by open_output


class _ParquetWriter:
    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> _ParquetWriter:
        return self

    def write(self, rows: pl.DataFrame) -> None:
        table = rows.to_arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._stream, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
