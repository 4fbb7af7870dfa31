"""Where quoted fields open and close in a delimited text, in the two dialects of quoting
that writers use, and which of them a text was written in.

RFC 4180 (Python's `csv`, pandas, polars, Excel, R's `write.csv`) doubles a quote inside
a quoted field: `"say ""hi"" now"`. Spark's CSV (`df.write.csv`: quote `"`, escape `\\`),
R's `write.table` (its default `qmethod = "escape"`), MySQL's `OUTFILE` and Python's `csv`
with `escapechar="\\"` and `doublequote=False` escape it with a backslash instead:
`"say \\"hi\\" now"`, `"samsung tv 32\\""` (an inch sign ending the text). Read as the
other, each misreads the first: a text of the second "closes" at its escaped quote, or runs
on over the records after it (Spark's `"tv 32\\""`: one row took the next 1,000).

`quoted_spans` finds the quoted fields in either dialect (`escape`), and in RFC 4180 also
closes a field that it would leave open where a backslash-escaping writer closed it, so
that one such text never takes the records after it; `quote_ok_newlines` tells from them
which line ends end a record, and which records hold a quote left open or escaped; and
`read_records` reads a file's lines in one dialect, for `formats.table` to judge which
dialect reads them (`escaped_anywhere`: and where a backslash escapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

ESCAPE = "\\"  # the escape read: a backslash
_NEWLINE = ord("\n")
_CR = ord("\r")
_BACKSLASH = ord(ESCAPE)


def quote_ok_newlines(
    arr: np.ndarray, newlines: np.ndarray, quote: str | None, sep: str, escape: str | None = None, final: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the newlines that end a record (not inside a quoted field), and the
    openings of the quoted fields left open: one still open at the end of `arr` (in its
    last record), and one that runs over a line end to a quote followed by more text, not
    a separator or a line end. That quote is text of a later line (`"opens` ... `has a
    "quote" inside`), where Python's csv in strict mode stops; read on, it took the lines
    between as one field. With an `escape`, also one closed at an escaped quote
    (`quoted_spans`: a text R ended in a backslash), its row that line alone. Third,
    without an `escape`, the openings of the quoted fields whose quote is escaped with a
    backslash (`"say \\"hi\\" now"`, `"tv 32\\""`: a backslash-escaping dialect, as Spark and
    R's `write.table` write by default, read as RFC 4180): one closed by a quote after an
    odd run of backslashes with text after it, and one closed where such a writer closed
    it (`quoted_spans`). `escape`, `final`: as for `quoted_spans`."""
    if quote is None:
        return newlines, newlines[:0], newlines[:0]
    opens, closes, cut = quoted_spans(arr, quote, sep, escape, final)
    if not len(opens):
        return newlines, opens, opens
    span = np.searchsorted(opens, newlines, side="right") - 1
    inside = (span >= 0) & (newlines < closes[np.maximum(span, 0)])
    text_after = ~ends_field(arr, closes + 1, sep)
    spans_lines = np.searchsorted(newlines, opens) < np.searchsorted(newlines, closes)
    left_open = (closes == len(arr)) | (text_after & spans_lines)
    if escape is not None:  # escaped quotes are read; a field closed at one (`quoted_spans`) was left open
        return newlines[~inside], opens[left_open | np.isin(opens, cut)], opens[:0]
    escaped = text_after & after_odd_backslashes(arr, closes) & (closes > opens + 1)
    escaped[np.searchsorted(opens, cut)] = True
    return newlines[~inside], opens[left_open], opens[escaped & ~left_open]


