"""Logs whose records are already split into named values: Parquet files and JSON lines.

DiffusionDB's `metadata.parquet`, synthetic prompt logs and generic tables use these.
A record's original values travel as one struct column, so a rejected record is
written back exactly as it was read (as JSON) and the canonical column names never
collide with the input's own.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessions import storage
from sessions.fields import FLOAT_NOTATION, is_whole
from sessions.formats.base import Builder, Check, Columns, LogFormat, Parsed, column_index, finalize, text_checks
from sessions.formats.options import ReadOptions
from sessions.records import DEFAULT_BLOCK_BYTES, archive_refusal, iter_blocks, split_records
from sessions.schema import Reason
from sessions.times import TimeOptions, held_years

RECORD = "_record"
MIN_BATCH_ROWS = 64  # rows of a Parquet batch at least (`rows_per_batch`)


def utc_timestamps(batch: pa.RecordBatch, int96: frozenset[str] = frozenset()) -> pa.RecordBatch:
    """The batch with time stamps of any zone as UTC ones, in lists and structs too: the
    same instants (Arrow stores UTC whatever the zone), in the one zone polars always
    takes (a fixed offset as pandas writes it, `+05:30`, and a name it does not know,
    `UTC+05:30`, it refuses). The top-level columns named in `int96` (`int96_columns`),
    which pyarrow reads without a zone, are UTC instants as well: Spark and Hive write
    an int96 time stamp as its instant in UTC, and read it so (`--timezone` applies to
    wall times, and an int96 is none; Impala's local int96, the exception, is not told
    apart)."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit, "UTC") if f.name in int96 and pa.types.is_timestamp(f.type)
                 and f.type.tz is None else _in(f.type, _utc), f.nullable)
        for f in batch.schema
    ]  # fmt: skip
    return batch if fields == list(batch.schema) else batch.cast(pa.schema(fields))


def int96_columns(schema: pq.ParquetSchema) -> frozenset[str]:
    """The top-level columns of a Parquet file stored as int96 time stamps (Spark's and
    Hive's, and Impala's)."""
    columns = (schema.column(i) for i in range(len(schema)))
    return frozenset(c.path for c in columns if c.physical_type == "INT96" and "." not in c.path)


def _utc(kind: pa.DataType) -> pa.DataType:
    zoned = pa.types.is_timestamp(kind) and kind.tz and kind.tz != "UTC"
    return pa.timestamp(kind.unit, "UTC") if zoned else kind


def _bytes(kind: pa.DataType) -> pa.DataType:
    return _AS_BYTES.get(kind, kind)


