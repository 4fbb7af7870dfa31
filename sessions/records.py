"""Split a text file into records, one bounded block at a time, with exact line numbers.

A record is a line; for quoted formats (CSV) it is a run of lines held together by a
quoted field that contains newlines. Under RFC 4180 a quote inside a quoted field is
doubled, so a newline ends a record exactly when an even number of quote characters
precede it in the block: one vectorised pass over the bytes finds every record.

The file is read through pyarrow's input streams, which decompress `.gz`, `.bz2`
and `.zst` on the fly, in blocks of `block_bytes`; only one block (plus at most one
unfinished record carried over) is ever in memory, so a 36M-row log streams.

Each block becomes a polars DataFrame with the columns of `RECORD_SCHEMA`:
`line_no` (1-based physical line where the record starts), `text` (the record without
its line terminator, null when it is not valid UTF-8), `undecodable` (for those
records only: the bytes with invalid sequences as `\\xNN` escapes, so nothing is lost)
and `terminated` (false only for a last record that has no newline: a truncated file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

DEFAULT_BLOCK_BYTES = 64 << 20
# A record still open (unbalanced quote) after this many bytes is cut at a newline,
# so that one stray quote cannot pull the rest of a file into memory.
MAX_RECORD_BYTES = 16 << 20

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "line_no": pl.Int64(),
    "text": pl.String(),
    "undecodable": pl.String(),
    "terminated": pl.Boolean(),
}

_NEWLINE = ord("\n")


def iter_records(
    path: str | Path,
    *,
    quote: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[pl.DataFrame]:
    """Yield the records of a (possibly compressed) text file in blocks.

    Args:
        path: a text file; `.gz`, `.bz2`, `.zst` and `.lz4` are decompressed.
        quote: the quote character of a CSV dialect, or None when newlines always end
            a record (AOL, TSV).
        block_bytes: how many (decompressed) bytes to read at a time.

    Example:
        >>> for block in iter_records("user-ct-test-collection-01.txt.gz"):
        ...     block.columns
        ['line_no', 'text', 'undecodable', 'terminated']
    """
    carry = b""
    next_line = 1
    with pa.input_stream(str(path), compression="detect") as stream:
        while True:
            chunk = stream.read(block_bytes)
            eof = not chunk
            buf = carry + chunk if carry else chunk
            if eof and not buf:
                return
            cut = len(buf) if eof else _last_record_end(buf, quote)
            if cut == 0:  # no complete record yet: keep reading
                carry = buf
                continue
            block, carry = buf[:cut], buf[cut:]
            frame, lines = _split_block(block, quote, next_line, final=eof)
            next_line += lines
            if frame.height:
                yield frame
            if eof:
                return


def _quote_ok_newlines(arr: np.ndarray, newlines: np.ndarray, quote: str | None) -> np.ndarray:
    """Positions of the newlines that end a record (not inside a quoted field)."""
    if quote is None:
        return newlines
    quotes = np.flatnonzero(arr == ord(quote))
    return newlines[np.searchsorted(quotes, newlines) % 2 == 0]


def _last_record_end(buf: bytes, quote: str | None) -> int:
    """Offset just past the last complete record in buf, 0 if there is none."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    ends = _quote_ok_newlines(arr, newlines, quote)
    if len(ends):
        return int(ends[-1]) + 1
    if len(buf) > MAX_RECORD_BYTES and len(newlines):  # an unbalanced quote: give up on it
        return int(newlines[-1]) + 1
    return 0


def _split_block(block: bytes, quote: str | None, first_line: int, *, final: bool) -> tuple[pl.DataFrame, int]:
    """Records of a block that ends at a record boundary (or at the end of the file).

    Returns the records and the number of physical lines the block spans.
    """
    if len(block) >= 1 << 31:
        raise ValueError("block too large for 32-bit offsets; lower block_bytes")
    arr = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    ends = _quote_ok_newlines(arr, newlines, quote)
    terminated_last = len(ends) > 0 and ends[-1] == len(block) - 1
    if not terminated_last and not final:  # the caller cut inside a record: forced cut
        ends = newlines if quote is None else np.append(ends, len(block) - 1)
        terminated_last = True
    # Record i spans block[offsets[i]:offsets[i + 1]], its newline included.
    offsets = np.concatenate(([0], ends + 1)).astype(np.int64)
    if not terminated_last:
        offsets = np.append(offsets, len(block))
    n = len(offsets) - 1
    starts, stops = offsets[:-1], offsets[1:]
    valid = _utf8_valid(block, starts, stops)
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    text = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(block), validity)
    undecodable = [None] * n
    for i in np.flatnonzero(~valid):
        undecodable[i] = block[starts[i] : stops[i]].rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    terminated = np.ones(n, dtype=bool)
    terminated[-1] = terminated_last
    frame = pl.DataFrame(
        {
            "line_no": first_line + np.searchsorted(newlines, starts),
            "text": pl.from_arrow(text),
            "undecodable": pl.Series(undecodable, dtype=pl.String),
            "terminated": terminated,
        },
        schema=RECORD_SCHEMA,
    ).with_columns(pl.col("text").str.strip_suffix("\n").str.strip_suffix("\r"))
    return frame, len(newlines) + (0 if terminated_last else 1)


def _utf8_ok(data: bytes | memoryview) -> bool:
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
        if _utf8_ok(view[starts[lo] : stops[hi - 1]]):
            continue
        if hi - lo == 1:
            valid[lo] = False
            continue
        mid = (lo + hi) // 2
        pending += [(lo, mid), (mid, hi)]
    return valid
