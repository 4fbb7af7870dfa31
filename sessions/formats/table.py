"""Any table with a user, a time and a text column: CSV, TSV, JSON lines or Parquet.

The kind is told by the file name (`.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`,
`.parquet`, each optionally compressed; a `.json` file is read as JSON lines when it
is one object a line, as BigQuery and Hugging Face write `.json`:
`json_lines_or_refuse`), the columns by a mapping such as
`user=author,time=created_at,text=prompt` (`session=` and `mission=` add gold labels).
CSV is read as Python's `csv` reads it (quoted fields may hold commas, quotes and
newlines), separated by commas, or by the `;` (Excel where the decimal mark is a
comma), tab or `|` its header shows (`csv_separator`). TSV comes both ways: raw
(AOL's logs, `paste`, most exports of search logs, where `"new york"` is a phrase
query, quotes and all) and CSV-quoted (what pandas' `to_csv(sep="\t")`, Python's
`csv` and polars write). Each TSV file is read
as its lines show it was written (`tsv_is_quoted`); the report says of each TSV
file which way it was read. Times are read by `sessions.times.to_utc` (ISO 8601 in
its variants, RFC 2822, epoch numbers, typed date-times). The values exporters write
for a missing value (`TABLE_UNKNOWN_USERS`) are no user, and no session or mission label.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from sessions import storage
from sessions.fields import is_blank, strip_spaces
from sessions.formats.base import FLOAT_USER, Columns, LogFormat, column_index, near_note, partition_hint
from sessions.formats.columnar import JsonLinesFormat, ParquetFormat, open_parquet
from sessions.formats.delimited import DelimitedFormat
from sessions.formats.options import DEFAULT_READ, ReadOptions, map_name
from sessions.records import MAX_RECORD_BYTES, archive_refusal
from sessions.times import UTC_TIMES, TimeOptions, to_utc

# What exporters write for a missing value (matched whatever the case): Postgres' and
# MySQL's text NULL, SQL's NULL, Python's None, NaN, R's NA and pandas' <NA>,
# JavaScript's undefined.
TABLE_UNKNOWN_USERS = ("\\N", "null", "none", "nan", "na", "<na>", "undefined")
SNIFF_BYTES = 256 * 1024  # of a TSV's lines, read at a time to tell raw from CSV-quoted
SCAN_BYTES = 1 << 20  # read at a time past a window that told nothing, to the next field that opens with a quote
READ_AS_QUOTED = "TSV with CSV quoting: fields in double quotes read as its writer quoted them"
READ_AS_RAW = "raw TSV: every tab ends a field and quotes are text, as written"
CSV_SEPARATORS = (",", ";", "\t", "|")  # a CSV's field separators, in the order tried (`csv_separator`)
# A field in double quotes, as a CSV writer makes one: any text, quotes doubled inside.
_QUOTED_FIELD = re.compile(r'"(?:[^"]|"")*"')
_LINE_END = re.compile(r"\r\n|\n|\r")
_LINE_END_BYTES = re.compile(rb"\r\n|\n|\r")
_QUOTED_TEXT = re.compile(r'(?:[^"]|"")*')  # a quoted field's text, up to the quote that closes it


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
        ValueError in one line for an item that is not `KEY=COLUMN`, a key given twice or
        one of user, time and text missing."""
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
        cell or a missing value's token, `TABLE_UNKNOWN_USERS`), and `FLOAT_USER` (a user
        id such as `599381.0`, which a table's text keeps, counted for the summary)."""
        user = strip_spaces(f[self.user].cast(pl.String))
        columns = {"user_id": user, "ts": f.time(self.time)}  # in this order:
        text = f[self.text].cast(pl.String)  # the first column missing is the one named
        columns["query"] = pl.when(text != "\\N").then(text)
        for gold, column in (("gold_session", self.session), ("gold_mission", self.mission)):
            if column is not None:  # an empty or blank cell, or a missing value's token (`NULL`, `nan`), is no label
                label = f[column].cast(pl.String).str.strip_chars()
                missing = label.str.to_lowercase().is_in([token.lower() for token in TABLE_UNKNOWN_USERS])
                columns[gold] = pl.when((label != "") & ~missing).then(label)
        columns[FLOAT_USER] = f.whole_float_text(self.user)
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
    first = _LINE_END_BYTES.split(text, maxsplit=1)[0].strip()
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
        while not _LINE_END_BYTES.search(head.lstrip() if after_space else head) and len(head) < limit:
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
    if kind == "csv":
        sep, quote = csv_separator(path, mapping), '"'
        read_as = None if sep == "," else f"CSV separated by {sep!r}, as its header line shows"
    else:
        quoted_tsv = tsv_is_quoted(path, mapping, options)
        sep, quote, read_as = "\t", '"' if quoted_tsv else None, READ_AS_QUOTED if quoted_tsv else READ_AS_RAW
    return DelimitedFormat(
        name="table", sep=sep, quote=quote, multiline=quote is not None, columns=mapping.columns(),
        build=mapping.build, header="required", required=(mapping.user, mapping.time, mapping.text),
        unknown_users=unknown, options=options, read_as=read_as,
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
    header = _LINE_END_BYTES.split(line, maxsplit=1)[0].decode("utf-8", errors="replace").removeprefix("\ufeff")
    if _SEPARATOR_HINT.fullmatch(header.strip(" \r\n")):
        raise ValueError(f"{path}: its first line, {header.strip(' ')!r}, is Excel's separator hint, not a header "
                         "line: delete that line (the separator is told from the header)")  # fmt: skip
    best, fit = ",", (-1, -1)
    for sep in CSV_SEPARATORS:
        names = next(csv.reader([header], delimiter=sep, quotechar='"'), [])
        held = sum(_at(names, column) is not None for column in mapping.columns())
        if held == len(mapping.columns()):
            return sep
        if (held, len(names)) > fit:
            best, fit = sep, (held, len(names))
    return best


def tsv_is_quoted(path: str | Path, mapping: ColumnMap | None = None, options: ReadOptions = DEFAULT_READ) -> bool:
    """Whether the TSV at `path` was written with CSV quoting: `looks_csv_quoted` of its
    first window that shows either way (`_quoting_verdict`), a record being one whose
    user (`mapping.user`) is not blank and whose time (`mapping.time`) reads as a time
    with the job's settings.

    The first window is the file's first `SNIFF_BYTES` (decompressed). A writer that
    quotes only where it must (pandas, Python's `csv`, polars) may write its first
    quoted field anywhere, so a window that shows nothing (no field opens with a quote,
    or none tells) is followed by the next: the header and `SNIFF_BYTES` from the next
    line where a field opens with a quote (more, up to `MAX_RECORD_BYTES`, where one
    record is longer). A window that says quoted on `""` alone (polars' empty text, or a
    raw log's empty phrase) is weak: the windows after it are judged too, and any that
    says otherwise decides. A file with no such line is read to its end once, and raw;
    so is one whose window holds no record in either reading (times that do not read
    with the job's settings: its rows are rejected whichever way). A stream that cannot
    be read (a damaged one) reads as raw from there; the reader then reports the
    damage."""
    user, time = (mapping.user, mapping.time) if mapping else (None, None)
    quoted = False  # what the windows judged so far say: raw, or quoted on `""` alone (weak)
    try:
        with storage.open_input(path) as stream:
            windows = _sniff_windows(stream)
            text, complete = next(windows)
            while True:
                verdict = _quoting_verdict(text, complete, user=user, time=time, times=options.times)
                if verdict.quoted is not None and not verdict.weak:
                    return verdict.quoted
                quoted = quoted or bool(verdict.quoted)
                if complete or verdict.barren:
                    return quoted
                text, complete = windows.send(verdict.judged)
    except (storage.DamagedStreamError, StopIteration):  # damage; or no field opens with a quote after the last window
        return quoted


def _sniff_windows(stream: storage.BinaryStream) -> Generator[tuple[str, bool], int, None]:
    """The windows `tsv_is_quoted` judges, in order: each the header line and up to
    `SNIFF_BYTES` of the lines after it (decoded), and whether it holds the file's end.
    Sent how many lines of the last window were judged (the header counted): the next
    window begins at the first line after those where a field opens with a quote
    (read on in `SCAN_BYTES` steps, memory bounded by a line). A window whose first
    record it cannot hold whole is judged again four times as large, up to
    `MAX_RECORD_BYTES` (a longer record is an unclosed quote's: the reader rejects it),
    and then gives way at its last line."""
    buf, eof = b"", False

    def fill(size: int) -> None:
        nonlocal buf, eof
        while len(buf) < size and not eof:
            chunk = stream.read(max(size - len(buf), SCAN_BYTES))
            buf, eof = buf + chunk, not chunk

    fill(SNIFF_BYTES)
    header_end = end.end() if (end := _LINE_END_BYTES.search(buf)) else len(buf)
    header, buf = buf[:header_end], buf[header_end:]
    size = SNIFF_BYTES
    while True:
        fill(size)
        body, complete = buf[:size], eof and len(buf) <= size
        judged = yield (header + body).decode("utf-8", errors="replace").removeprefix("\ufeff"), complete
        starts = [0, *(m.end() for m in _LINE_END_BYTES.finditer(body))]
        at = starts[judged - 1] if 0 < judged <= len(starts) else len(body)  # text line k is body line k - 1
        if at == 0 and size < MAX_RECORD_BYTES:  # its first record is longer than the window: a larger one
            size *= 4
            continue
        size = SNIFF_BYTES
        if at == 0:  # a record longer than any (an unclosed quote): on from the window's last line
            at = max((start for start in starts if start < len(body)), default=0) or len(body)
        at_line = at < len(body) or body.endswith((b"\n", b"\r"))  # whether `at` begins a line
        buf = buf[at:]
        while (hit := _field_opening_quote(buf, at_line)) < 0:
            if eof:
                return
            line = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1  # keep the last line: a window starts at its start
            buf, at_line = (buf[line:], at_line or line > 0) if len(buf) - line <= SNIFF_BYTES else (buf[-1:], False)
            chunk = stream.read(SCAN_BYTES)
            buf, eof = buf + chunk, not chunk
        buf = buf[max(buf.rfind(b"\n", 0, hit), buf.rfind(b"\r", 0, hit)) + 1 :]


def _field_opening_quote(buf: bytes, at_line: bool) -> int:
    """Where in `buf` the first field that opens with a quote starts (after a tab or a
    line end, or at 0 when `at_line`: `buf` begins a line), -1 if none does. (One
    vectorised pass over the quotes: a log may hold one or more inside fields on every
    line, `12" pizza pan`.)"""
    if (first := buf.find(b'"')) < 0:  # most of a log: memchr's speed
        return -1
    data = np.frombuffer(buf, dtype=np.uint8)
    quotes = first + np.flatnonzero(data[first:] == ord('"'))
    before = data[np.maximum(quotes - 1, 0)]
    opens = (before == ord("\t")) | (before == ord("\n")) | (before == ord("\r"))
    opens[quotes == 0] = at_line
    opening = np.flatnonzero(opens)
    return int(quotes[opening[0]]) if len(opening) else -1


def looks_csv_quoted(
    text: str, complete: bool = True, *, user: str | None = None, time: str | None = None,
    times: TimeOptions = UTC_TIMES,
) -> bool:  # fmt: skip
    """Whether tab-separated `text` (a file's start, header first; `complete`: the
    whole file, else its last record may be cut and is left out) is CSV-quoted: the
    verdict of `_quoting_verdict`, raw where it has none."""
    return _quoting_verdict(text, complete, user=user, time=time, times=times).quoted is True


class _Verdict(NamedTuple):
    """What one window of a TSV says of its quoting (`_quoting_verdict`)."""

    quoted: bool | None  # None: nothing tells
    judged: int  # the lines judged, the header counted (a cut window's last record is the next one's first)
    weak: bool = False  # quoted on `""` fields alone
    barren: bool = False  # no record in either reading: the job's settings read none of its rows


def _quoting_verdict(
    text: str, complete: bool = True, *, user: str | None = None, time: str | None = None,
    times: TimeOptions = UTC_TIMES,
) -> _Verdict:  # fmt: skip
    """Whether tab-separated `text` (a header line, then lines of the file; `complete`:
    they run to the file's end, else the last record may be cut and is left out) is
    CSV-quoted, or None when nothing in it tells; how many of its lines were judged
    (the header counted; a cut window's last record starts the next); whether the
    verdict is weak, or the window barren (`_Verdict`).

    Yes when every name of the header is in double quotes (a writer that quotes every
    field, or every text: `QUOTE_ALL`, `QUOTE_NONNUMERIC`). Else the body is read both
    ways, split at every tab and line end (raw) and by Python's `csv` (quoted), and
    each reading is scored by its records less the lines it cannot read as one, a
    record being the header's number of fields with a `user` not blank and a `time`
    read as a time (`sessions.times.to_utc` with `times`): a tab or a line break in a
    quoted text costs the raw reading lines; an unclosed quote in a raw log costs the
    quoted reading the records it runs together (a quoted text holding a line that
    reads raw as a record is none: `_holding_a_record_start`); a text's line break
    followed by tabs leaves raw pieces that are no records. A row bad in itself (a time
    that is no time, a blank user, `""` for one) costs both readings alike, so it
    decides nothing. To the difference of the scores, quoting's own marks add, on the
    lines both readings read as one record each: +1 for each line with a field only a
    CSV writer makes (in quotes, a quote doubled inside: `"12"" pizza"`) and none no
    CSV writer makes, -1 for each line with a field no CSV writer makes (`"best" pizza
    places`, or `"new york"`, which a writer quoting only where it must never writes: a
    raw log's phrase query). The sign decides (one text holding a pasted record weighs
    as one line against the marks of the rest). At 0, quoted if the fields in quotes
    are all a writer's, weakly so when they are only `""` (polars' empty text, or a raw
    log's empty phrase); else raw, as a raw reading keeps every character and its
    misfits are rejected with their reason; None without marks (a window where no field
    opens with a quote tells nothing: both readings read it alike), and barren when
    neither reading has a single record."""
    lines = _LINE_END.split(text)
    names = lines[0].split("\t")
    if all(len(name) >= 2 and name[0] == name[-1] == '"' for name in names):
        return _Verdict(True, len(lines))
    if len(text) > csv.field_size_limit():  # (131,072 by default; raised, never lowered: see sessions.fields)
        csv.field_size_limit(len(text))
    records: list[tuple[list[str], int, int]] = []  # each record, the line it begins on, how many lines it spans
    last_start = len(lines) - 1  # the line the last record begins on
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar='"')
    try:
        read = 0  # the lines read so far: where the next record begins
        for record in reader:
            last_start, read = read, reader.line_num
            records.append((record, last_start, read - last_start))
    except csv.Error:  # a NUL: not a file a CSV writer wrote
        return _Verdict(False, len(lines))
    # a cut sample: its last record is left out, in both readings (a quoted text may span lines)
    end = len(lines) if complete else last_start
    # blank lines and the header repeated (parts joined with `cat`) are neither's evidence: the reader skips them
    raw_lines = [(k, cut) for k, line in enumerate(lines[1:end], 1) if line and (cut := line.split("\t")) != names]
    raw = [fields for _, fields in raw_lines]
    quoted = [r for r in records[1 : None if complete else -1] if r[0] and r[0] != names]
    raw_fit = _fits(raw, names, user, time, times, raw=True)
    raw_score = sum(raw_fit) - raw_fit.count(False)
    quoted_fit = _fits([record for record, _, _ in quoted], names, user, time, times)
    spanning = [i for i, (_, _, span) in enumerate(quoted) if quoted_fit[i] and span > 1]
    for i in _holding_a_record_start([quoted[i][1:] for i in spanning], lines, names, user, time, times):
        quoted_fit[spanning[i]] = False  # a quoted text that runs raw records together: an unclosed quote in a raw log
    if complete and quoted and quoted[-1][0] is records[-1][0] and _unclosed(text, last_start):
        quoted_fit[-1] = False  # a quote that runs on to the end, which `csv` reads without a word: no field
    quoted_score = sum(quoted_fit) - sum(span for (_, _, span), fit in zip(quoted, quoted_fit, strict=True) if not fit)
    if not any(raw_fit) and not any(quoted_fit):
        return _Verdict(None, end, barren=bool(raw or quoted))
    # quoting's marks, on the lines both readings read as one record each (a quoted text's raw pieces say nothing)
    single = {start for _, start, span in quoted if span == 1}
    opened = [[f for f in fields if f[:1] == '"'] for (k, fields), ok in zip(raw_lines, raw_fit, strict=True)
              if ok and k in single]  # fmt: skip
    marked = [(line, [_quoting_mark(f) for f in line]) for line in opened]
    marks = [mark for _, line_marks in marked for mark in line_marks]
    # a line only a CSV writer makes (a quote doubled inside a quoted field), and one no CSV writer makes
    strong = sum(bool(ms) and all(ms) and any(f != '""' for f in line) for line, ms in marked)
    contradicted = sum(not all(ms) for _, ms in marked)
    if tally := quoted_score - raw_score + strong - contradicted:
        return _Verdict(tally > 0, end)
    if not marks:
        return _Verdict(None, end)
    return _Verdict(all(marks), end, weak=all(marks) and not strong)


