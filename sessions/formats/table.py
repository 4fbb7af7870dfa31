"""Any table with a user, a time and a text column: CSV, TSV, JSON lines or Parquet.

The kind is told by the file name (`.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`,
`.parquet`, each optionally compressed; a `.json` file is read as JSON lines when it
is one object a line, as BigQuery and Hugging Face write `.json`:
`json_lines_or_refuse`), the columns by a mapping such as
`user=author,time=created_at,text=prompt` (`session=` and `mission=` add gold labels).
A CSV is separated by commas, or by the `;` (Excel where the decimal mark is a comma),
tab or `|` its header shows (`csv_separator`), and read as Python's `csv` reads it
(quoted fields may hold commas, quotes and newlines), or with a backslash escaping a
quote where its writer escaped so (Spark, R's `write.table`); a TSV, and a `.csv`
separated by tabs, is raw or CSV-quoted: each file is read as its lines show it was
written (`dialect.table_dialect`), and the report says how of each read otherwise than
as a CSV of commas is. Times are read by `sessions.times.to_utc` (ISO 8601 in
its variants, RFC 2822, epoch numbers, typed date-times). The values exporters write
for a missing value (`TABLE_UNKNOWN_USERS`) are no user, and no session or mission label.
"""

from __future__ import annotations

import csv
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from sessions import storage
from sessions.fields import strip_spaces
from sessions.formats.base import Columns, LogFormat, column_index, near_note, partition_hint
from sessions.formats.columnar import JsonLinesFormat, ParquetFormat, open_parquet
from sessions.formats.delimited import DelimitedFormat
from sessions.formats.dialect import LINE_END_BYTES, SNIFF_BYTES, column_at, table_dialect
from sessions.formats.options import DEFAULT_READ, ReadOptions, map_name
from sessions.records import MAX_RECORD_BYTES, archive_refusal

