"""How a CSV or TSV table was written, judged from its lines (`table_dialect`): raw or
CSV-quoted (a TSV), and how a quote inside a quoted field is written (`quoting.Quoting`).

A TSV comes both ways: raw (AOL's logs, `paste`, most exports of search logs, where
`"new york"` is a phrase query, quotes and all) and CSV-quoted (what pandas'
`to_csv(sep="\t")`, Python's `csv` and polars write); a tab-separated `.csv` too (an AOL
slice saved by hand). A quoted field's quote is doubled (RFC 4180) or escaped with a
backslash (Spark's CSV, R's `write.table`, Python's `csv` with an `escapechar`). Each is
told a window of a file's lines at a time, and the report says how each file was read
(`Dialect.read_as`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from sessions import storage
from sessions.fields import escapes_kept, is_blank, split_delimited, strip_spaces
from sessions.formats.base import column_index
from sessions.quoting import Quoting, doubles_quotes, escaped_anywhere, read_records
from sessions.records import BOM, MAX_RECORD_BYTES
from sessions.times import UTC_TIMES, TimeOptions, to_utc

SNIFF_BYTES = 256 * 1024  # of a table's lines, read at a time to tell how it was written
SCAN_BYTES = 1 << 20  # read at a time past a window that told nothing, to the next line that may tell
READ_AS_QUOTED = "TSV with CSV quoting: fields in double quotes read as its writer quoted them"
READ_AS_RAW = "raw TSV: every tab ends a field and quotes are text, as written"
# A raw log whose lines show CSV quoting, but not in every field (`log_dialect`): each field is read as written.
READ_AS_MIXED = (" (though its lines look CSV-quoted: line {line} holds {field!r} between tabs, which no CSV "
                 "writer writes: a raw part joined to a quoted one, a quote that does not close, or a tab inside "
                 "quotes)")  # fmt: skip
# A raw log judged raw whose later lines hold a field only a CSV writer writes (`log_dialect`): read as written too.
READ_AS_SAVED = (" (though line {line} holds {field!r} between tabs, as a CSV writer writes it: a part saved back "
                 "CSV-quoted, by pandas' to_csv, keeps its quotes as text here)")  # fmt: skip
READ_AS_ESCAPED = {  # how a quote inside a quoted field is escaped, where not doubled (`Quoting`)
    Quoting.ESCAPED: "quotes escaped with a backslash (\\\") inside quoted fields, as Spark and R's "
    "write.table write them",
    Quoting.ESCAPED_ANYWHERE: "quotes escaped with a backslash (\\\") in any field, as Python's csv with an "
    "escapechar writes them",
}
# A field in double quotes, as a CSV writer makes one: any text, quotes doubled inside.
_QUOTED_FIELD = re.compile(r'"(?:[^"]|"")*"')
_LINE_END = re.compile(r"\r\n|\n|\r")
LINE_END_BYTES = re.compile(rb"\r\n|\n|\r")
_QUOTED_TEXT = re.compile(r'(?:[^"]|"")*')  # a quoted field's text, up to the quote that closes it
# The same where a backslash escapes a quote (`quoting.ESCAPE`), or itself, or any other character (as text)
_ESCAPED_FIELD = re.compile(r'"(?:[^"\\]|\\.|"")*"')
_ESCAPED_TEXT = re.compile(r'(?:[^"\\]|\\.|"")*')


class Dialect(NamedTuple):
    """How a CSV or TSV table's fields are quoted (`table_dialect`): `quote` None for a
    raw TSV (no quoting); `quoting` how a quote inside a quoted field is written: doubled
    (RFC 4180), or escaped with a backslash (Spark, R's `write.table`; `Quoting`); `odd`,
    for a raw log judged CSV-quoted (`log_dialect`), the first field of the file no CSV
    writer writes (its line number and text), for which every field is read raw; `saved`,
    for a raw log judged raw, the first field only a CSV writer writes (a part saved back
    joined after a raw one), whose quotes are read as written."""

    quote: str | None = '"'
    quoting: Quoting = Quoting.DOUBLED
    odd: tuple[int, str] | None = None
    saved: tuple[int, str] | None = None

    def read_as(self, sep: str, named_csv: bool) -> str | None:
        """How the report says the file was read (None: a CSV of commas, RFC 4180, as
        any CSV is read): the raw or quoted judgement of a TSV (`READ_AS_RAW`,
        `READ_AS_QUOTED`), a quote escaped with a backslash (`READ_AS_ESCAPED`), and a
        separator other than a `.csv`'s comma, as its header line shows."""
        escaped = f", {READ_AS_ESCAPED[self.quoting]}" if self.quoting in READ_AS_ESCAPED else ""
        if sep != "\t":
            how = "CSV" if sep == "," else f"CSV separated by {sep!r}, as its header line shows"
            return how + escaped if escaped or sep != "," else None
        how = (READ_AS_QUOTED + escaped) if self.quote else READ_AS_RAW
        if self.odd is not None:
            how += READ_AS_MIXED.format(line=self.odd[0], field=self.odd[1])
        if self.saved is not None:
            how += READ_AS_SAVED.format(line=self.saved[0], field=self.saved[1])
        return f"{how} (a .csv separated by tabs, as its header line shows)" if named_csv else how


def table_dialect(
    path: str | Path, sep: str = "\t", *, user: str | None = None, time: str | None = None,
    times: TimeOptions = UTC_TIMES,
) -> Dialect:  # fmt: skip
    """How the CSV or TSV at `path`, separated by `sep`, was written (`Dialect`): judged
    a window of its lines at a time, the first window that shows deciding.

    How a quote inside a quoted field is written, doubled or escaped with a backslash, is
    `_escape_verdict`'s of a window (RFC 4180 where none tells). A tab-separated table (a
    `.tsv`, or a `.csv` whose header line is separated by tabs, as a hand-saved AOL slice
    is: the same bytes are read alike, whatever their name) is also raw or CSV-quoted:
    `looks_csv_quoted` of a window (`_quoting_verdict`, its quoted reading in the quoting
    found so far), a record being one whose `user` is not blank and whose `time` reads
    as a time (`times`: the job's settings). Any other table is CSV-quoted.

    The first window is the file's first `SNIFF_BYTES` (decompressed). A writer may write
    its first quoted field (a TSV's) or escaped quote anywhere, so a window that shows
    nothing is followed by the next: the header and `SNIFF_BYTES` from the next line
    where a field opens with a quote (while a TSV's quoting is not told), else where a
    quote follows a backslash (more, up to `MAX_RECORD_BYTES`, where one record is
    longer). A window that says quoted on `""` alone (polars' empty text, or a raw log's
    empty phrase) is weak: the windows after it are judged too, and any that says
    otherwise decides. A file with no such line is read to its end once: raw (a TSV),
    RFC 4180 (quoted); so is a TSV whose window holds no record in either reading (times
    that do not read with the job's settings: its rows are rejected whichever way). A
    stream that cannot be read (a damaged one) reads so from there; the reader then
    reports the damage."""
    tsv = sep == "\t"
    quoted: bool | None = None if tsv else True  # a TSV's quoting, once a window decides it
    weak = False  # a TSV's window said quoted on `""` alone
    quoting: Quoting | None = None  # the quoting dialect, once a window decides it

    def found() -> Dialect:  # what the windows judged so far say (a TSV's: raw, unless one said quoted, even weakly)
        quote = quoted if quoted is not None else weak
        return Dialect(quote='"', quoting=quoting or Quoting.DOUBLED) if quote else Dialect(quote=None)

    try:
        with storage.open_input(path) as stream:
            windows = _sniff_windows(stream)
            data, complete = next(windows)
            while True:
                judged = []
                if quoting is None:
                    quoting, lines = _escape_verdict(data, sep, complete, user=user, time=time, times=times)
                    judged.append(lines)
                if quoted is None:
                    text = data.decode("utf-8", errors="replace")
                    verdict = _quoting_verdict(text, complete, user=user, time=time, times=times,
                                               quoting=quoting or Quoting.DOUBLED)  # fmt: skip
                    if verdict.quoted is not None and not verdict.weak:
                        quoted = verdict.quoted
                    weak = weak or bool(verdict.quoted)
                    if quoted is False or verdict.barren:
                        return found()
                    judged.append(verdict.judged)
                if complete or (quoted and quoting is not None):
                    return found()
                # on to the next window that may tell: a field opening with a quote (a TSV's quoting), else a
                # quote after a backslash (the quoting dialect)
                data, complete = windows.send((min(judged), field_opening_quote if quoted is None else _escaped_quote))
    except (storage.DamagedStreamError, StopIteration):  # damage; or nothing more to judge after the last window
        return found()


def log_dialect(
    path: str | Path, sep: str = "\t", *, user: str | None = None, time: str | None = None,
    times: TimeOptions = UTC_TIMES,
) -> Dialect:  # fmt: skip
    """How a log whose fields never hold its separator or a line break was written (AOL's
    and Webis-SMC's, raw as their collections write them: `"free games"` is a phrase
    query, quotes and all): raw, or CSV-quoted, as pandas' `to_csv(sep="\\t")` writes a
    slice back (a field holding a quote in quotes, each quote inside doubled, so that
    each such field holds a doubled quote: `"free ""games"`). `table_dialect`'s
    judgement, and quoted only where the whole file bears it out (`_unwritten_fields`):
    some field holds a quote only a CSV writer writes (`""` alone is a raw log's empty
    phrase as much as polars' empty text), and none holds one no CSV writer writes. A raw
    part joined to a quoted one (`cat`), or a quoted field that does not close on its
    line, is read raw, every field as written, as the collection is (read quoted, its
    raw `"free games"` would lose its quotes, another text read without a word), and
    `Dialect.odd` names the first such field for the report. A raw log all of whose
    quotes are so written (`"a""b"`) reads as a CSV writer's: the bytes cannot tell. A
    file judged quoted is read once more here."""
    dialect = table_dialect(path, sep, user=user, time=time, times=times)
    if dialect.quote is None:  # a raw field seen first; a saved part further on is named (`Dialect.saved`)
        _, written = _unwritten_fields(path, sep, dialect.quoting, header=user, find="written")
        return Dialect(quote=None, saved=written) if written is not None else dialect
    odd, written = _unwritten_fields(path, sep, dialect.quoting, header=user)
    if odd is not None:
        return Dialect(quote=None, odd=odd)
    return dialect if written else Dialect(quote=None)


def _unwritten_fields(
    path: str | Path, sep: str, quoting: Quoting, *, header: str | None = None, find: str = "odd"
) -> tuple[tuple[int, str] | None, tuple[int, str] | None]:
    """The first field of the records of the file at `path` (its line number, 1-based,
    and its text) that no CSV writer writes, a record being a line and a field what lies
    between separators: one holding a quote not in quotes (a writer quotes every field
    that holds one), or one `_quoting_mark` says no writer makes (quotes around a text
    that needs none, a quote that does not close, text after the closing quote); in a
    file whose header names are all in quotes (`QUOTE_ALL`), any field in quotes is a
    writer's, a quote inside written as `quoting` writes it, and a line whose first field
    is not in quotes (a raw part joined to it: the breaker's `cat`) is no such writer's
    (its first field named). The first line is the header where it names the column
    `header` (a log's header is optional: else it is a record, judged as the rest);
    without `header`, always. None where there is none. And the first field only a CSV
    writer writes, where one was seen before it: one in quotes holding a quote (or an
    escape), or in a `QUOTE_ALL` file its header line. With `find="written"`, read on
    past fields no writer writes to that first writer's field (a raw part first, a saved
    one after it), the first odd one given too. Read `SCAN_BYTES` at a time, memory
    bounded by a line; a damaged stream up to its damage."""
    whole = _ESCAPED_FIELD if quoting.escape else _QUOTED_FIELD
    s = sep.encode()
    # the header's names all in quotes; the first odd field; the first writer's field; `data`'s line
    all_quoted, odd, written, line = None, None, None, 1
    try:
        for data in _whole_lines(path):
            at = 0  # where the lines to judge begin: after the header
            if all_quoted is None:
                end = data.find(b"\n") + 1 or len(data)
                names = data[:end].rstrip(b"\r\n").removeprefix(BOM).split(s)
                if header is None or header.encode() in {n.strip(b'" ') for n in names}:
                    all_quoted = all(len(n) >= 2 and n[:1] == n[-1:] == b'"' for n in names)
                    written = (1, data[:end].rstrip(b"\r\n").decode("utf-8", errors="replace")) if all_quoted else None
                    at, line = end, line + 1
                else:
                    all_quoted = False
                if written is not None and find == "written":
                    return odd, written
            # a line a QUOTE_ALL writer never writes (its first field not in quotes)
            bare = _BARE_LINE.search(data, at) if all_quoted and find == "odd" else None
            limit = bare.start() if bare else len(data)
            quote = data.find(b'"', at, limit)
            while quote >= 0:  # each field holding a quote, once (memchr's speed between them)
                start = max(data.rfind(s, at, quote), data.rfind(b"\n", at, quote)) + 1 or at
                end = min((e for e in (data.find(s, quote), data.find(b"\n", quote)) if e >= 0), default=len(data))
                field = data[start:end].removesuffix(b"\r").decode("utf-8", errors="replace")
                # its line (`line + data.count(b"\n", at, start)`) is counted only for a field kept: counted for
                # each field, it was 4.0 s of the 4.2 s a 1M-row raw log with a phrase query in 50 took here
                if field[0] == '"' and _quoting_mark(field, quoting):
                    if written is None and field != '""':
                        written = (line + data.count(b"\n", at, start), field)
                        if find == "written":
                            return odd, written
                elif not (field[0] == '"' and all_quoted and whole.fullmatch(field)):
                    odd = odd or (line + data.count(b"\n", at, start), field)
                    if find == "odd":
                        return odd, written
                quote = data.find(b'"', end, limit)
            if bare:
                end = min((e for e in (data.find(s, limit), data.find(b"\n", limit)) if e >= 0), default=len(data))
                field = data[limit:end].removesuffix(b"\r").decode("utf-8", errors="replace")
                return (line + data.count(b"\n", at, limit), field), written
            line += data.count(b"\n", at)
    except storage.DamagedStreamError:
        pass
    return odd, written


_BARE_LINE = re.compile(rb"(?m)^[^\"\r\n]")  # a line whose first field does not open with a quote


def _whole_lines(path: str | Path) -> Iterator[bytes]:
    """The bytes of the file at `path` (decompressed), in pieces of whole lines of about
    `SCAN_BYTES` each, memory bounded by a line."""
    buf = b""
    with storage.open_input(path) as stream:
        while chunk := stream.read(SCAN_BYTES):
            buf += chunk
            if (cut := buf.rfind(b"\n") + 1) > 0:
                yield buf[:cut]
                buf = buf[cut:]
    if buf:
        yield buf


def _escape_verdict(
    data: bytes, sep: str, complete: bool = True, *, user: str | None = None, time: str | None = None,
    times: TimeOptions = UTC_TIMES,
) -> tuple[Quoting | None, int]:  # fmt: skip
    """How the lines `data` (a header line, then lines of the file from a record's start,
    separated by `sep`; `complete`: to the file's end, else the last record may be cut and
    is left out) write a quote inside a quoted field (`Quoting`), None where nothing in
    them tells; and how many of their lines were judged (the header counted).

    Where no quote follows a backslash, RFC 4180 where a quote is doubled inside a quoted
    text (`quoting.doubles_quotes`: a backslash-escaping writer never doubles one), else
    nothing tells.

    Each reading, RFC 4180's and the backslash-escaping one's (`quoting.read_records`),
    costs the lines of its records that no writer of it makes (`Reading.malformed`: a
    quote left open, escaped outside quotes or closed with text after it, the wrong number
    of fields) or that are no record (`_fits`: a blank user, a time that is no time). The
    cheaper wins; at a tie, the one that reads more records (an escaped quote ending a
    text, `",\\""`, read as RFC 4180, may run on to a later quote that a field's end
    follows and read two records as one, all its fields in place). A text a writer of
    either dialect wrote costs the other reading its record where their readings differ:
    RFC 4180's `"a\\""b"` (`a\\"b`) is closed with text after it when escaped; Spark's `"tv
    32\\""` runs on in RFC 4180 (or is closed at its escaped quote, a backslash-escape row).
    Both read alike: nothing tells. Escaped: `ESCAPED_ANYWHERE` where escapes show outside
    quoted fields too (`quoting.escaped_anywhere`)."""
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    n_lines = data.count(b"\n") + int(bool(data) and not data.endswith(b"\n"))
    if b'\\"' not in data:  # no escape, but maybe a quote doubled inside a quoted text: only RFC 4180 does that
        return Quoting.DOUBLED if doubles_quotes(data, '"', sep) else None, n_lines
    scores, judged = [], n_lines
    for quoting in (Quoting.DOUBLED, Quoting.ESCAPED):
        reading = read_records(data, '"', sep, quoting.escape, complete)
        bounds = zip(reading.starts, [*reading.starts[1:], len(data)], strict=True)
        texts = [data[a:b].decode("utf-8", errors="replace").removesuffix("\n") for a, b in bounds]
        rows = pl.select(split_delimited(pl.lit(pl.Series(texts, dtype=pl.String)), sep, '"', quoting)).to_series()
        names, *rows = rows.to_list()
        bad = reading.malformed[1:] | ~np.array(_fits(rows, names, user, time, times), dtype=bool)
        lines = reading.lines[1:]
        if not complete and len(lines):  # the last record may be cut: the next window's first
            bad, lines = bad[:-1], lines[:-1]
            judged = min(judged, int(reading.lines[:-1].sum()))
        scores.append((int(lines[bad].sum()), -len(lines)))
    if scores[0] == scores[1]:
        return None, judged
    if scores[0] < scores[1]:
        return Quoting.DOUBLED, judged
    return Quoting.ESCAPED_ANYWHERE if escaped_anywhere(data, '"', sep, complete) else Quoting.ESCAPED, judged


def _sniff_windows(
    stream: storage.BinaryStream,
) -> Generator[tuple[bytes, bool], tuple[int, Callable[[bytes, bool], int]], None]:
    """The windows `table_dialect` judges, in order: each the header line and up to
    `SNIFF_BYTES` of the lines after it (a byte-order mark at the start left out), and
    whether it holds the file's end. Sent how many lines of the last window were judged
    (the header counted) and what tells: the next window begins at the first line after
    those that holds what `telling` finds (its offset in a buffer, -1 for none; given
    whether the buffer begins a line), read on in `SCAN_BYTES` steps, memory bounded by
    a line. A window whose first record it cannot hold whole is judged again four times
    as large, up to `MAX_RECORD_BYTES` (a longer record is an unclosed quote's: the
    reader rejects it), and then gives way at its last line."""
    buf, eof = b"", False

    def fill(size: int) -> None:
        nonlocal buf, eof
        while len(buf) < size and not eof:
            chunk = stream.read(max(size - len(buf), SCAN_BYTES))
            buf, eof = buf + chunk, not chunk

    fill(SNIFF_BYTES)
    buf = buf.removeprefix(BOM)
    header_end = end.end() if (end := LINE_END_BYTES.search(buf)) else len(buf)
    header, buf = buf[:header_end], buf[header_end:]
    size = SNIFF_BYTES
    while True:
        fill(size)
        body, complete = buf[:size], eof and len(buf) <= size
        judged, telling = yield header + body, complete
        starts = [0, *(m.end() for m in LINE_END_BYTES.finditer(body))]
        at = starts[judged - 1] if 0 < judged <= len(starts) else len(body)  # text line k is body line k - 1
        if at == 0 and size < MAX_RECORD_BYTES:  # its first record is longer than the window: a larger one
            size *= 4
            continue
        size = SNIFF_BYTES
        if at == 0:  # a record longer than any (an unclosed quote): on from the window's last line
            at = max((start for start in starts if start < len(body)), default=0) or len(body)
        at_line = at < len(body) or body.endswith((b"\n", b"\r"))  # whether `at` begins a line
        buf = buf[at:]
        while (hit := telling(buf, at_line)) < 0:
            if eof:
                return
            line = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1  # keep the last line: a window starts at its start
            buf, at_line = (buf[line:], at_line or line > 0) if len(buf) - line <= SNIFF_BYTES else (buf[-1:], False)
            chunk = stream.read(SCAN_BYTES)
            buf, eof = buf + chunk, not chunk
        buf = buf[max(buf.rfind(b"\n", 0, hit), buf.rfind(b"\r", 0, hit)) + 1 :]


def _escaped_quote(buf: bytes, at_line: bool) -> int:
    """Where in `buf` the first quote after a backslash is, -1 if none is (memchr's speed)."""
    return buf.find(b'\\"')


def field_opening_quote(buf: bytes, at_line: bool) -> int:
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
    times: TimeOptions = UTC_TIMES, quoting: Quoting = Quoting.DOUBLED,
) -> bool:  # fmt: skip
    """Whether tab-separated `text` (a file's start, header first; `complete`: the
    whole file, else its last record may be cut and is left out) is CSV-quoted (its
    quotes written as `quoting` writes them): the verdict of `_quoting_verdict`, raw
    where it has none."""
    return _quoting_verdict(text, complete, user=user, time=time, times=times, quoting=quoting).quoted is True