def _in(kind: pa.DataType, change: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    """`kind` with `change` made to it and to every type nested in it (lists, structs, maps)."""
    if pa.types.is_struct(kind):
        return change(pa.struct([kind.field(i).with_type(_in(kind.field(i).type, change))
                                 for i in range(kind.num_fields)]))  # fmt: skip
    if pa.types.is_map(kind):
        return change(pa.map_(_in(kind.key_type, change), _in(kind.item_type, change)))
    if isinstance(kind, pa.ListType):
        return change(pa.list_(kind.value_field.with_type(_in(kind.value_type, change))))
    if isinstance(kind, pa.LargeListType):
        return change(pa.large_list(kind.value_field.with_type(_in(kind.value_type, change))))
    return change(kind)


_AS_BYTES = {pa.string(): pa.binary(), pa.large_string(): pa.large_binary(), pa.string_view(): pa.binary_view()}
_AS_TEXT = {pa.binary(): pa.string(), pa.large_binary(): pa.large_string(), pa.binary_view(): pa.string_view()}


def decoded_text(batch: pa.RecordBatch, columns: Sequence[str] = ()) -> tuple[pa.RecordBatch, pa.Array | None]:
    """The batch with its text, binary and categorical columns as plain text values,
    each checked for UTF-8, every other column in a type polars holds, and the rows
    whose text is not UTF-8.

    Parquet writers store text as `binary` as well as `string`, and some (parquet-mr,
    Hive, Go's) write bytes that are not UTF-8 into a `string` column, which pyarrow
    reads without a check and polars then wrote into the events unread (or crashed on);
    polars can neither cast such bytes to text nor write binary into the rejected
    table's JSON. Each of these columns becomes a text one (bytes that are not UTF-8
    escaped, `\\xff`, as the rejected table shows them); the mask marks the rows where
    one of `columns` (the mapped ones; every such column when empty) held such bytes,
    for their rejection as `bad_encoding` as a text log's; None when none did. A column
    of a type polars does not hold (`decimal256`, BigQuery's BIGNUMERIC) becomes its
    text (`polars_holds`).
    """
    arrays, bad = list(batch.columns), None
    for i, f in enumerate(batch.schema):
        if isinstance(arrays[i], pa.ExtensionArray):  # a uuid, say: the values it is stored as
            arrays[i] = arrays[i].storage
        if pa.types.is_dictionary(arrays[i].type):  # a categorical (pandas writes them): its values
            arrays[i] = arrays[i].dictionary_decode()
        if pa.types.is_fixed_size_binary(arrays[i].type):  # a hash: bytes as any binary's
            arrays[i] = arrays[i].cast(pa.binary())
        if pa.types.is_float16(arrays[i].type):  # exact in float32, where polars' floor of float16 is no floor
            arrays[i] = arrays[i].cast(pa.float32())
        kind = arrays[i].type
        if kind in _AS_BYTES:  # checked as bytes are: the same bytes, looked at again
            arrays[i], kind = arrays[i].view(_AS_BYTES[kind]), _AS_BYTES[kind]
        if kind not in _AS_TEXT:
            if _in(kind, _bytes) != kind:  # text nested in lists or structs: its bytes, if any is not UTF-8
                try:
                    arrays[i].validate(full=True)
                except pa.ArrowInvalid:
                    arrays[i] = arrays[i].cast(_in(kind, _bytes))
                    kind = arrays[i].type
            if not polars_holds(kind):
                arrays[i] = _as_text(arrays[i])
            continue
        try:
            arrays[i] = arrays[i].cast(_AS_TEXT[kind])  # checks every value is UTF-8
            continue
        except pa.ArrowInvalid:  # some value is not UTF-8
            decoded = [_decoded(v) for v in arrays[i].to_pylist()]
        arrays[i] = pa.array([value for value, _ in decoded], _AS_TEXT[kind])
        if not columns or f.name in columns:
            column_bad = pa.array([not utf8 for _, utf8 in decoded])
            bad = column_bad if bad is None else pc.or_(bad, column_bad)
    schema = pa.schema([pa.field(f.name, a.type, f.nullable) for f, a in zip(batch.schema, arrays, strict=True)])
    return pa.RecordBatch.from_arrays(arrays, schema=schema), bad


def polars_holds(kind: pa.DataType) -> bool:
    """Whether polars takes an Arrow column of type `kind`, at any depth: not `decimal256`
    (it panics), nor bytes nested in a list or struct (it writes no JSON of them: a
    rejected row's raw record; nested text that is not UTF-8 is made bytes first, in
    `decoded_text`), nor a time stamp nested there in a zone other than UTC
    (`utc_timestamps` makes them UTC first)."""
    if pa.types.is_decimal256(kind) or isinstance(kind, pa.BaseExtensionType):  # nested: a uuid's JSON panics
        return False
    if kind in _AS_TEXT or pa.types.is_fixed_size_binary(kind):  # nested: polars writes no JSON of them
        return False
    if pa.types.is_timestamp(kind):
        return kind.tz in (None, "UTC")
    return all(polars_holds(inner) for inner in _nested(kind))


def _nested(kind: pa.DataType) -> list[pa.DataType]:
    """The types directly inside `kind`: a struct's fields', a map's key and item, a list's
    values (of any list kind); none for any other."""
    if pa.types.is_struct(kind):
        return [kind.field(i).type for i in range(kind.num_fields)]
    if pa.types.is_map(kind):
        return [kind.key_type, kind.item_type]
    if isinstance(kind, pa.ListType | pa.LargeListType | pa.FixedSizeListType | pa.ListViewType):
        return [kind.value_type]
    return []


def _as_text(values: pa.Array) -> pa.Array:
    """A column polars does not hold, as text: Arrow's cast (a decimal's digits), else each
    value as JSON (a list or struct; what JSON lacks, as `str` writes it)."""
    try:
        return values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else json.dumps(v, default=_json_text) for v in values.to_pylist()],
                        pa.string())  # fmt: skip