# What exporters write for a missing value (matched whatever the case): Postgres' and
# MySQL's text NULL, SQL's NULL, Python's None, NaN, R's NA and pandas' <NA>,
# JavaScript's undefined.
TABLE_UNKNOWN_USERS = ("\\N", "null", "none", "nan", "na", "<na>", "undefined")
CSV_SEPARATORS = (",", ";", "\t", "|")  # a CSV's field separators, in the order tried (`csv_separator`)


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold the user, the time and the text (and gold labels)."""

    user: str
    time: str
    text: str
    session: str | None = None
    mission: str | None = None

    KEYS = ("user", "time", "text", "session", "mission")

    @classmethod
    def parse(cls, spec: str) -> ColumnMap:
        """`user=COL,time=COL,text=COL[,session=COL][,mission=COL]`; spaces around a key or
        a bare column name are no part of it (`user = User ID`), as a CSV header's are not.
        A name in double quotes is read exactly, a quote doubled inside (`user=" user "`,
        `text="a, b"`, `user=""` for a column named by the empty text; `map_name` writes
        one so): a name with spaces around it, a comma or a leading quote is given so; one
        with `=`, `:` or any other character may be bare (an item ends at its first `=`).
        ValueError in one line for an item that is not `KEY=COLUMN`, a key given twice,
        one of user, time and text missing, or one column for two of them, or for one of
        them and a label (`user=q,text=q`: every distinct query a user, the training
        breaker's segmenter of 1,260 "users" for 60, scored 0.973 and made champion;
        `text=q,session=q`); one column for both labels (`session=g,mission=g`) is read so."""
        pairs: dict[str, str] = {}
        for key, column, item in _map_items(spec):
            if key not in cls.KEYS:
                raise ValueError(f"bad column mapping {item!r}: use KEY=COLUMN with KEY one of {', '.join(cls.KEYS)}")
            if key in pairs:
                raise ValueError(f"the column mapping gives {key} twice ({key}={map_name(pairs[key])}, {item}): "
                                 "give it once")  # fmt: skip
            pairs[key] = column
        missing = [k for k in ("user", "time", "text") if k not in pairs]
        if missing:
            raise ValueError(f"the column mapping needs {', '.join(k + '=COLUMN' for k in missing)}")
        given = list(pairs.items())
        for i, (key, column) in enumerate(given):
            if twice := [k for k, c in given[i + 1 :] if c == column and {key, k} != {"session", "mission"}]:
                raise ValueError(f"the column mapping reads {map_name(column)} as both {key} and {twice[0]}: map "
                                 "each to a column of its own")  # fmt: skip
        return cls(**pairs)

    def spec(self) -> str:
        """The mapping as `--map` writes it (`parse` reads it back): each name by `map_name`."""
        return ",".join(f"{key}={map_name(column)}" for key, column in zip(self.KEYS, self._all(), strict=True)
                        if column is not None)  # fmt: skip

    def _all(self) -> tuple[str | None, ...]:
        return self.user, self.time, self.text, self.session, self.mission

    def columns(self) -> tuple[str, ...]:
        """The table's columns the mapping reads: user, time, text, then session and mission when given."""
        return tuple(c for c in self._all() if c is not None)

    def build(self, f: Columns) -> dict[str, pl.Expr]:
        """The canonical columns of the mapped fields of `f`: `user_id` (spaces stripped), `ts`
        (UTC, `Columns.time`), `query` (none for `\\N`, the text NULL of Postgres' COPY and
        MySQL's OUTFILE, rejected as `empty_text`; `NULL` or `none` may be what someone
        searched for), `gold_session` / `gold_mission` when mapped (null for an empty
        cell or a missing value's token, `TABLE_UNKNOWN_USERS`); a user id such as
        `599381.0` is kept as written, and counted for the summary (`Parsed.float_users`)."""
        user = strip_spaces(f[self.user].cast(pl.String))
        columns = {"user_id": user, "ts": f.time(self.time)}  # in this order:
        text = f[self.text].cast(pl.String)  # the first column missing is the one named
        columns["query"] = pl.when(text != "\\N").then(text)
        for gold, column in (("gold_session", self.session), ("gold_mission", self.mission)):
            if column is not None:  # an empty or blank cell, or a missing value's token (`NULL`, `nan`), is no label
                label = f[column].cast(pl.String).str.strip_chars()
                missing = label.str.to_lowercase().is_in([token.lower() for token in TABLE_UNKNOWN_USERS])
                columns[gold] = pl.when((label != "") & ~missing).then(label)
        return columns


# One `--map` item whose column is in double quotes (a quote inside doubled), up to the comma after it.
_QUOTED_ITEM = re.compile(r'([^=,]*)=\s*"((?:[^"]|"")*)"\s*(?:,|\Z)')


def _map_items(spec: str) -> list[tuple[str, str, str]]:
    """The items of a `--map` (`ColumnMap.parse`), each its key, its column and the item
    as written (for a message); empty items (`a=b,,c=d`, a trailing comma) are none.
    ValueError in one line for an item without `=` or a column, or whose column opens
    a quote that does not end it (unclosed, or text after the closing quote)."""
    items, at = [], 0
    while at < len(spec):
        if quoted := _QUOTED_ITEM.match(spec, at):
            items.append((quoted[1].strip(), quoted[2].replace('""', '"'), quoted[0].rstrip(",").strip()))
            at = quoted.end()
            continue
        end = len(spec) if (comma := spec.find(",", at)) < 0 else comma
        item, at = spec[at:end].strip(), end + 1
        if not item:
            continue
        key, sep, column = (part.strip() for part in item.partition("="))
        if not sep or not column:
            raise ValueError(f"bad column mapping {item!r}: use KEY=COLUMN with KEY one of {', '.join(ColumnMap.KEYS)}")
        if column.startswith('"'):
            raise ValueError(f"bad column mapping {item!r}: a name in double quotes ends at its closing quote, then a "
                             'comma or the end (a quote inside is doubled: text="say ""hi""")')  # fmt: skip
        items.append((key, column, item))
    return items


TABLE_KINDS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
               ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip


def named_table_kind(path: str | Path) -> str | None:
    """csv, tsv, jsonl, json (JSON lines or a JSON document: `json_lines_or_refuse`) or
    parquet, as the file name says (its compression suffixes aside), or None for a name
    of no table kind."""
    return TABLE_KINDS.get(posixpath.splitext(storage.uncompressed_name(path))[1].lower())


def table_kind(path: str | Path) -> str:
    """csv, tsv, jsonl or parquet, from the file name (`named_table_kind`; a `.json` file
    is jsonl or refused, `json_lines_or_refuse`); ValueError for a name of no table
    kind, or of an archive."""
    kind = named_table_kind(path)
    stem, suffix = posixpath.splitext(storage.uncompressed_name(path))
    if kind is None and suffix.lower() in ARCHIVE_SUFFIXES:  # its suffixes from the archive's on (`.tar.gz`)
        shown = storage.name(path)[len(stem) :]
        raise ValueError(f"{path}: an archive ({shown}), which is not read: unpack it and give the files it holds")
    if kind is None:
        raise ValueError(f"{path}: cannot tell the table kind; name it .csv, .tsv, .jsonl or .parquet")
    if kind in ("json", "jsonl"):
        json_lines_or_refuse(path, named_lines=kind == "jsonl")
        return "jsonl"
    return kind


def json_lines_or_refuse(path: str | Path, named_lines: bool = False) -> None:
    """None when the `.json` file at `path` is JSON lines (one object a line: its first
    line, after a byte-order mark and blank lines, is a whole `{...}`, or the file holds
    nothing); ValueError in one line for a JSON document, an array or an object over
    many lines, which is not read (a document is parsed whole, and a record of it could
    not be rejected alone). A file named JSON lines (`named_lines`: `.jsonl`, `.ndjson`)
    is refused only for an array (`json.dump` of a list, `to_json(orient="records")`:
    its one line was rejected as cut short); a line of it that is no object is
    rejected alone. A stream that cannot be read is taken for JSON lines: the reader
    then reports its damage."""
    try:
        head = _to_first_line_end(path, MAX_RECORD_BYTES, after_space=True)
    except storage.DamagedStreamError:
        return
    if archive_refusal(head) is not None:  # no JSON at all: the reader reports what it is
        return
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    first = LINE_END_BYTES.split(text, maxsplit=1)[0].strip()
    if not text or (first.startswith(b"{") and (first.endswith(b"}") or len(head) >= MAX_RECORD_BYTES)):
        return
    if named_lines and not text.startswith(b"["):
        return
    name = storage.name(path)
    unpack = _CAT.get(storage.compression_of(path) or "")
    jq = f"{unpack} {name} | jq -c '.[]'" if unpack else f"jq -c '.[]' {name}"
    target = name.split(".")[0] + ("-lines.jsonl" if named_lines else ".jsonl")  # never over the file itself
    what, e_g = ("an array", f", e.g. {jq} > {target}") if text.startswith(b"[") else (
        "an object over many lines", "")  # fmt: skip
    kind = "a JSON lines file" if named_lines else "a .json table"
    raise ValueError(f"{path}: a JSON document ({what}), not JSON lines, which {kind} is read as: write its "
                     f"records one object a line{e_g}")  # fmt: skip


_CAT = {"gzip": "zcat", "bz2": "bzcat", "xz": "xzcat", "zstd": "zstdcat", "lz4": "lz4cat"}  # a stream to jq


def _to_first_line_end(path: str | Path, limit: int, after_space: bool = False) -> bytes:
    """The first bytes of the file at `path` (decompressed), read 64 KiB at a time until
    they hold a line end (one after the leading white space, with `after_space`) or
    `limit` bytes or more; `storage.DamagedStreamError` where the stream breaks first."""
    head = b""
    with storage.open_input(path) as stream:
        while not LINE_END_BYTES.search(head.lstrip() if after_space else head) and len(head) < limit:
            if not (chunk := stream.read(1 << 16)):
                break
            head += chunk
    return head


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tbz2", ".7z", ".rar")  # an archive's name (compressed or not)


