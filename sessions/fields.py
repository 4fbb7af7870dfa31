"""Polars expressions that turn raw record text into typed fields.

Everything here is vectorised, but the records of a quoted format that hold a quote
(or a CR, a NUL), which Python's `csv` splits one by one, as the formats promise.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from sessions.quoting import Quoting

_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"  # C0 but tab, LF and CR; DEL; C1 (U+0080..U+009F)
# Unicode's white space (what polars' strip_chars() strips) but the control characters
# among it (vertical tab, form feed): stripping those would hide them from the check.
SPACES = "\t\n\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
# What renders as nothing, by Unicode's own properties: White_Space (`\s`) and Default_Ignorable_Code_Point
# (DerivedCoreProperties.txt, 4,174 code points: a byte-order mark, zero-width space and joiners, a soft hyphen,
# variation selectors, the combining grapheme joiner, the Hangul fillers, tag characters), as polars' regular
# expressions (Rust's `regex` crate) read them.
IGNORABLE = r"\p{Default_Ignorable_Code_Point}"
NOTHING = rf"[\s{IGNORABLE}]"
# What `strip_spaces` strips around a text (`SPACES` and the ignorables), and the ignorables that select a form of
# the character before them, which stay after a visible one (356 code points): variation selectors (`❤\ufe0f` is
# an emoji, `❤` a text heart; Mongolian's) and the tag characters of emoji tag sequences (UTS #51: England's flag
# is `🏴` and six tags). A joiner after the last visible character joins nothing.
_STRIPPED = "".join(rf"\x{{{ord(c):X}}}" for c in SPACES) + IGNORABLE  # (inside a class's brackets)
_SELECTORS = r"[\p{Variation_Selector}\x{E0020}-\x{E007F}]"


def split_delimited(text: pl.Expr, sep: str, quote: str | None, quoting: Quoting = Quoting.DOUBLED) -> pl.Expr:
    """Split each record into its list of fields.

    Without a quote character this is a plain split (AOL, TSV). With one, each record
    is split by Python's `csv` reader (RFC 4180, not strict), so every field is what
    `csv` reads: a quoted field may hold the separator, newlines and doubled quotes; a
    quote inside an unquoted field is text (`12" pizza pan`); text after a closing
    quote stays in the field (`"best" pizza places` is `best pizza places`). Where
    `quoting` escapes a quote with a backslash, `csv`'s `escapechar` too, as
    `escapes_kept` says: `\\"` is a quote and `\\\\` a backslash (inside quoted fields, or
    anywhere: `Quoting`), a doubled quote a quote as before, and any other backslash text.
    """
    if quote is None:
        return text.str.split(sep)
    split = functools.partial(_csv_fields, sep=sep, quote=quote, quoting=quoting)
    return text.map_batches(split, return_dtype=pl.List(pl.String))


def escapes_kept(text: str, sep: str, quote: str, quoting: Quoting) -> str:
    """`text` for `csv` with `escapechar="\\"` to read as `quoting` escapes: `\\"` a quote
    and `\\\\` a backslash inside quoted fields (outside them too, `ESCAPED_ANYWHERE`);
    every other backslash text, doubled here, which `csv` reads as one (a lone one, as
    Spark and R write `C:\\dir`, that `csv` would drop: `C:dir`). `text` itself where
    `quoting` escapes nothing. Quoted fields are told as `quoting.quoted_spans` tells
    them, line ends ending a record outside them."""
    if quoting.escape is None or quoting.escape not in text:
        return text
    if quoting is Quoting.ESCAPED_ANYWHERE:
        return _ESCAPES.sub(_keep_lone, text)
    kept, inside, start, i = [], False, True, 0
    while i < len(text):
        c = text[i]
        if inside and c == "\\" and text[i + 1 : i + 2] in ("\\", quote):
            kept.append(text[i : i + 2])  # an escape, kept
            i += 2
            continue
        if inside and c == quote and text[i + 1 : i + 2] == quote:
            kept.append(c + c)  # a doubled quote
            i += 2
            continue
        if c == quote and (inside or start):
            inside = not inside
        kept.append("\\\\" if c == "\\" else c)  # a backslash that escapes nothing: text
        start = not inside and c in (sep, "\n", "\r")
        i += 1
    return "".join(kept)


_ESCAPES = re.compile(r'\\[\\"]|\\')  # left to right: an escaped quote or backslash, else a lone backslash


def _keep_lone(match: re.Match[str]) -> str:
    return match.group() if len(match.group()) == 2 else "\\\\"


def _csv_fields(texts: pl.Series, *, sep: str, quote: str, quoting: Quoting) -> pl.Series:
    """Each record's fields as `csv` reads them: a record without a quote, a carriage
    return or a NUL (nor a backslash, where `quoting` escapes) (nearly all), and not empty, is
    split as is, which is what `csv` does with it; the rest go through `csv` itself, with
    their CRs outside quotes kept as text. The lists are built through Arrow (polars' own
    constructor makes a Series of each record: 7 of 9.6 s for 344,477 records)."""
    specials = re.escape(quote + (quoting.escape or ""))
    special = (texts.str.contains(f"[{specials}\r\x00]") | (texts == "")).fill_null(False)  # csv: "" -> []
    plain = texts.str.split(sep)
    if not special.any():
        return plain
    at = special.arg_true()
    records = texts.gather(at).to_list()
    longest = max(map(len, records))
    if longest > csv.field_size_limit():  # (131,072 by default: a longer field was read as a record of one field)
        csv.field_size_limit(longest)  # raised, never lowered: readers in other threads may be using it

    def fields(record: str) -> list[str]:
        # A CR outside quotes is text, as written: `csv` would stop at one inside a field ("new-line character
        # seen") and drop those that end the record (`a,b\r`, of a line `a,b\r\r\n`), as a TSV's or an AOL
        # line's are not. Inside quotes it is a cell's text for `csv` too.
        stand_in = _stand_in(record) if "\r" in record else None
        record = escapes_kept(record.replace("\r", stand_in) if stand_in else record, sep, quote, quoting)
        try:
            read = next(csv.reader([record], delimiter=sep, quotechar=quote, escapechar=quoting.escape), [""])
        except csv.Error:
            return [record]
        return [field.replace(stand_in, "\r") for field in read] if stand_in else read

    parsed = [fields(record) for record in records]  # no record is null: `special` is false for those
    offsets = np.cumsum([0, *map(len, parsed)], dtype=np.int64)
    values = pa.array([f for row in parsed for f in row], type=pa.large_string())
    lists = pl.Series(pa.LargeListArray.from_arrays(pa.array(offsets), values)).cast(pl.List(pl.String))
    index = pl.Series(range(len(texts)), dtype=pl.Int64)
    rows = pl.DataFrame({"i": index.filter(~special), "fields": plain.filter(~special)})
    rows = pl.concat([rows, pl.DataFrame({"i": at.cast(pl.Int64), "fields": lists})]).sort("i")
    return rows["fields"].alias(texts.name)


def _stand_in(record: str) -> str | None:
    """A character for a CR's place while `csv` splits `record`: the first of Unicode's
    private-use area (U+E000..U+F8FF) that `record` does not hold (icon fonts' and some
    emoji's texts use them too); None for a record that holds all 6,400."""
    return next((c for c in map(chr, range(0xE000, 0xF900)) if c not in record), None)


# A number in float notation, as JSON, Python, pandas, Java and R write one: a fraction, an exponent or both
# (`599381.0`, `1.021164E7`, `1e+06`, `1e+17`); not `+5`, `007.0`, `1.`, `.5`, `inf` or `NaN`, nor an exponent
# without a fraction or a sign (`1e3`, `2e5`): no such writer writes one (Python `1000.0`, R `1000`, Java
# `1000.0`), where hexadecimal ids do (a breaker's `1e3` was told as pandas' float)
FLOAT_NOTATION = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-][0-9]+)$"
_MAY_BE_FLOAT = "[.eE]"  # what a text in float notation holds (`may_hold_float`)