def _json_text(value: object) -> str:
    """What JSON lacks, as text: bytes decoded (those not UTF-8 escaped, `\\xff`), others by `str`."""
    return _decoded(value)[0] if isinstance(value, bytes) else str(value)


def _decoded(value: bytes | None) -> tuple[str | None, bool]:
    """`value` as text (bytes that are not UTF-8 escaped) and whether it was UTF-8."""
    if value is None:
        return None, True
    try:
        return value.decode("utf-8"), True
    except UnicodeDecodeError:
        return value.decode("utf-8", "backslashreplace"), False


_VALUE = "_value:"  # a block's column: the input's column at this position (`StructFields.columns`)


class StructFields(Columns):
    """Typed columns of a Parquet batch, each taken by its position (`columns`), never by
    its name: polars reads a name `^...$` as a regular expression and `*` as every
    column (a column named `^u.*$` mapped as the user read another one's values).
    `names` are the file's (Arrow's), `schema` polars' of the same columns in the same
    order: polars renames a column named by the empty text (`column_1`)."""

    def __init__(self, names: Sequence[str], schema: pl.Schema, times: TimeOptions) -> None:
        self.names = list(names)
        self.dtypes = dict(zip(self.names, schema.dtypes(), strict=True))
        self.times = times

    def columns(self) -> list[pl.Expr]:
        """The batch's columns under names of their positions, for `_get` to read."""
        return [pl.nth(i).alias(f"{_VALUE}{i}") for i in range(len(self.names))]

    def _get(self, name: str) -> pl.Expr:
        value = pl.col(f"{_VALUE}{self.names.index(name)}")
        if self.dtypes[name].is_float():  # integer ids in a float column (pandas with a missing value): 1.0 is 1
            return float_text(value)
        if self.dtypes[name].is_decimal():
            return decimal_text(value)
        return value

    def dtype(self, name: str) -> pl.DataType:
        """The column's type as the Parquet file has it (a time, an integer, text, ...)."""
        return self.dtypes[name]


class JsonFields(Columns):
    """Top-level values of a JSON object per line, as `json_values` extracted them into
    the block's columns (as text)."""

    def __init__(self, names: Sequence[str], times: TimeOptions) -> None:
        self.names = list(names)
        self.times = times

    def _get(self, name: str) -> pl.Expr:
        return pl.col(_JSON_VALUE + name)


_JSON_VALUE = "_json:"  # the prefix of a block's column holding one key's value
NESTED = "_json_nested"  # a block's column: whether a line's value of a key read is an object or an array


_JSON_TEXT = "_json_text"  # a block's column: each line as JSON (`python_json`)
# what Python's `json` writes for the floats JSON has no number for, and a number past a double (`1e999`)
_NON_FINITE = r"NaN|Infinity|[0-9][eE][+]?[0-9]{3}"


def python_json(text: pl.Series) -> pl.Series:
    """`text`, but each line that is JSON only as Python's `json` writes it, with `NaN`,
    `Infinity` or `-Infinity` for a float JSON has no number for (`json.dumps` of a row
    holding pandas' missing value), or a number past a double (`1e999`, which Python reads
    as an infinity), as the JSON of the same values with each of those a null: a missing
    value, as a NaN in a Parquet float column is (`float_text`). Such a line was rejected
    as `bad_json` for a NaN under a key no setting reads. Other lines, and a line that
    only holds the words in its strings, as they are."""
    maybe = np.flatnonzero(text.str.contains(_NON_FINITE).fill_null(False).to_numpy())
    fixed, at = [], []
    seen: list[str] = []

    def number(written: str) -> float | None:
        value = float(written)
        return value if math.isfinite(value) else seen.append(written)  # past a double: None

    for i, line in zip(maybe, text.gather(maybe).to_list(), strict=True):
        seen.clear()
        try:
            value = json.loads(line, parse_constant=seen.append, parse_float=number)  # each NaN or Infinity: None
        except (ValueError, RecursionError):  # no JSON even to Python: rejected as bad_json
            continue
        if seen:
            fixed.append(json.dumps(value, ensure_ascii=False))
            at.append(i)
    return text.clone().scatter(at, fixed) if at else text