def table_format(path: str | Path, mapping: ColumnMap, options: ReadOptions = DEFAULT_READ) -> LogFormat:
    """The format that reads the table at path with the given column mapping and read settings."""
    kind = table_kind(path)
    unknown = TABLE_UNKNOWN_USERS
    if kind == "parquet":
        with open_parquet(path, "a table named .parquet is read as Parquet: name it for its kind") as reader:
            schema = reader.schema_arrow
        _require(path, schema.names, mapping)
        for column in mapping.columns():
            kind = schema.field(column).type
            if pa.types.is_nested(kind) or pa.types.is_duration(kind) or pa.types.is_interval(kind):
                raise ValueError(f"{path}: column {column!r} holds {kind}; map a column of text, numbers or times")
        return ParquetFormat(name="table", build=mapping.build, unknown_users=unknown, options=options,
                             columns=mapping.columns())  # fmt: skip
    if kind == "jsonl":
        return JsonLinesFormat(name="table", names=mapping.columns(), build=mapping.build, unknown_users=unknown,
                               options=options)  # fmt: skip
    sep = csv_separator(path, mapping) if kind == "csv" else "\t"  # a tab-separated `.csv` is a TSV: read alike
    dialect = table_dialect(path, sep, user=mapping.user, time=mapping.time, times=options.times)
    return DelimitedFormat(
        name="table", sep=sep, quote=dialect.quote, quoting=dialect.quoting, multiline=dialect.quote is not None,
        columns=mapping.columns(), build=mapping.build, header="required",
        required=(mapping.user, mapping.time, mapping.text), unknown_users=unknown, options=options,
        read_as=dialect.read_as(sep, named_csv=kind == "csv"),
    )  # fmt: skip


_SEPARATOR_HINT = re.compile(r'(?i)"?sep=(.)"?\1*')  # `sep=;` (Excel's), quoted, or padded by a re-save: `sep=;;;`


def csv_separator(path: str | Path, mapping: ColumnMap) -> str:
    """The field separator of the CSV at `path`: a comma, unless its header line (read
    as Python's `csv` reads it) holds every column of `mapping` only when split at
    another of `CSV_SEPARATORS`: Excel writes `;` where the decimal mark is a comma,
    and other tools a tab or `|` into a `.csv`. A header that holds them at none (a
    `--map` typo) is read where it holds the most of them, then where it has the most
    columns, and the reader names the columns it found. ValueError in one line for a
    first line that is Excel's separator hint (`sep=;`), not a header."""
    try:
        line = _to_first_line_end(path, SNIFF_BYTES)
    except storage.DamagedStreamError:
        return ","
    header = LINE_END_BYTES.split(line, maxsplit=1)[0].decode("utf-8", errors="replace").removeprefix("\ufeff")
    if _SEPARATOR_HINT.fullmatch(header.strip(" \r\n")):
        raise ValueError(f"{path}: its first line, {header.strip(' ')!r}, is Excel's separator hint, not a header "
                         "line: delete that line (the separator is told from the header)")  # fmt: skip
    best, fit = ",", (-1, -1)
    for sep in CSV_SEPARATORS:
        names = next(csv.reader([header], delimiter=sep, quotechar='"'), [])
        held = sum(column_at(names, column) is not None for column in mapping.columns())
        if held == len(mapping.columns()):
            return sep
        if (held, len(names)) > fit:
            best, fit = sep, (held, len(names))
    return best


def _require(path: str | Path, names: list[str], mapping: ColumnMap) -> None:
    """ValueError in one line naming the file unless the Parquet schema's `names` hold
    each mapped column once, named exactly so: the missing ones, with the columns there
    are (`near_names`, `partition_hint`), or a name held twice (`column_index`)."""
    missing = [c for c in mapping.columns() if c not in names]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(map(repr, missing))}; the columns are {names}"
                         f"{near_note(names, missing)}{partition_hint(path, missing)}")  # fmt: skip
    for column in mapping.columns():
        try:
            column_index(names, column)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