def _holding_a_record_start(
    spans: list[tuple[int, int]], lines: list[str], names: list[str], user: str | None, time: str | None,
    times: TimeOptions,
) -> list[int]:  # fmt: skip
    """Which of the multi-line records at `spans` (the line each begins on, how many it
    spans) hold a line that reads raw as a record (`_fits`: the header's number of
    fields, a user, a time): of their lines after the first, the last up to the quote
    that closes the text (what follows it is the rest of its own record, as where the
    text is the first column). A text a CSV writer quoted holds line breaks, rarely
    whole records; an unclosed quote in a raw log runs on over the records after it.
    Without a user and a time to tell by, none. One reading of all their lines."""
    if _at(names, user) is None or _at(names, time) is None or not spans:
        return []
    later = [[*lines[start + 1 : start + span - 1], _QUOTED_TEXT.match(lines[start + span - 1]).group()]  # type: ignore[union-attr]
             for start, span in spans]  # fmt: skip
    fits = iter(_fits([line.split("\t") for text in later for line in text], names, user, time, times, raw=True))
    return [k for k, text in enumerate(later) if any([next(fits) for _ in text])]


def _unclosed(text: str, start: int) -> bool:
    """Whether the record that begins on line `start` of `text` (its last) opens a
    quote that never closes: Python's `csv` reads it to the end without a word."""
    at = [0, *(m.end() for m in _LINE_END.finditer(text))][start]
    try:
        list(csv.reader(io.StringIO(text[at:], newline=""), delimiter="\t", quotechar='"', strict=True))
    except csv.Error:
        return True
    return False