def json_values(text: pl.Series, names: Sequence[str]) -> list[pl.Series]:
    """The value of each top-level key in `names` of each JSON line of `text`, as text:
    a string as itself, an integer as its digits, a float as `float_text` writes it
    (599381.0 and 5.99381e5 are 599381, as in a Parquet float column), `true` or
    `false` for a boolean; null where the key is absent, null, or the line is not a
    JSON object. Last, a boolean Series `NESTED` (one per line): whether one of those
    values is an object or an array, which no setting reads as a user, a time or a text
    (the line is rejected as `nested_value`, as a Parquet column of them is refused:
    the object's JSON text was taken as the query or the user).

    polars' `json_path_match` writes a string without its quotes and a number as
    serde_json reads it, so its text cannot tell the number 599381.0 from the string
    "599381.0" (which stays as written), reads an integer beyond 64 bits as a float
    (1.2345678901234568e+20), and may miss a float's last digit (2.790089810189959e-90
    as 2.7900898101899593e-90). Python's `json` reads those lines' values exactly: the
    lines whose value is in float notation only (none, in a log whose ids are
    integers or text)."""
    out = []
    nested = np.zeros(len(text), dtype=bool)
    for name in names:
        value = _path_match(text, name)
        # the values Python's json reads again: those in float notation, and those that may be an object
        # or an array (or a string that starts as one: `json_path_match` writes both alike)
        looks = np.flatnonzero(value.str.contains(FLOAT_NOTATION + r"|^[\[{]").fill_null(False).to_numpy())
        floats = np.full(len(text), np.nan)
        is_float = np.zeros(len(text), dtype=bool)
        integers: list[str | None] = [None] * len(text)
        for i, line in zip(looks, text.gather(looks).to_list(), strict=True):
            try:
                held = json.loads(line).get(name)
            except (ValueError, TypeError, AttributeError):  # not JSON, not an object: rejected as bad_json
                continue
            if isinstance(held, float):
                floats[i], is_float[i] = held, True
            elif isinstance(held, int) and not isinstance(held, bool):
                integers[i] = str(held)
            elif isinstance(held, dict | list):
                nested[i] = True
        if len(looks):
            value = pl.select(
                pl.when(pl.lit(is_float)).then(float_text(pl.lit(floats)))
                .otherwise(pl.coalesce(pl.lit(pl.Series(integers, dtype=pl.String)), pl.lit(value)))
            ).to_series()  # fmt: skip
        out.append(value.alias(_JSON_VALUE + name))
    return [*out, pl.Series(NESTED, nested)]


def _path_match(text: pl.Series, name: str) -> pl.Series:
    """polars' `json_path_match` of the top-level key `name` in each JSON line of `text`
    (a string without its quotes, a number or an object as JSON text, `true`/`false`;
    null where absent, null, or no JSON object). A name with a backslash or a quote, which
    its JSON path cannot address (`$['\\']` is refused, `$['a\\b']` matched nothing and the
    column was read as missing), is read by Python's `json`, line by line."""
    if "\\" not in name and "'" not in name:
        return text.str.json_path_match(f"$['{name}']")

    def one(line: str | None) -> str | None:
        try:
            held = json.loads(line).get(name) if line is not None else None
        except (ValueError, TypeError, AttributeError, RecursionError):  # not JSON, not an object
            return None
        if held is None or isinstance(held, str):
            return held
        return json.dumps(held, ensure_ascii=False)  # true/false, a number, an object or array as JSON

    return pl.Series(text.name, [one(line) for line in text.to_list()], dtype=pl.String)


def float_text(value: pl.Expr) -> pl.Expr:
    """Floats as id text, one rule for every typed format (Parquet's float columns, JSON
    lines' numbers): a whole number below 2**53 as its integer (599381.0 and 5.99381e5
    are the user 599381, as the integer 599381 is: pandas writes an integer column with a
    missing value as floats), NaN and the infinities as no value (pandas' missing value,
    not the text "NaN"; a JSON line's `NaN` or `Infinity` as Python's `json` writes them,
    `python_json`, or a number past a double, `1e999`, alike), any other as polars writes
    the float (1.5, 1e300)."""
    return (
        pl.when(is_whole(value)).then(value.cast(pl.Int64, strict=False).cast(pl.String))
        .when(~value.is_finite()).then(None)
        .otherwise(value.cast(pl.String))
    )  # fmt: skip