def quoted_spans(
    arr: np.ndarray, quote: str, sep: str, escape: str | None = None, final: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where quoted fields open and close, as Python's `csv` reader (RFC 4180, not strict)
    reads them: a quote opens a quoted field only at the start of a field (the start of
    the data, or after a separator or a newline that is not quoted itself); inside one a
    doubled quote stands for a quote and any other quote closes it; a quote anywhere
    else is text (`12" pizza pan`). With an `escape` (a backslash, `csv`'s `escapechar`),
    a quote after an odd run of them inside a quoted field is text too (`"say \\"hi\\""`).

    Without one, a quoted field that RFC 4180 leaves open (it runs to the end of the
    data, or over a line end to a quote with text after it: `_left_open`) is closed
    instead where a backslash-escaping writer closed it, where it can be: at its first
    doubled quote after an odd run of backslashes that a field's end follows (`"tv
    32\\""`, an escaped quote ending the text; `"\\""`, a text of one quote), so that the
    records after it are read on their own. With one, such a field is closed so at its
    first escaped quote that a field's end follows (`"a\\"`: R's `write.table`, which
    escapes no backslash, ends a text `a\\` so). `final`: whether the data run to the end
    of the file (where not, a field open at their end is unfinished, not left open).

    Returns the offsets of each opening and closing quote (`len(arr)` for a field still
    open at the end), and the openings of the fields so closed at an escaped quote. One pass
    over the quote characters only (and the bytes of a field left open, where one is)."""
    quotes = np.flatnonzero(arr == ord(quote))
    if not len(quotes):
        return quotes, quotes, quotes
    before = arr[np.maximum(quotes - 1, 0)]
    at_start = ((quotes == 0) | (before == ord(sep)) | (before == _NEWLINE)).tolist()
    escaped = after_odd_backslashes(arr, quotes).tolist()
    positions = quotes.tolist()
    opens: list[int] = []
    closes: list[int] = []
    cut: list[int] = []
    i, n, inside, candidate = 0, len(positions), False, -1  # candidate: where a backslash-escaping writer closed
    while i < n or (inside and candidate >= 0 and final):
        if i < n and not inside:
            if at_start[i]:
                inside, candidate = True, -1
                opens.append(positions[i])
            i += 1
        elif i < n and escape is not None and escaped[i]:  # an escaped quote: text
            if candidate < 0 and _ends_field_at(arr, positions[i] + 1, sep):
                candidate = i  # where a writer that escapes no backslash closed it (R's `"a\\"`, a text ending in one)
            i += 1
        elif i + 1 < n and positions[i + 1] == positions[i] + 1:  # a doubled quote: text
            if escape is None and candidate < 0 and escaped[i] and _ends_field_at(arr, positions[i] + 2, sep):
                candidate = i + 1
            i += 2
        elif candidate >= 0 and (i == n or _left_open(arr, opens[-1], positions[i], sep)):
            closes.append(positions[candidate])  # closed where the escaping writer closed it, read on from there
            cut.append(opens[-1])
            i, inside, candidate = candidate + 1, False, -1
        else:
            inside = False
            closes.append(positions[i])
            i += 1
    if inside:
        closes.append(len(arr))
    return np.array(opens, dtype=np.int64), np.array(closes, dtype=np.int64), np.array(cut, dtype=np.int64)


def after_odd_backslashes(arr: np.ndarray, at: np.ndarray) -> np.ndarray:
    """(len(at),) bool: whether each offset of `at` in `arr` follows an odd run of
    backslashes (escaped, where a backslash escapes: the run's pairs are escaped
    backslashes). Looks back only from the offsets that a backslash precedes."""
    odd = np.zeros(len(at), dtype=bool)
    at = np.minimum(at, len(arr))  # (a field open at the end "closes" at len(arr))
    hit = np.flatnonzero((at > 0) & (arr[np.clip(at - 1, 0, max(len(arr) - 1, 0))] == _BACKSLASH))
    run = np.ones(len(hit), dtype=np.int64)
    going = np.ones(len(hit), dtype=bool)
    while going.any():  # as many steps as the longest run
        prev = at[hit] - run - 1
        going &= (prev >= 0) & (arr[np.maximum(prev, 0)] == _BACKSLASH)
        run += going
    odd[hit] = run % 2 == 1
    return odd


def ends_field(arr: np.ndarray, at: np.ndarray, sep: str) -> np.ndarray:
    """(len(at),) bool: whether a field ends at each offset of `at` in `arr`: the end of
    the data, a separator or a line end (LF, or the CR of a CRLF)."""
    after = arr[np.minimum(at, len(arr) - 1)]
    return (at >= len(arr)) | (after == ord(sep)) | (after == _NEWLINE) | (after == _CR)


def _ends_field_at(arr: np.ndarray, at: int, sep: str) -> bool:
    """`ends_field` at one offset."""
    return at >= len(arr) or int(arr[at]) in (ord(sep), _NEWLINE, _CR)


def _left_open(arr: np.ndarray, opened: int, closed: int, sep: str) -> bool:
    """Whether the quoted field opened at `opened` and "closed" at `closed` is left open
    as `quote_ok_newlines` tells: closed by a quote with text after it, over a line end."""
    return not _ends_field_at(arr, closed + 1, sep) and bool((arr[opened:closed] == _NEWLINE).any())


class Quoting(StrEnum):
    """How a quote inside a quoted field is written: `DOUBLED` (RFC 4180: Python's `csv`,
    pandas, polars, Excel, R's `write.csv`); `ESCAPED` with a backslash, as is a
    backslash, inside quoted fields (Spark's CSV, MySQL's `OUTFILE`; R's `write.table`,
    which leaves a backslash as it is); `ESCAPED_ANYWHERE`, outside them too (Python's
    `csv` with `escapechar="\\"` and `doublequote=False`, and so pandas: `a\\"b` unquoted
    for `a"b`, and `a\\\\b` for `a\\b`)."""

    DOUBLED = "doubled"
    ESCAPED = "escaped"
    ESCAPED_ANYWHERE = "escaped anywhere"

    @property
    def escape(self) -> str | None:
        """The escape character inside quoted fields (`ESCAPE`), None for none."""
        return None if self is Quoting.DOUBLED else ESCAPE


@dataclass(frozen=True)
class Reading:
    """The records of a table's lines (`read_records`) in one quoting dialect: each
    record's first byte (`starts`), how many lines it takes (`lines`), and whether it
    holds what no writer of that dialect writes (`malformed`: `read_records`)."""

    starts: np.ndarray
    lines: np.ndarray
    malformed: np.ndarray


def read_records(data: bytes, quote: str, sep: str, escape: str | None, complete: bool = True) -> Reading:
    """The records of the lines `data` (which start at a record's start, their line ends
    LFs; `complete`: to the file's end) as `quote_ok_newlines` ends them, with or without
    an `escape`, and which of them hold what no writer of that dialect writes: a quoted
    field left open (one that runs over the records after it), closed at an escaped quote
    (RFC 4180's backslash-escape rows), or closed with text after it; a number of fields
    other than the first record's (a header's); without an `escape`, a quote after an odd
    run of backslashes outside quoted fields (`12\\" pizza`, as Python's `csv` writes a
    quote with an `escapechar`, where an RFC 4180 writer quotes the field)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    ends, left_open, escaped = quote_ok_newlines(arr, newlines, quote, sep, escape, final=complete)
    opens, closes, _ = quoted_spans(arr, quote, sep, escape, final=complete)
    starts = np.concatenate(([0], ends + 1))
    starts = starts[starts < len(arr)]

    def record(at: np.ndarray) -> np.ndarray:  # the record of each offset
        return np.searchsorted(starts, at, side="right") - 1

    malformed = np.zeros(len(starts), dtype=bool)
    malformed[record(left_open)] = malformed[record(escaped)] = True
    malformed[record(closes[~ends_field(arr, closes + 1, sep)])] = True  # closed with text after it
    seps = np.flatnonzero(arr == ord(sep))
    fields = np.bincount(record(seps[~_within(seps, opens, closes)]), minlength=len(starts)) + 1
    malformed |= fields != fields[:1]
    if escape is None:  # a quote escaped outside quoted fields
        quotes = np.flatnonzero(arr == ord(quote))
        outside = ~_within(quotes, opens, closes, ends=True) & after_odd_backslashes(arr, quotes)
        malformed[record(quotes[outside])] = True
    first_line = np.searchsorted(newlines, starts)
    lines = np.diff(np.append(first_line, len(newlines) + int(len(arr) > 0 and arr[-1] != _NEWLINE)))
    return Reading(starts, lines, malformed)


def doubles_quotes(data: bytes, quote: str, sep: str) -> bool:
    """Whether the lines `data` (from a record's start) hold a quote doubled inside a
    quoted field, as RFC 4180 reads them (`"12"" pizza"`), which only an RFC 4180 writer
    writes: a backslash-escaping one writes `\\"` (and an empty text `""`, no quote inside)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    opens, closes, _ = quoted_spans(arr, quote, sep, final=False)
    return bool(_within(np.flatnonzero(arr == ord(quote)), opens, closes).any())


def escaped_anywhere(data: bytes, quote: str, sep: str, complete: bool = True) -> bool:
    """Whether the lines `data`, read with quotes escaped by a backslash, escape outside
    quoted fields too (`Quoting.ESCAPED_ANYWHERE`): more quotes there after an odd run of
    backslashes (`a\\"b`, Python's `csv`) than such runs before anything else (a lone
    backslash, `C:\\dir`, which Python's `csv` doubles, where Spark and R write it so)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    opens, closes, _ = quoted_spans(arr, quote, sep, ESCAPE, final=complete)
    quotes = np.flatnonzero(arr == ord(quote))
    escaped_quotes = ~_within(quotes, opens, closes, ends=True) & after_odd_backslashes(arr, quotes)
    backslashes = np.flatnonzero(arr == _BACKSLASH)
    after = backslashes[arr[np.minimum(backslashes + 1, len(arr) - 1)] != _BACKSLASH] + 1  # past each run
    lone = (after < len(arr)) & (arr[np.minimum(after, len(arr) - 1)] != ord(quote)) & ~_within(after, opens, closes)
    return int(escaped_quotes.sum()) > int((lone & after_odd_backslashes(arr, after)).sum())


def _within(at: np.ndarray, opens: np.ndarray, closes: np.ndarray, ends: bool = False) -> np.ndarray:
    """(len(at),) bool: whether each offset of `at` lies inside a quoted field (between
    its opening and closing quotes; with `ends`, those quotes too)."""
    if not len(opens):
        return np.zeros(len(at), dtype=bool)
    k = np.searchsorted(opens, at, side="right") - 1
    close = closes[np.maximum(k, 0)]
    return (k >= 0) & ((at <= close) if ends else (at < close)) & ((at > opens[np.maximum(k, 0)]) | ends)