class _Verdict(NamedTuple):
    """What one window of a TSV says of its quoting (`_quoting_verdict`)."""

    quoted: bool | None  # None: nothing tells
    judged: int  # the lines judged, the header counted (a cut window's last record is the next one's first)
    weak: bool = False  # quoted on `""` fields alone
    barren: bool = False  # no record in either reading: the job's settings read none of its rows


def _quoting_verdict(
    text: str, complete: bool = True, *, user: str | None = None, time: str | None = None,
    times: TimeOptions = UTC_TIMES, quoting: Quoting = Quoting.DOUBLED,
) -> _Verdict:  # fmt: skip
    """Whether tab-separated `text` (a header line, then lines of the file; `complete`:
    they run to the file's end, else the last record may be cut and is left out) is
    CSV-quoted, or None when nothing in it tells; how many of its lines were judged
    (the header counted; a cut window's last record starts the next); whether the
    verdict is weak, or the window barren (`_Verdict`).

    Yes when every name of the header is in double quotes (a writer that quotes every
    field, or every text: `QUOTE_ALL`, `QUOTE_NONNUMERIC`). Else the body is read both
    ways, split at every tab and line end (raw) and by Python's `csv` (quoted), and
    each reading is scored by its records less the lines it cannot read as one (the
    quoted one as `quoting` writes a quote, `fields.escapes_kept`), a
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
    reader = csv.reader(io.StringIO(escapes_kept(text, "\t", '"', quoting), newline=""), delimiter="\t",
                        quotechar='"', escapechar=quoting.escape)  # fmt: skip
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
    for i in _holding_a_record_start([quoted[i][1:] for i in spanning], lines, names, user, time, times, quoting):
        quoted_fit[spanning[i]] = False  # a quoted text that runs raw records together: an unclosed quote in a raw log
    if complete and quoted and quoted[-1][0] is records[-1][0] and _unclosed(text, last_start, quoting):
        quoted_fit[-1] = False  # a quote that runs on to the end, which `csv` reads without a word: no field
    quoted_score = sum(quoted_fit) - sum(span for (_, _, span), fit in zip(quoted, quoted_fit, strict=True) if not fit)
    if not any(raw_fit) and not any(quoted_fit):
        return _Verdict(None, end, barren=bool(raw or quoted))
    # quoting's marks, on the lines both readings read as one record each (a quoted text's raw pieces say nothing)
    single = {start for _, start, span in quoted if span == 1}
    opened = [[f for f in fields if f[:1] == '"'] for (k, fields), ok in zip(raw_lines, raw_fit, strict=True)
              if ok and k in single]  # fmt: skip
    marked = [(line, [_quoting_mark(f, quoting) for f in line]) for line in opened]
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
    times: TimeOptions, quoting: Quoting = Quoting.DOUBLED,
) -> list[int]:  # fmt: skip
    """Which of the multi-line records at `spans` (the line each begins on, how many it
    spans) hold a line that reads raw as a record (`_fits`: the header's number of
    fields, a user, a time): of their lines after the first, the last up to the quote
    that closes the text (what follows it is the rest of its own record, as where the
    text is the first column). A text a CSV writer quoted holds line breaks, rarely
    whole records; an unclosed quote in a raw log runs on over the records after it.
    Without a user and a time to tell by, none. One reading of all their lines."""
    if column_at(names, user) is None or column_at(names, time) is None or not spans:
        return []
    text = _ESCAPED_TEXT if quoting.escape else _QUOTED_TEXT
    later = [[*lines[start + 1 : start + span - 1], text.match(lines[start + span - 1]).group()]  # type: ignore[union-attr]
             for start, span in spans]  # fmt: skip
    fits = iter(_fits([line.split("\t") for text in later for line in text], names, user, time, times, raw=True))
    return [k for k, text in enumerate(later) if any([next(fits) for _ in text])]


def _unclosed(text: str, start: int, quoting: Quoting = Quoting.DOUBLED) -> bool:
    """Whether the record that begins on line `start` of `text` (its last) opens a
    quote that never closes (a quote inside written as `quoting` writes it): Python's `csv`
    reads it to the end without a word."""
    at = [0, *(m.end() for m in _LINE_END.finditer(text))][start]
    rest = escapes_kept(text[at:], "\t", '"', quoting)
    try:
        list(csv.reader(io.StringIO(rest, newline=""), delimiter="\t", quotechar='"', escapechar=quoting.escape,
                        strict=True))  # fmt: skip
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
    if (at := column_at(names, user)) is not None and rows:
        values = pl.lit(pl.Series([fields[at] if ok else None for ok, fields in zip(fit, rows, strict=True)],
                                  dtype=pl.String))  # fmt: skip
        blank = is_blank(values) | (strip_spaces(values) == '""') if raw else is_blank(values)
        fit = [ok and not b for ok, b in zip(fit, pl.select(blank).to_series().to_list(), strict=True)]
    if (at := column_at(names, time)) is not None and rows:
        values = pl.Series([fields[at] if ok else None for ok, fields in zip(fit, rows, strict=True)], dtype=pl.String)
        read = pl.select(to_utc(pl.lit(values), pl.String(), times)).to_series().is_not_null().to_list()
        fit = [ok and r for ok, r in zip(fit, read, strict=True)]
    return fit


def _quoting_mark(field: str, quoting: Quoting = Quoting.DOUBLED) -> bool:
    """What one raw field that starts with a quote says of CSV quoting (its quotes
    written as `quoting` writes them): True for a field only a CSV writer makes (in
    quotes, a quote doubled or escaped inside, or empty), False for one it never makes
    (unclosed, text after the closing quote, or quotes around a text that needs none)."""
    if not (_ESCAPED_FIELD if quoting.escape else _QUOTED_FIELD).fullmatch(field):
        return False
    inner = field[1:-1]
    return inner == "" or '""' in inner or (quoting.escape is not None and quoting.escape + '"' in inner)


def column_at(names: list[str], name: str | None) -> int | None:
    """Where a header's `names` hold the column `name`, as the reader finds it
    (`column_index`, loose); None for none, or several."""
    try:
        return None if name is None else column_index(names, name, loose=True)
    except ValueError:
        return None