def decimal_text(value: pl.Expr) -> pl.Expr:
    """Decimals as id text, by the rule of `float_text`: a number, not its column's scale
    (a decimal(10, 2) id 599381.00 is the user 599381, as the float 599381.0 and the
    integer 599381 are; 1.50 is 1.5)."""
    return value.cast(pl.String).str.replace(r"(\.[0-9]*?)0+$", "${1}").str.replace(r"\.$", "")


def open_parquet(path: str | Path, reads_it: str) -> pq.ParquetFile:
    """The Parquet file at `path` (any location `sessions.storage` reads), its footer read.

    A Parquet file compressed whole (`metadata.parquet.gz`: gzip, bz2, xz, zstd or LZ4, told
    by its first bytes, `storage.compression_in`) is decompressed into a temporary file first, since Parquet
    is read from its footer, which a compressed stream reaches last; the temporary file
    (as large as the file decompressed) is gone when the reader is closed.

    `reads_it` says, for the message, why the file is taken for Parquet and what to do
    instead (`--format diffusiondb reads Parquet; ...`). ValueError, one line naming the
    file, where it is no Parquet file: another kind of file given a Parquet format (a CSV
    export of DiffusionDB, a CSV named .parquet), an empty file, or one cut off before its
    footer, or compressed and damaged (no row of it can be read without the footer, so
    the job stops rather than reject rows it cannot count).
    """
    try:
        # int96 time stamps (Spark's, Hive's, Impala's) as microseconds: read as nanoseconds, a
        # date outside 1677..2262 (9999-12-31, a warehouse's "never") wrapped round to another
        return pq.ParquetFile(_seekable(path), coerce_int96_timestamp_unit="us")
    except (pa.ArrowInvalid, pa.ArrowIOError) as err:  # a footer that is none, or cannot be decoded (OSError)
        if isinstance(err, FileNotFoundError):
            raise
        with storage.open_input(path) as stream:  # an archive (DiffusionDB's images come zipped) says so
            archive = archive_refusal(stream.read(1024))
        if archive is not None:
            raise ValueError(f"{path}: {archive}; {reads_it}") from None
        raise ValueError(
            f"{path}: not a Parquet file, or one cut off or damaged ({_sentence(err)}); {reads_it}"
        ) from None


def _seekable(path: str | Path) -> pa.NativeFile:
    """The file at `path` opened for random access; decompressed into an anonymous
    temporary file when its first bytes say it is compressed (see `open_parquet`)."""
    file = storage.open_random_access(path)
    kind = storage.compression_in(file.read(storage.HEAD_BYTES), path)
    if kind is None:
        file.seek(0)
        return file
    file.close()
    if kind == storage.LZ4_LEGACY:
        raise ValueError(f"{path}: {storage.LZ4_LEGACY_REFUSAL}")
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the returned reader owns and closes it
    try:
        with storage.open_input(path) as stream:
            shutil.copyfileobj(stream, spool, 16 << 20)
    except OSError as err:  # DamagedStreamError (any compression), or the storage's own
        spool.close()
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: a damaged {kind} file ({err}); a Parquet file is read from its end") from None
    spool.seek(0)
    return pa.PythonFile(spool, mode="r")


