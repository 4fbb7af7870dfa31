"""Split a text file into records, one bounded block at a time, with exact line numbers.

A record is a line; for quoted formats (CSV) it is a run of lines held together by a
quoted field that contains newlines, read as Python's `csv` module reads them
(`quoting.quoted_spans`: a quote opens a quoted field only at a field's start, so a
stray quote inside a field, `12" pizza pan`, never takes the following lines with it),
in RFC 4180 or with a backslash escaping a quote (`escape`: Spark's, R's).

The file (a path or a URI: `sessions.storage`) is read through pyarrow's input
streams, which decompress `.gz`, `.bz2`, `.zst` and `.lz4` on the fly, in blocks of
`block_bytes`; only one block (plus at most one
unfinished record carried over) is ever in memory, so a 36M-row log streams.

`iter_blocks` yields `Block`s of raw bytes cut at record boundaries; `split_records`
checks a block record by record into a polars DataFrame with the columns of
`RECORD_SCHEMA`:
`line_no` (1-based physical line where the record starts), `text` (the record without
its line terminator, null when it is not valid UTF-8), `undecodable` (for those
records only: the bytes with invalid sequences as `\\xNN` escapes, so nothing is lost)
`terminated` (false only for a last record that has no newline: a truncated file),
`unclosed` (true only for a record in which a quoted field is left open: still open
at the end of the file or `MAX_RECORD_BYTES` on, or "closed" only by a quote inside
the text of a later line) and
`escaped` (true only, where no `escape` is read, for a record with a quote escaped with
a backslash, as Spark and R's `write.table` write one by default: a quoted field closed
by a quote after a backslash with text after it, `"say \\"hi\\" now"`, or closed at its
escaped quote where RFC 4180 would run it on over the records after it, `"tv 32\\""`) and
`damaged` (true only for what follows the last complete record of a compressed file
whose stream breaks off, an interrupted download: see `iter_blocks`) and
`lines` (the physical lines the record takes: more than one for a quoted field that
holds line breaks, or a quote left open that took the lines after it).

A UTF-8 byte-order mark is not part of a record: the one that starts a file is dropped
before anything is read, and one at the start of a record (files joined with `cat`)
is dropped from that record's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import polars as pl
import pyarrow as pa

from sessions import storage
from sessions.quoting import quote_ok_newlines, quoted_spans

DEFAULT_BLOCK_BYTES = 16 << 20
# A record still open (unbalanced quote) after this many bytes is cut at a newline,
# so that one stray quote cannot pull the rest of a file into memory.
MAX_RECORD_BYTES = 16 << 20

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "line_no": pl.Int64(),
    "text": pl.String(),
    "undecodable": pl.String(),
    "terminated": pl.Boolean(),
    "unclosed": pl.Boolean(),
    "escaped": pl.Boolean(),
    "damaged": pl.Boolean(),
    "lines": pl.Int64(),
}

BOM = b"\xef\xbb\xbf"  # U+FEFF in UTF-8
_NEWLINE = ord("\n")


@dataclass(frozen=True)
class Block:
    """Whole records of a file as raw bytes.

    `data` ends at a record boundary (or at the end of the file when `final`);
    `first_line` is the 1-based line number of its first byte; `newlines` holds the
    offsets of its newline bytes, found once and shared by every reader of the block.
    `damage` (final blocks only) says why the file's stream broke off after `data`:
    what follows is unreadable.
    """

    data: bytes
    first_line: int
    newlines: np.ndarray
    final: bool
    damage: str | None = None

    @property
    def n_lines(self) -> int:
        """Physical lines in the block (a last line without newline counts)."""
        unterminated = len(self.data) > 0 and (not len(self.newlines) or self.newlines[-1] != len(self.data) - 1)
        return len(self.newlines) + int(unterminated)

    def after_first_line(self) -> Block:
        """The block without its first line (a header)."""
        if not len(self.newlines):
            return Block(b"", self.first_line + 1, self.newlines[:0], self.final, self.damage)
        cut = int(self.newlines[0]) + 1
        return Block(self.data[cut:], self.first_line + 1, self.newlines[1:] - cut, self.final, self.damage)

    def first_line_bytes(self) -> bytes:
        """The first line as read, without its newline."""
        return self.data[: int(self.newlines[0]) if len(self.newlines) else len(self.data)]

    def first_line_text(self) -> str | None:
        """The first line, decoded (None when it is not valid UTF-8)."""
        try:
            return self.first_line_bytes().decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            return None


def not_utf8_advice(raw: bytes) -> str:
    """What to do with text that is not UTF-8, judged by its bytes `raw` (a line or a
    file's start): UTF-16 shows as a byte-order mark or a NUL in every other byte (Excel's
    "Unicode Text", PowerShell's `>`); anything else is most often Latin-1 or Windows-1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or raw.count(0) * 3 >= len(raw) > 0:
        return "it looks like UTF-16 (Excel's Unicode Text): convert it, e.g. with iconv -f UTF-16 -t UTF-8"
    return "convert it to UTF-8, e.g. with iconv -f WINDOWS-1252 -t UTF-8 (or the encoding it was written in)"


def other_layout(first_line: bytes, path: str | Path = "") -> str | None:
    """What the file at `path`, read as delimited text, holds instead, by its first line
    (`Block.first_line_bytes`, decompressed), with how to read it: a Parquet file (its
    first bytes `PAR1`) or JSON lines (a first line that is a JSON object), to be named
    so, with the compression suffix its name has (`.parquet.gz`); None for anything else."""
    import json

    compressed = storage.name(path)[len(storage.uncompressed_name(path)) :] if path else ""
    if first_line.startswith(b"PAR1"):
        held, suffix = "a Parquet file (its first bytes are PAR1)", ".parquet"
    elif first_line.lstrip(b"\xef\xbb\xbf \t").startswith(b"{"):
        try:
            if not isinstance(json.loads(first_line.decode("utf-8")), dict):
                return None
        except ValueError:  # UnicodeDecodeError too
            return None
        held, suffix = "JSON lines (its first line is a JSON object)", ".jsonl"
    else:
        return None
    return (f"it is {held}, read as text here: read it with --format table and a --map, under a name ending "
            f"{suffix}{compressed}")  # fmt: skip


def iter_blocks(
    path: str | Path,
    *,
    quote: str | None = None,
    sep: str = ",",
    escape: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[Block]:
    """Blocks of whole records of a (possibly compressed) text file, in order.

    A compressed stream that breaks off (a download cut short) or turns corrupt ends
    the file there: the records before the damage come in full, and the final block
    holds the bytes after the last complete record with its `damage` set (what
    `storage.DamagedStreamError` says: the damage and its offsets). A zip or tar archive
    (`archive_refusal`) is reported so too, as one empty final block, not read. Other read errors are raised:
    FileNotFoundError when no file is at `path`, StorageError (one line) when its
    filesystem cannot be reached (`storage.open_input`), and the OSError or pyarrow
    ArrowException of a read that fails otherwise.

    Lines end with LF or CRLF, or, in a file whose first `LINE_ENDING_SNIFF_BYTES`
    (or all) hold more lone carriage returns than LFs outside quoted fields, with CR
    alone (classic Mac OS, whose spreadsheets save CSV so, an LF inside a quoted cell):
    each CR is then read as the LF it stands for, as Python's `csv` (`newline=""`) and
    universal newlines read it, but for one inside a quoted field (with a `quote`),
    which is the field's text, as Python's `csv` keeps it.

    Args:
        path: a text file; gzip, bz2, xz, zstd and LZ4 data are decompressed (`storage.open_input`).
        quote: the quote character of a CSV dialect whose quoted fields may hold
            newlines, or None when newlines always end a record (AOL, TSV).
        sep: the field separator of that dialect (where a quoted field can start).
        escape: the character that escapes a quote inside a quoted field in that
            dialect (a backslash: Spark's, R's `write.table`), or None (RFC 4180).
        block_bytes: how many (decompressed) bytes to read at a time.
    """
    carry = b""
    next_line = 1
    started = False  # past the file's first bytes
    ending: bytes | None = None  # the file's line ending, once known: LF (or CRLF) or CR alone
    with storage.open_input(path) as stream:
        while True:
            damage = None
            try:
                chunk = stream.read(block_bytes)
            except storage.DamagedStreamError as err:
                chunk, damage = b"", str(err)
            eof = not chunk
            buf = carry + chunk if carry else chunk
            if not started:  # a byte-order mark that starts the file is not text
                if len(buf) < len(BOM) and not eof:
                    carry = buf
                    continue
                buf, started = buf.removeprefix(BOM), True
            if ending is None:  # the file's first bytes decide, before any block is handed on
                if not eof and len(buf) < LINE_ENDING_SNIFF_BYTES:
                    carry = buf
                    continue
                ending = _line_ending(buf[:LINE_ENDING_SNIFF_BYTES], quote, sep, escape)
                if (archive := archive_refusal(buf)) is not None:  # not records: the file is reported, not read
                    yield Block(b"", next_line, np.empty(0, dtype=np.intp), final=True, damage=archive)
                    return
            if eof and not buf and damage is None:
                return
            # `buf` as read; `lines`, the same bytes with each CR of a CR file an LF (the same length)
            lines = buf.replace(_CR, b"\n") if (crs := ending == _CR) else buf
            newlines = np.flatnonzero(np.frombuffer(lines, dtype=np.uint8) == _NEWLINE)
            cut = _last_record_end(lines, newlines, quote, sep, escape, final=eof)
            while eof and 0 < cut < len(buf):  # the file's last records, then what follows them on its own
                data = _as_read(buf, lines, cut, quote, sep, escape) if crs else buf[:cut]
                block = Block(data, next_line, newlines[newlines < cut], final=False)
                next_line += block.n_lines
                yield block
                buf, newlines = buf[cut:], newlines[newlines >= cut] - cut
                lines = lines[cut:] if crs else buf
                cut = _last_record_end(lines, newlines, quote, sep, escape, final=True)
            if eof:
                cut = len(buf)
            elif cut == 0:  # no complete record yet: keep reading
                carry = buf
                continue
            data = _as_read(buf, lines, cut, quote, sep, escape) if crs else buf[:cut]
            block = Block(data, next_line, newlines[newlines < cut], final=eof, damage=damage)
            carry = buf[cut:]
            next_line += block.n_lines
            yield block
            if eof:
                return


LINE_ENDING_SNIFF_BYTES = 1 << 16
_CR = b"\r"


def archive_refusal(head: bytes) -> str | None:
    """Why a file (decompressed) whose first bytes are `head` is not read as records: a
    zip archive (a local file header, PKWARE's APPNOTE 4.3.7, a spanned one's marker, or
    an empty one's end record), a 7z archive, or a tar archive (its magic at offset 257:
    POSIX.1-1988's `ustar` and a NUL, GNU tar's `ustar`, two spaces and a NUL), whose
    member headers would be read into the records around them; or data compressed twice
    (a compression's data inside: `storage.compression_in`). None for any other (text
    holds no NUL)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "a zip archive, which is not read: unpack it (`unzip FILE`) and give the files it holds"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "a 7z archive, which is not read: unpack it (`7z x FILE`) and give the files it holds"
    if head[257:263] == b"ustar\x00" or head[257:265] == b"ustar  \x00":
        return "a tar archive, which is not read: unpack it (`tar -xf FILE`) and give the files it holds"
    if (inner := storage.compression_in(head[: storage.HEAD_BYTES])) is not None:
        return f"compressed twice ({inner} data inside its compression), which is not read: give it decompressed once"
    return None


def _line_ending(head: bytes, quote: str | None = None, sep: str = ",", escape: str | None = None) -> bytes:
    """The line ending of a file that starts with `head`: CR when lone CRs (not of a
    CRLF) outnumber its LFs, else LF (CRLF files too; a stray CR in a line does not
    make a file of LF lines a CR one). With a `quote`, only the line ends outside quoted
    fields count (`quoted_spans`, a CR or an LF each ending a line): a cell's line
    breaks are its text, however many (an Excel "CSV (Macintosh)" file of CR lines whose
    cells hold LFs; an LF file whose cells hold CRs)."""
    if quote is not None and quote.encode() in head:
        inside = _inside_quotes(np.frombuffer(head.replace(_CR, b"\n"), dtype=np.uint8), quote, sep, escape, False)
        head = np.frombuffer(head, dtype=np.uint8)[~inside].tobytes()
    lone = head.count(_CR) - head.count(b"\r\n")
    return _CR if lone > head.count(b"\n") else b"\n"


def _inside_quotes(arr: np.ndarray, quote: str, sep: str, escape: str | None, final: bool = True) -> np.ndarray:
    """(len(arr),) bool: the bytes of `arr` (which starts at a record's start, its line
    ends LFs) inside a quoted field (`quoted_spans`, with `escape` and `final`) from its
    opening quote on; a field still open at the end runs to it."""
    opens, closes, _ = quoted_spans(arr, quote, sep, escape, final)
    depth = np.zeros(len(arr) + 1, dtype=np.int64)
    depth[opens] += 1
    depth[closes] -= 1
    return np.cumsum(depth[:-1]) > 0


def _as_read(buf: bytes, lines: bytes, cut: int, quote: str | None, sep: str, escape: str | None) -> bytes:
    """The first `cut` bytes of `buf` (whole records) of a file of CR lines as the reader
    hands them on: `lines`' (where each CR is the LF it stands for), but for the CRs
    inside quoted fields (with a `quote`), which are a cell's text and stay as written,
    as Python's `csv` keeps them (a cell's `\r\n` whatever the file's line ends)."""
    if quote is None or buf.find(quote.encode(), 0, cut) < 0 or buf.find(_CR, 0, cut) < 0:
        return lines[:cut]
    kept = np.frombuffer(lines, dtype=np.uint8, count=cut).copy()
    kept[_inside_quotes(kept, quote, sep, escape) & (np.frombuffer(buf, dtype=np.uint8, count=cut) == _CR[0])] = _CR[0]
    return kept.tobytes()


def iter_records(
    path: str | Path,
    *,
    quote: str | None = None,
    sep: str = ",",
    escape: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[pl.DataFrame]:
    """Yield the records of a (possibly compressed) text file in blocks: `split_records`
    of each of `iter_blocks`' blocks, those without a record left out. Each frame holds
    the `RECORD_SCHEMA` columns; arguments and errors as `iter_blocks` and
    `split_records`.

    Example:
        >>> for block in iter_records("user-ct-test-collection-01.txt.gz"):
        ...     block.columns
        ['line_no', 'text', 'undecodable', 'terminated', 'unclosed', 'escaped', 'damaged', 'lines']
    """
    for block in iter_blocks(path, quote=quote, sep=sep, escape=escape, block_bytes=block_bytes):
        frame = split_records(block, quote, sep, escape)
        if frame.height:
            yield frame


def _last_record_end(
    buf: bytes, newlines: np.ndarray, quote: str | None, sep: str, escape: str | None, final: bool
) -> int:
    """Offset just past the last complete record in buf (which starts at a record's
    start), 0 if there is none yet (`final`: buf runs to the file's end). A record still
    open `MAX_RECORD_BYTES` after its start (an unclosed quote) ends at the first newline
    past that point, wherever the blocks of the file fall."""
    ends, _, _ = quote_ok_newlines(np.frombuffer(buf, dtype=np.uint8), newlines, quote, sep, escape, final)
    if len(ends):
        return int(ends[-1]) + 1
    past = newlines[newlines >= MAX_RECORD_BYTES]
    return int(past[0]) + 1 if len(past) else 0


def split_records(block: Block, quote: str | None = None, sep: str = ",", escape: str | None = None) -> pl.DataFrame:
    """The records of a block, with `RECORD_SCHEMA` columns, checked one by one
    (`quote`, `sep`, `escape`: as for `iter_blocks`; a block ends where a record ends, so
    a quoted field open at its end is left open, `quoted_spans`' `final`). ValueError for a block of 2 GiB (2**31 bytes)
    or more, beyond 32-bit offsets: lower `block_bytes`."""
    data = block.data
    if not data:
        return _damaged_rest(block) if block.damage else pl.DataFrame(schema=RECORD_SCHEMA)
    if len(data) >= 1 << 31:
        raise ValueError("block too large for 32-bit offsets; lower block_bytes")
    newlines = block.newlines
    ends, left_open, escaped_at = quote_ok_newlines(np.frombuffer(data, dtype=np.uint8), newlines, quote, sep, escape)
    terminated_last = len(ends) > 0 and ends[-1] == len(data) - 1
    if not terminated_last and not block.final:  # the reader cut inside a record: forced cut
        ends = np.append(ends, len(data) - 1)
        terminated_last = True
    # Record i spans data[offsets[i]:offsets[i + 1]], its newline included.
    offsets = np.concatenate(([0], ends + 1)).astype(np.int64)
    if not terminated_last:
        offsets = np.append(offsets, len(data))
    n = len(offsets) - 1
    starts, stops = offsets[:-1], offsets[1:]
    valid = _utf8_valid(data, starts, stops)
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    text = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data), validity)
    undecodable = [None] * n
    for i in np.flatnonzero(~valid):
        undecodable[i] = data[starts[i] : stops[i]].rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    terminated = np.ones(n, dtype=bool)
    terminated[-1] = terminated_last
    unclosed = np.zeros(n, dtype=bool)  # at the file's end, where `iter_blocks` cut a record open too long, or
    unclosed[np.searchsorted(starts, left_open, side="right") - 1] = True  # "closed" by a later line's text
    escaped = np.zeros(n, dtype=bool)
    escaped[np.searchsorted(starts, escaped_at, side="right") - 1] = True
    damaged = np.zeros(n, dtype=bool)
    damaged[-1] = block.damage is not None and not terminated_last  # the record the damage cut off
    lines = np.searchsorted(newlines, stops) - np.searchsorted(newlines, starts)  # line ends inside each
    lines[-1] += not (len(newlines) and newlines[-1] == stops[-1] - 1)  # a last line without its line end
    records = pl.DataFrame(
        {
            "line_no": block.first_line + np.searchsorted(newlines, starts),
            "text": pl.from_arrow(text),
            "undecodable": pl.Series(undecodable, dtype=pl.String),
            "terminated": terminated,
            "unclosed": unclosed,
            "escaped": escaped,
            "damaged": damaged,
            "lines": lines,
        },
        schema=RECORD_SCHEMA,
    ).with_columns(
        pl.when("terminated")  # the line end (a newline inside a quoted field left open at the end is text)
        .then(pl.col("text").str.strip_suffix("\n").str.strip_suffix("\r"))
        .when("unclosed")  # its last line end too, whatever ends the file's lines
        .then(pl.col("text"))
        .otherwise(pl.col("text").str.strip_suffix("\r"))  # a CRLF file cut before its last LF
        .str.strip_prefix("\ufeff")
    )
    if block.damage and terminated_last:  # broken off at a record boundary: the rest is one record
        records = pl.concat([records, _damaged_rest(block)])
    return records


def _damaged_rest(block: Block) -> pl.DataFrame:
    """What follows the last complete record of a broken stream, as one (empty) record."""
    return pl.DataFrame(
        {"line_no": [block.first_line + block.n_lines], "text": [""], "undecodable": [None], "terminated": [False],
         "unclosed": [False], "escaped": [False], "damaged": [True], "lines": [1]},
        schema=RECORD_SCHEMA,
    )  # fmt: skip


@dataclass(frozen=True)
class ByteCensus:
    """What one pass over a block's bytes finds (`byte_census`), for the fast path of
    tab-separated blocks: whether polars' CSV reader may read them as they are.

    separators: bytes equal to the separator; controls: control bytes other than tab,
    CR and LF, DEL, and the C1 controls (U+0080..U+009F, two bytes each); empty_lines:
    lines with nothing before their LF but an optional CR; blank_candidates: lines of
    whitespace bytes only (space, tab, CR) or bytes above 0x7F (Unicode whitespace is
    multi-byte), the only lines whose fields can all be blank; bom: whether a UTF-8
    byte-order mark occurs anywhere.
    """

    separators: int
    controls: int
    empty_lines: int
    blank_candidates: int
    bom: bool


def byte_census(data: bytes, newlines: np.ndarray, sep: str) -> ByteCensus:
    """`ByteCensus` of a block's bytes (`newlines`: the offsets of its LF bytes): a
    byte histogram and a look at each line's first bytes, compiled (numba)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    counts = _histogram(arr)
    controls = int(counts[:32].sum() - counts[9] - counts[10] - counts[13] + counts[127])
    if counts[0xC2]:  # the lead byte of U+0080..U+00BF: among them the C1 controls, U+0080..U+009F
        at = np.flatnonzero(arr[:-1] == 0xC2)
        controls += int(((arr[at + 1] >= 0x80) & (arr[at + 1] <= 0x9F)).sum())
    bom = False
    if counts[BOM[0]]:  # a rare lead byte: look only where it occurs
        at = np.flatnonzero(arr[:-2] == BOM[0])
        bom = bool(((arr[at + 1] == BOM[1]) & (arr[at + 2] == BOM[2])).any())
    empty, blank = _line_kinds(arr, newlines.astype(np.int64, copy=False))
    return ByteCensus(int(counts[ord(sep)]), controls, empty, blank, bom)


@numba.njit(cache=True, nogil=True)
def _histogram(arr: np.ndarray) -> np.ndarray:
    """(256,) int64: how many bytes of each value (four interleaved counters, so that
    consecutive equal bytes do not wait on one another)."""
    counts = np.zeros((4, 256), dtype=np.int64)
    n = len(arr) // 4 * 4
    for i in range(0, n, 4):
        counts[0, arr[i]] += 1
        counts[1, arr[i + 1]] += 1
        counts[2, arr[i + 2]] += 1
        counts[3, arr[i + 3]] += 1
    for i in range(n, len(arr)):
        counts[0, arr[i]] += 1
    total = np.zeros(256, dtype=np.int64)  # a loop, not counts.sum(axis=0): numba compiles that for seconds
    for v in range(256):
        total[v] = counts[0, v] + counts[1, v] + counts[2, v] + counts[3, v]
    return total


@numba.njit(cache=True, nogil=True)
def _line_kinds(arr: np.ndarray, newlines: np.ndarray) -> tuple[int, int]:
    """(empty lines, blank candidates) of `ByteCensus`: each line is read only up to
    its first byte that is neither whitespace nor above 0x7F (the first, in most)."""
    empty = blank = 0
    start = 0
    for k in range(len(newlines) + 1):
        end = newlines[k] if k < len(newlines) else len(arr)
        if k == len(newlines) and start == end:
            break  # no last line without LF
        length = end - start
        if k < len(newlines) and (length == 0 or (length == 1 and arr[start] == 13)):
            empty += 1
        else:
            only_space = True
            for j in range(start, end):
                b = arr[j]
                if b != 32 and b != 9 and b != 13 and b < 128:
                    only_space = False
                    break
            if only_space:
                blank += 1
        start = end + 1
    return empty, blank


def utf8_ok(data: bytes | memoryview) -> bool:
    """Whether data is valid UTF-8, checked by Arrow without building a Python str."""
    arr = pa.BinaryArray.from_buffers(
        pa.binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int32)), pa.py_buffer(data)]
    )
    try:
        arr.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _utf8_valid(block: bytes, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Per-record UTF-8 validity: one check when the block is clean (the common case),
    otherwise bisection down to the bad records."""
    valid = np.ones(len(starts), dtype=bool)
    view = memoryview(block)
    pending = [(0, len(starts))]
    while pending:
        lo, hi = pending.pop()
        if utf8_ok(view[starts[lo] : stops[hi - 1]]):
            continue
        if hi - lo == 1:
            valid[lo] = False
            continue
        mid = (lo + hi) // 2
        pending += [(lo, mid), (mid, hi)]
    return valid
