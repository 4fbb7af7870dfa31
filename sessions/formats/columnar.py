"""Logs whose records are already split into named values: Parquet files and JSON lines.

DiffusionDB's `metadata.parquet`, synthetic prompt logs and generic tables use these.
A record's original values travel as one struct column, so a rejected record is
written back exactly as it was read (as JSON) and the canonical column names never
collide with the input's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessions import storage
from sessions.formats.base import Builder, Check, Columns, LogFormat, Parsed, finalize, text_checks
from sessions.formats.options import ReadOptions
from sessions.records import DEFAULT_BLOCK_BYTES, iter_blocks, split_records
from sessions.schema import Reason
from sessions.times import TimeOptions

RECORD = "_record"
# Rows per Parquet batch, for a block of about DEFAULT_BLOCK_BYTES of prompt text.
_BYTES_PER_ROW = 256


def utc_timestamps(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with time stamps of a fixed-offset zone (`+05:30`, as pandas writes them)
    as UTC ones: the same instants (Arrow stores UTC either way), in a zone polars takes."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit, "UTC"), f.nullable)
        if pa.types.is_timestamp(f.type) and f.type.tz and f.type.tz[0] in "+-"
        else f
        for f in batch.schema
    ]
    return batch if fields == list(batch.schema) else batch.cast(pa.schema(fields))


def decoded_text(batch: pa.RecordBatch, columns: Sequence[str] = ()) -> tuple[pa.RecordBatch, pa.Array | None]:
    """The batch with its binary and categorical columns as plain values (text for
    binary), and the rows whose text is not UTF-8.

    Parquet writers store text as `binary` as well as `string`; polars can neither
    cast bytes that are not UTF-8 to text nor write binary into the rejected table's
    JSON. Each binary column becomes a text one (bytes that are not UTF-8 escaped,
    `\\xff`, as the rejected table shows them); the mask marks the rows where one of
    `columns` (the mapped ones; every binary column when empty) held such bytes, for
    their rejection as `bad_encoding` as a text log's; None when none did.
    """
    arrays, bad = list(batch.columns), None
    for i, f in enumerate(batch.schema):
        if pa.types.is_dictionary(f.type):  # a categorical (pandas writes them): its values
            arrays[i] = arrays[i].dictionary_decode()
        kind = arrays[i].type
        if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)):
            continue
        text = {pa.large_binary(): pa.large_string(), pa.binary_view(): pa.string_view()}.get(kind, pa.string())
        try:
            arrays[i] = arrays[i].cast(text)
            continue
        except pa.ArrowInvalid:  # some value is not UTF-8
            decoded = [_decoded(v) for v in arrays[i].to_pylist()]
        arrays[i] = pa.array([value for value, _ in decoded], text)
        if not columns or f.name in columns:
            column_bad = pa.array([not utf8 for _, utf8 in decoded])
            bad = column_bad if bad is None else pc.or_(bad, column_bad)
    schema = pa.schema([pa.field(f.name, a.type, f.nullable) for f, a in zip(batch.schema, arrays, strict=True)])
    return pa.RecordBatch.from_arrays(arrays, schema=schema), bad


def _decoded(value: bytes | None) -> tuple[str | None, bool]:
    """`value` as text (bytes that are not UTF-8 escaped) and whether it was UTF-8."""
    if value is None:
        return None, True
    try:
        return value.decode("utf-8"), True
    except UnicodeDecodeError:
        return value.decode("utf-8", "backslashreplace"), False


class StructFields(Columns):
    """Typed columns held in the `_record` struct."""

    def __init__(self, schema: pl.Schema, times: TimeOptions) -> None:
        self.names = list(schema.names())
        self.schema = schema
        self.times = times

    def _get(self, name: str) -> pl.Expr:
        value = pl.col(RECORD).struct.field(name)
        if self.schema[name].is_float():  # integer ids in a float column (pandas with a missing value): 1.0 is 1
            whole = value.is_finite() & (value == value.floor()) & (value.abs() < 2.0**53)
            return (
                pl.when(whole).then(value.cast(pl.Int64, strict=False).cast(pl.String))
                .when(value.is_nan()).then(None)  # pandas' missing value: no value, not the text "NaN"
                .otherwise(value.cast(pl.String))
            )  # fmt: skip
        return value

    def dtype(self, name: str) -> pl.DataType:
        return self.schema[name]


class JsonFields(Columns):
    """Top-level values of a JSON object per line (as text)."""

    def __init__(self, names: Sequence[str], times: TimeOptions) -> None:
        self.names = list(names)
        self.times = times

    def _get(self, name: str) -> pl.Expr:
        key = name.replace("\\", "\\\\").replace("'", "\\'")
        return pl.col("text").str.json_path_match(f"$['{key}']")


@dataclass(frozen=True)
class ParquetFormat(LogFormat):
    """A Parquet log, read one row group batch at a time; `line_no` is the 1-based row."""

    name: str
    build: Builder
    checks: tuple[Check, ...] = ()
    unknown_users: tuple[str, ...] = ()
    options: ReadOptions = field(default_factory=ReadOptions)
    columns: tuple[str, ...] = ()  # the columns `build` reads (all, when empty): their bytes must be UTF-8

    def read_blocks(self, path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Parsed]:
        reader = pq.ParquetFile(storage.open_random_access(path))
        batch_rows = max(1024, block_bytes // _BYTES_PER_ROW)
        next_row = 0
        for batch in reader.iter_batches(batch_size=batch_rows):
            batch, not_utf8 = decoded_text(utc_timestamps(batch), self.columns)
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            fields = StructFields(df.schema, self.options.times)
            lf = (
                df.lazy()
                .select(pl.struct(pl.all()).alias(RECORD))
                .with_row_index("row_id", offset=next_row)
                .with_columns(line_no=pl.col("row_id") + 1)
                .with_columns(**fields.with_naive(self.build(fields)))
            )
            checks = [*self.value_checks(), *self.checks]
            if not_utf8 is not None:
                lf = lf.with_columns(_not_utf8=pl.lit(pl.Series(not_utf8)))
                checks.insert(0, (pl.col("_not_utf8"), Reason.BAD_ENCODING))
            parsed = finalize(
                lf, source=self.name, source_file=str(path), checks=checks, raw=pl.col(RECORD).struct.json_encode()
            )
            next_row += parsed.n_records
            yield parsed


@dataclass(frozen=True)
class JsonLinesFormat(LogFormat):
    """One JSON object per line; `names` are the keys the builder may use."""

    name: str
    names: tuple[str, ...]
    build: Builder
    unknown_users: tuple[str, ...] = ()
    options: ReadOptions = field(default_factory=ReadOptions)

    def read_blocks(self, path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Parsed]:
        next_row = 0
        fields = JsonFields(self.names, self.options.times)
        for block in iter_blocks(path, block_bytes=block_bytes):
            records = split_records(block)
            built = fields.with_naive(self.build(fields))
            lf = records.lazy().with_row_index("row_id", offset=next_row).with_columns(**built)
            not_object = ~pl.col("text").str.json_path_match("$").str.starts_with("{").fill_null(False)
            checks = [*text_checks(), (not_object, Reason.BAD_JSON), *self.value_checks()]
            raw = pl.coalesce("text", "undecodable")
            parsed = finalize(lf, source=self.name, source_file=str(path), checks=checks, raw=raw, damage=block.damage)
            next_row += parsed.n_records
            yield parsed