def _sentence(err: Exception) -> str:
    """pyarrow's reason, its first sentence (`Parquet magic bytes not found in footer`)."""
    return storage.first_line(err).split(". ")[0].rstrip(".")


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
        """`LogFormat.read_blocks` over batches of at least 1,024 rows; besides `open_parquet`'s
        and a damaged data page's ValueError, a ValueError naming the file for a schema that
        names two columns alike (polars holds no such table)."""
        reader = open_parquet(path, f"--format {self.name} reads Parquet (a table of another kind: --format table)")
        names = reader.schema_arrow.names
        for name in sorted({n for n in names if names.count(n) > 1}):  # polars holds no such table
            try:
                column_index(names, name)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        batch_rows = rows_per_batch(reader.metadata, block_bytes)
        int96 = int96_columns(reader.schema)
        next_row = 0
        for batch in _batches(reader, batch_rows, path):
            batch, not_utf8 = decoded_text(utc_timestamps(batch, int96), self.columns)
            try:
                df = pl.from_arrow(batch)
            except (Exception, pl.exceptions.PanicException) as err:  # a type `polars_holds` does not know of
                types = ", ".join(f"{f.name}: {f.type}" for f in batch.schema)
                raise ValueError(f"{path}: a column polars cannot hold ({storage.first_line(err)}); its columns: "
                                 f"{types}") from None  # fmt: skip
            assert isinstance(df, pl.DataFrame)
            fields = StructFields(batch.schema.names, df.schema, self.options.times)
            lf = (
                df.lazy()
                .select(pl.struct(record_values(df)).alias(RECORD), *fields.columns())
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


def record_values(df: pl.DataFrame) -> list[pl.Expr]:
    """`df`'s columns for a rejected record's raw JSON: each as it is, but
    - a map whose keys are not text, which JSON cannot key by (polars refuses to write
      it): the list of its entries, `{"key": ..., "value": ...}` each;
    - a column holding a time stamp or date past the years 1..9999 (`times.held_years`),
      at the top level or in a list, map or struct, which polars cannot write (it
      panics): that column as text, a value whose times are all held written as polars
      writes it into JSON, any other with its times as the integers stored (a Java
      writer's `Long.MAX_VALUE` milliseconds: "9223372036854775807"; a struct
      `{"t":9223372036854775807}`)."""
    values = []
    for i, (name, dtype) in enumerate(df.schema.items()):
        kind = _keyed_by_text(dtype)
        value = pl.nth(i) if kind == dtype else pl.nth(i).cast(kind)
        held, stored_as = _times_held(value, kind), _times_stored(kind)
        # only a column with times is looked at; polars' JSON writer reads a list's values past its nulls: null each
        if stored_as != kind and not df.select(held.all()).item():
            written, stored = (pl.struct(v.alias("v")).struct.json_encode().str.json_path_match("$.v")
                               for v in (pl.when(held).then(_times_nulled(value, kind)),
                                         value.cast(stored_as)))  # fmt: skip
            value = pl.coalesce(written, stored)
        values.append(value.alias(name))
    return values


def _keyed_by_text(dtype: pl.DataType) -> pl.DataType:
    """`dtype` with every map whose keys are not text (at any depth) the list of its
    entries (`_entries`), which polars writes into JSON."""

    def entries(kind: pl.DataType) -> pl.DataType:
        text = isinstance(kind, pl.Map) and any(kind.key == t for t in (pl.String, pl.Categorical, pl.Enum))
        return _entries(kind) if isinstance(kind, pl.Map) and not text else kind

    return _within(dtype, entries)


def _within(dtype: pl.DataType, change: Callable[[pl.DataType], pl.DataType]) -> pl.DataType:
    """`dtype` with `change` made to it and to every type nested in it (lists, arrays, maps,
    structs), innermost first: `_in` for polars' types."""
    if isinstance(dtype, pl.Map):
        dtype = pl.Map(_within(dtype.key, change), _within(dtype.value, change))
    elif isinstance(dtype, pl.Struct):
        dtype = pl.Struct([pl.Field(f.name, _within(f.dtype, change)) for f in dtype.fields])
    elif isinstance(dtype, pl.List):
        dtype = pl.List(_within(dtype.inner, change))  # type: ignore[arg-type]
    elif isinstance(dtype, pl.Array):
        dtype = pl.Array(_within(dtype.inner, change), dtype.shape)  # type: ignore[arg-type]
    return change(dtype)


def _times_held(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Whether every time stamp and date in each value of a column of type `dtype`, at any
    depth of lists, arrays, maps and structs, falls in the years 1..9999
    (`times.held_years`); true for a value without any."""
    if isinstance(dtype, pl.Map):
        return _times_held(value.cast(_entries(dtype)), _entries(dtype))
    if isinstance(dtype, pl.Struct):
        fields = [_times_held(value.struct.field(f.name), f.dtype) for f in dtype.fields]
        return pl.all_horizontal(fields).fill_null(True) if fields else pl.lit(True)
    if isinstance(dtype, pl.List | pl.Array):
        inner = _times_held(pl.element(), dtype.inner)  # type: ignore[arg-type]
        return _as_list(value, dtype).list.eval(inner).list.all().fill_null(True)
    return held_years(value, dtype)


def _times_nulled(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """`value` (of type `dtype`) with every time stamp and date past the years 1..9999
    null, at any depth of lists, arrays (as lists), maps and structs: what polars can write."""
    if isinstance(dtype, pl.Map):
        return _times_nulled(value.cast(_entries(dtype)), _entries(dtype)).cast(dtype)
    if isinstance(dtype, pl.Struct):
        fields = [_times_nulled(value.struct.field(f.name), f.dtype).alias(f.name) for f in dtype.fields]
        return pl.when(value.is_not_null()).then(pl.struct(fields)) if fields else value
    if isinstance(dtype, pl.List | pl.Array):
        return _as_list(value, dtype).list.eval(_times_nulled(pl.element(), dtype.inner))  # type: ignore[arg-type]
    if isinstance(dtype, pl.Datetime | pl.Date):
        return pl.when(held_years(value, dtype)).then(value)
    return value


def _entries(dtype: pl.Map) -> pl.List:
    """A map type as the list of its entries (`key`, `value`), which polars casts both ways."""
    return pl.List(pl.Struct({"key": dtype.key, "value": dtype.value}))


def _as_list(value: pl.Expr, dtype: pl.List | pl.Array) -> pl.Expr:
    """A list or array column as a list one (polars casts no array to a list)."""
    return value.arr.to_list() if isinstance(dtype, pl.Array) else value


def _times_stored(dtype: pl.DataType) -> pl.DataType:
    """`dtype` with every time stamp (and date) in it the integer it is stored as."""
    return _within(dtype, lambda kind: pl.Int64 if kind == pl.Datetime else pl.Int32 if kind == pl.Date else kind)


def rows_per_batch(metadata: pq.FileMetaData, block_bytes: int) -> int:
    """Rows of a Parquet file per batch read, for about `block_bytes` of its data as the
    footer sizes it (uncompressed, every column: a row's image bytes beside its prompt
    count): from `MIN_BATCH_ROWS` (a batch is a part of the output) to one row per 256
    bytes (65,536 at 16 MiB, what every file was read in before: a footer's sizes count
    dictionary-encoded values once, and may be wrong). Rows were read 1,024 a batch
    at least whatever their size, 100 MiB of images a batch at `--block-mb 1`."""
    rows = sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
    data = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    most = max(MIN_BATCH_ROWS, block_bytes // 256)
    return min(most, max(MIN_BATCH_ROWS, block_bytes * rows // data)) if data > 0 else most


def _batches(reader: pq.ParquetFile, rows: int, path: str | Path) -> Iterator[pa.RecordBatch]:
    """`reader`'s record batches; a data page that cannot be decoded past a sound footer
    (two files joined, flipped bytes) is a one-line ValueError naming the file."""
    try:
        yield from reader.iter_batches(batch_size=rows)
    except (pa.ArrowInvalid, pa.ArrowIOError) as err:
        raise ValueError(f"{path}: a damaged Parquet file ({_sentence(err)})") from None


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
            records = records.with_columns(python_json(records["text"]).alias(_JSON_TEXT))
            records = records.with_columns(json_values(records[_JSON_TEXT], self.names))
            built = fields.with_naive(self.build(fields))
            lf = records.lazy().with_row_index("row_id", offset=next_row).with_columns(**built)
            parsed = pl.col(_JSON_TEXT).str.json_path_match("$")  # null where the line is no JSON at all
            not_object = ~parsed.str.starts_with("{").fill_null(False)
            checks = [
                *text_checks(),
                (parsed.is_null() & ~pl.col("terminated"), Reason.TRUNCATED_LINE),  # a last line, cut: not JSON
                (not_object, Reason.BAD_JSON),
                (pl.col(NESTED), Reason.NESTED_VALUE),
                *self.value_checks(),
            ]
            raw = pl.coalesce("text", "undecodable")
            parsed = finalize(lf, source=self.name, source_file=str(path), checks=checks, raw=raw, damage=block.damage)
            next_row += parsed.n_records
            yield parsed