def _fits(
    rows: list[list[str]], names: list[str], user: str | None, time: str | None, times: TimeOptions, raw: bool = False
) -> list[bool]:
    """Whether each row of one reading (`raw`: split at tabs) is a record: the header's
    number of fields, its user not blank (`is_blank`, as the reader rejects one; in the
    raw reading `""` too, which is how a CSV writer writes an empty one: polars'
    `write_csv`), its time read as a time (columns not in the header: not asked)."""
    fit = [len(fields) == len(names) for fields in rows]
    if (at := _at(names, user)) is not None and rows:
        values = pl.lit(pl.Series([fields[at] if ok else None for ok, fields in zip(fit, rows, strict=True)],
                                  dtype=pl.String))  # fmt: skip
        blank = is_blank(values) | (strip_spaces(values) == '""') if raw else is_blank(values)
        fit = [ok and not b for ok, b in zip(fit, pl.select(blank).to_series().to_list(), strict=True)]
    if (at := _at(names, time)) is not None and rows:
        values = pl.Series([fields[at] if ok else None for ok, fields in zip(fit, rows, strict=True)], dtype=pl.String)
        read = pl.select(to_utc(pl.lit(values), pl.String(), times)).to_series().is_not_null().to_list()
        fit = [ok and r for ok, r in zip(fit, read, strict=True)]
    return fit


def _quoting_mark(field: str) -> bool:
    """What one raw field that starts with a quote says of CSV quoting: True for a field
    only a CSV writer makes (in quotes, a quote doubled inside, or empty), False for
    one it never makes (unclosed, text after the closing quote, or quotes around a text
    that needs none)."""
    if not _QUOTED_FIELD.fullmatch(field):
        return False
    inner = field[1:-1]
    return inner == "" or '""' in inner


def _at(names: list[str], name: str | None) -> int | None:
    """Where a header's `names` hold the column `name`, as the reader finds it
    (`column_index`, loose); None for none, or several."""
    try:
        return None if name is None else column_index(names, name, loose=True)
    except ValueError:
        return None


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