def is_whole(value: pl.Expr) -> pl.Expr:
    """True where a float is a whole number below 2**53 in size, where a double holds
    every integer (599381.0, 5.99381e5); false for any other number, NaN and the
    infinities; null where `value` is null."""
    return value.is_finite() & (value == value.floor()) & (value.abs() < 2.0**53)


def integer_text(text: pl.Expr) -> pl.Expr:
    """The text of a field that holds an integer by definition (a built-in format's
    user id, click rank, mission or session number, epoch seconds), its white space
    already stripped: where it is written in float notation (`FLOAT_NOTATION`) and is
    a whole number below 2**53 (`is_whole_float`), its integer's digits (`1019251.0`,
    `1.019251E6` and `1019251` are one user; a rank `3.0` is 3), as a typed table's
    whole floats are read (`sessions.formats.columnar.float_text`): pandas writes an
    integer column with a missing value as floats, Spark and Java a double from 10^7
    on as `1.021164E7`, R a round number as `1e+06`. The text is read as a double, as
    those writers read it back. Any other text stays as written: a fraction (`3.5`,
    which a rank's check rejects), a float from 2**53 on, whose digits past a double's
    are lost (`1.0234567890123457e+18`), an integer, a word, an empty field, null.
    A reader that holds the column can skip it where `may_hold_float` says no."""
    digits = text.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False).cast(pl.String)
    return pl.when(is_whole_float(text)).then(digits).otherwise(text)


def is_whole_float(text: pl.Expr) -> pl.Expr:
    """True where `integer_text` reads the text as an integer it does not show as written
    (`1019251.0`, `1.019251E6`); false elsewhere, nulls included."""
    return is_whole(_float_value(text)).fill_null(False)


def _float_value(text: pl.Expr) -> pl.Expr:
    """The number a text in float notation (`FLOAT_NOTATION`) is; null for any other text."""
    return pl.when(text.str.contains(FLOAT_NOTATION)).then(text.cast(pl.Float64, strict=False))


def is_float_id(text: pl.Expr) -> pl.Expr:
    """True where an id's text is in float notation (`FLOAT_NOTATION`) and stands for a
    whole number: below 2**53 one `integer_text` would read as its integer (`599381.0`),
    from 2**53 on one whose digits past a double's 15 to 17 are lost
    (`1.0612563642406546e+17`, a Discord user id as pandas writes it with a missing
    value: no reader can give its integer back). False elsewhere, nulls included."""
    number = _float_value(text)
    return (is_whole(number) | (number.is_finite() & (number.abs() >= 2.0**53))).fill_null(False)


def may_hold_float(values: pl.Series) -> bool:
    """Whether a column of text may hold a number in float notation: a `.`, `e` or `E`
    anywhere in it. A column without any (an AOL file's ids and ranks) is the same
    under `integer_text`, which a reader then need not evaluate (a look at the column as
    one text: 1.4 ms for 217,577 ids, where `integer_text` takes about 13)."""
    return bool(values.str.join("").str.contains(_MAY_BE_FLOAT).item())


def has_control_chars(text: pl.Expr) -> pl.Expr:
    """True where the text holds NUL or another control character: C0 (tab, CR and LF
    excepted), DEL or C1 (U+0080..U+009F, NEL among them: mojibake or binary junk)."""
    return text.str.contains(_CONTROL)


def strip_spaces(text: pl.Expr) -> pl.Expr:
    """The text without what renders as nothing around it: white space (`SPACES`) and
    Default_Ignorable code points (`IGNORABLE`: `\\ufeff123`, `123\\u200b` and
    `\\u3164123` are `123`), but for the selectors after the last visible character,
    which choose its form (`_SELECTORS`: `❤\\ufe0f` keeps its variation selector, a flag
    its tags: stripped, England, Scotland and Wales would be one `🏴`). Those inside a
    text stay: they join emoji (`👨\\u200d👩`) and shape Persian and Indic words (ZWNJ,
    ZWJ), so that two ids that differ there may be two people. A control character
    around it stays, for `has_control_chars` to find (a JSON user `"u\\f"`: stripped to
    `u` before, and read as a user where a CSV's raw bytes were rejected). A text of
    nothing but these is the empty text, as `is_blank` finds it blank."""
    return text.map_batches(_strip_spaces, return_dtype=pl.String, is_elementwise=True)


def _strip_spaces(texts: pl.Series) -> pl.Series:
    """`strip_spaces` of one block's column: `SPACES` stripped, then the ignorables of
    the texts that begin or end with one, nearly none (and none in a column of ASCII
    text, such as an AOL file's ids: told by its length in bytes and in characters, in
    a fraction of the time of a look at each text's ends)."""
    texts = texts.str.strip_chars(SPACES)
    if texts.str.len_bytes().sum() == texts.str.len_chars().sum():
        return texts
    edge = texts.str.contains(rf"^{IGNORABLE}|{IGNORABLE}$").fill_null(False)
    if not edge.any():
        return texts
    at = edge.arg_true()
    stripped = (
        texts.gather(at)
        .str.replace(rf"^[{_STRIPPED}]+", "")  # then: up to the last character kept and the selectors after it
        .str.replace(rf"(?s)^(.*[^{_STRIPPED}]{_SELECTORS}*)[[{_STRIPPED}]--{_SELECTORS}][{_STRIPPED}]*$", "${1}")
    )
    return texts.scatter(at, stripped)


def is_blank(text: pl.Expr) -> pl.Expr:
    """True where the text is missing, or holds nothing visible: only white space and
    Unicode's Default_Ignorable code points (`NOTHING`: a byte-order mark, zero-width
    space and joiners, a soft hyphen, a variation selector, the combining grapheme
    joiner, the Hangul fillers that make a "blank" name, tag characters), which a text
    shows as nothing. A visible character beside them is text (`❤\\ufe0f`, `👨\\u200d👩`)."""
    return text.is_null() | text.str.contains(rf"^{NOTHING}*$")


def first_reason(checks: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The reason of the first check that holds, null when none does."""
    if not checks:
        return pl.lit(None, dtype=pl.String)
    (cond, reason), *rest = checks
    chain = pl.when(cond).then(pl.lit(str(reason)))
    for cond, reason in rest:
        chain = chain.when(cond).then(pl.lit(str(reason)))
    return chain.otherwise(pl.lit(None, dtype=pl.String))
