"""Time stamps in the forms logs really write them, to UTC microseconds.

One function, `to_utc`, turns a time column of any type into `schema.TIMESTAMP`
(UTC, microseconds), the same way for every format and both engines, so that one
value gives one `ts` whether it comes from CSV, JSON lines or Parquet:

- text, ISO 8601 / RFC 3339 as exporters write it: `T` or a space between date and
  time, seconds optional, fractions to nanoseconds (kept to microseconds, the rest
  cut), an offset `Z`, `+00`, `+0100`, `+01:00` (Postgres writes `+00`), ` UTC` or
  ` GMT`, or none; a date alone is its midnight; the basic format
  (`20230301T100000Z`) too; not week dates, ordinal dates or `24:00`;
- text, RFC 2822 (`Wed, 01 Mar 2023 10:00:00 +0000`, e-mail and HTTP headers);
- epoch numbers, integers or floats, as numbers or text: seconds, milliseconds,
  microseconds or nanoseconds by magnitude (`TimeOptions.unit` "auto": the unit under
  which the value falls in 1990..2100; the four ranges do not overlap), or the unit
  given; floats are rounded to the microsecond;
- date-times of a typed column (Parquet, Arrow): aware ones converted, naive ones
  read as wall times of the zone below; dates are their midnight;
- with `TimeOptions.format` (`--time-format`), text is read with that strptime
  format and nothing else is tried; a format must read a whole date, from its year
  down (`missing_date`: `%H:%M:%S` alone would put every time on 0001-01-01).
  polars reads it with chrono, whose directives are Python's but for two: `%f` is
  read as Python reads it, a fraction of a second after a `.` (`%S.%f`: `.5` is half
  a second; chrono alone would read 5 nanoseconds), and `%y` puts 69 in 2069
  (Python: 1969; 00-68 and 70-99 agree).

No text form takes a second of 60 (`10:00:60`): Python's and pandas' readers refuse
it, where chrono reads it as a leap second and polars moves it to the next minute.

A value without an offset is a wall time of `TimeOptions.timezone` (IANA name,
default UTC), DST-aware: a wall time that does not exist (the hour skipped when
clocks go forward) is not a time (the record is rejected as `bad_time`); one that
exists twice (the hour repeated when clocks go back) is first read as its earlier
instant, and `RepeatedHour` then settles it by the order of the file.

A value that none of these read is null, and its record is rejected as `bad_time`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

import polars as pl

from sessions.schema import TIMESTAMP

if TYPE_CHECKING:
    from sessions.formats.base import Parsed

TimeUnit = Literal["auto", "s", "ms", "us", "ns"]
_US_PER_UNIT: dict[str, float] = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
# Plausible Unix epochs in seconds, 1990-01-01 .. 2100-01-01 (AOL is 2006, prompt logs
# 2022+); in each finer unit the range is a thousand times further out, so a value's
# magnitude tells its unit.
_EPOCH_SECONDS = (631_152_000, 4_102_444_800)

_ISO = (
    r"^\s*(?<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?<hh>\d{2}):(?<mm>\d{2})(?::(?<ss>\d{2})(?:[.,](?<frac>\d{1,9}))?)?)?"
    r"\s*(?<zone>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
# ISO 8601's basic format (`20230301T100000Z`, `20230301T100000.25+0100`): made extended first.
_ISO_BASIC = r"^\s*(\d{4})(\d{2})(\d{2})[Tt](\d{2})(\d{2})(\d{2})"
_RFC2822 = (
    r"^\s*(?:[A-Za-z]{3},\s*)?(?<day>\d{1,2})\s+(?<mon>[A-Za-z]{3})\s+(?<year>\d{4})\s+"
    r"(?<hh>\d{2}):(?<mm>\d{2})(?::(?<ss>\d{2}))?\s*(?<zone>UT|UTC|GMT|Z|[+-]\d{4}|[ECMP][SD]T)?\s*$"
)
_EPOCH_TEXT = r"^\s*[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?\s*$"
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}  # fmt: skip
# RFC 2822 section 4.3: the obsolete North American zone names, in minutes east of UTC.
_RFC2822_ZONES = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300,
                  "MST": -420, "MDT": -360, "PST": -480, "PDT": -420}  # fmt: skip
_NAIVE = pl.Datetime("us")
# Microseconds since the epoch of 0001-01-01 and 9999-12-31 23:59:59.999999: what a
# datetime holds, so every `ts` reads back in Python too.
_MIN_US, _MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999


@dataclass(frozen=True)
class TimeOptions:
    """How a log's time values are read (`sessions.formats.ReadOptions` holds one).

    Attributes:
        format: a strptime format for text times (e.g. `%d/%m/%Y %H:%M`; `%z` reads
            an offset; `%S.%f` seconds and their fraction; chrono's own directives,
            as polars takes them, too: see the module docstring); None: the forms of
            the module docstring.
        unit: the unit of epoch numbers, or "auto" (by magnitude).
        timezone: the IANA zone of wall times written without an offset.

    Raises ValueError, one line, for an unknown zone, a format polars cannot read
    (`%f` anywhere but after a `.`, `%I` without `%p`, ...) or one without a whole date
    (`missing_date`: no year, or a time of day without its day).
    """

    format: str | None = None
    unit: TimeUnit = "auto"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
            pl.Series([datetime(2000, 1, 1)]).dt.replace_time_zone(self.timezone)  # polars' zones, not only Python's
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, pl.exceptions.PolarsError):
            raise ValueError(f"--timezone {self.timezone!r}: not a time zone (an IANA name: Europe/Berlin)") from None
        if self.unit not in _US_PER_UNIT and self.unit != "auto":
            raise ValueError(f"--time-unit {self.unit!r}: choose auto, s, ms, us or ns")
        if self.format is not None:
            if not self.format.strip() or "%" not in self.format:
                raise ValueError(f"--time-format {self.format!r}: no strptime directive (%Y, %m, %d, %H, ...)")
            if "%Z" in self.format:
                raise ValueError(f"--time-format {self.format!r}: %Z (a zone's name) is not read; use %z for an "
                                 "offset, or --timezone for the zone of every time")  # fmt: skip
            unknown = [d for d, colons, letter in _DIRECTIVE.findall(self.format)
                       if letter not in _DIRECTIVES or (colons and letter != "z")]  # fmt: skip
            if unknown:  # polars reads every time as null with them, as if the times were bad
                what = f"{unknown[0]} is not a strptime directive" if unknown[0] != "%" else "a % ends it"
                raise ValueError(f"--time-format {self.format!r}: {what}")
            fmt = chrono_format(self.format)  # ValueError for %f anywhere but after a '.'
            try:
                pl.Series(["2000-01-01"]).str.strptime(_NAIVE, fmt, strict=False)
            except pl.exceptions.PolarsError as err:
                why = str(err).strip().splitlines()[0].rstrip(".")  # polars adds the expression on more lines
                raise ValueError(f"--time-format {self.format!r}: not a strptime format ({why})") from None
            if (lacks := missing_date(self.format)) is not None:
                raise ValueError(f"--time-format {self.format!r}: {lacks}; {WHOLE_DATE_ADVICE}")


# A directive of a strptime format (with chrono's padding, width and colon modifiers:
# %-d, %3f, %.f, %:z), its colons and its letter ('' for a % that ends the format); the
# letters chrono, which polars reads times with, knows.
_DIRECTIVE = re.compile(r"(%[-_0]?\.?\d?(:{0,3})(.?))")
_DIRECTIVES = frozenset("aAbBcCdDeFfgGhHIjklmMnpPrRsStTuUvVwWxXyYzZ%+")
# The directives that read a time's seconds (`%S`, and `%T`, `%X`, `%r`, which hold it),
# each with its seconds read only where they are written 60: a literal 6, then the 0
# read as the second (chrono reads one digit as well as two).
_WITH_SECONDS = {"S": "6%S", "T": "%H:%M:6%S", "X": "%H:%M:6%S", "r": "%I:%M:6%S %p"}


# What each directive reads of a date and a time, as chrono reads it; a directive that
# stands for several (chrono's %c is `%a %b %e %H:%M:%S %Y`, %F `%Y-%m-%d`, %D and %x
# `%m/%d/%y`, %v `%e-%b-%Y`, %+ ISO 8601 whole, %T and %X `%H:%M:%S`, %R `%H:%M`, %r
# `%I:%M:%S %p`) reads each of theirs; %s, an epoch, a whole instant. %G and %g, the
# year of an ISO week, read with %V alone, %C with %y alone (else chrono reads nothing).
_READS = {
    **dict.fromkeys("YyGg", "year"), **dict.fromkeys("mbBh", "month"), **dict.fromkeys("de", "day"),
    "j": "yearday", **dict.fromkeys("UWV", "week"), **dict.fromkeys("aAuw", "weekday"),
    **dict.fromkeys("HkIl", "hour"), "M": "minute", "S": "second", "f": "second",
    "c": "weekday month day hour minute second year", "F": "year month day", "D": "month day year",
    "x": "month day year", "v": "day month year", "+": "year month day hour minute second",
    "T": "hour minute second", "X": "hour minute second", "R": "hour minute", "r": "hour minute second",
    "s": "instant",
}  # fmt: skip
WHOLE_DATE_ADVICE = (
    "put the whole date in each time (e.g. 2006-03-01 10:00:01, with --time-format '%Y-%m-%d %H:%M:%S'; "
    "a date held in the file's name alone, as a SogouQ log's, joined to each time first)"
)


def missing_date(fmt: str) -> str | None:
    """What the strptime format `fmt` lacks of a date, in words, or None when it reads
    one: a year (%Y, %y, or %G of an ISO week), and for anything finer the day it falls
    on: a month and its day (%m or %b, and %d), a day of the year (%j) or a week and its
    weekday (%U, %W or %V, and %a or %u); or an epoch (%s). A format that stops at the
    year or the month (`%Y-%m`) reads each time as that year's or month's first instant:
    what the text holds. One that skips a part reads it as chrono's default: a time
    without a year is in year 1 (`%H:%M:%S`, syslog's `%b %d %H:%M:%S`), a day without
    its month in January (`%Y-%d`), a time of day without its day on the first of the
    month (`%Y-%m %H:%M`), so that a log of many days would be folded onto one, silently."""
    parts = {part for *_, letter in _DIRECTIVE.findall(fmt) for part in _READS.get(letter, "").split()}
    if "instant" in parts:
        return None
    day = {"month", "day"} <= parts or "yearday" in parts or {"week", "weekday"} <= parts
    clock = bool(parts & {"hour", "minute", "second"})
    if "year" not in parts:
        if not parts - {"hour", "minute", "second"}:
            return "it reads no date, only a time of day, and every time would be read on 0001-01-01"
        return "it reads no year (%Y or %y), and every time would be read in the year 1"
    if "day" in parts and "month" not in parts and not day:
        return "it reads a day of the month (%d) without its month (%m or %b), which would be read as January"
    if clock and not day:
        return ("it reads a time of day without its day (%d with %m or %b, or %j), and every time would be read "
                "on its month's first day (January's, where no month is read)")  # fmt: skip
    return None


def chrono_format(fmt: str) -> str:
    """A strptime format as chrono, which polars parses times with, reads it the way
    Python's `strptime` does: `.%f` (a fraction of a second of 1 to 6 digits after a
    dot; chrono's `%f` is a count of nanoseconds, so `.5` would be 5 ns) becomes
    chrono's `%.f` (a dot and 1 to 9 digits, or nothing). Every other directive is
    left as written, chrono's own (`%.3f`, `%:z`, `%-d`) included. ValueError, one line,
    for a `%f` that does not follow a `.`, which chrono cannot read as a fraction."""
    out, last = [], 0
    for match in _DIRECTIVE.finditer(fmt):
        out.append(fmt[last : match.start()])
        last = match.end()
        if match.group(0) != "%f":
            out.append(match.group(0))
        elif out[-1].endswith("."):
            out[-1] = out[-1][:-1]
            out.append("%.f")
        else:
            raise ValueError(f"--time-format {fmt!r}: %f (a fraction of a second) is read after a '.' only, "
                             "as in %S.%f")  # fmt: skip
    return "".join([*out, fmt[last:]])


def _leap_format(fmt: str) -> str | None:
    """`fmt` (chrono's) read only where a time's seconds are written 60 (`_WITH_SECONDS`;
    the literal 60 would do, but chrono refuses a fraction of a second without its
    second); None when it reads no seconds."""
    out, last, found = [], 0, False
    for match in _DIRECTIVE.finditer(fmt):
        out.append(fmt[last : match.start()])
        last = match.end()
        directive, _, letter = match.groups()
        plain = directive in (f"%{letter}", *(f"%{pad}{letter}" for pad in "-_0"))  # no width, no colons
        seconds = _WITH_SECONDS.get(letter) if plain else None
        found = found or seconds is not None
        out.append(seconds if seconds is not None else directive)
    return "".join([*out, fmt[last:]]) if found else None


def _strptime(text: pl.Expr, dtype: pl.Datetime, fmt: str) -> pl.Expr:
    """Text times read with strptime format `fmt` (chrono's) as `dtype`, null where
    one does not read, or reads only as a leap second: chrono takes a second of 60
    at any minute, and polars turns it into the next minute's first second (`10:00:60`
    into 10:01:00), a time the text does not hold; Python's and pandas' readers refuse
    it. Such a value reads as second 0 of a minute, so only those are read again, with
    `_leap_format`: a value that it reads has its seconds written 60."""
    parsed = text.str.strptime(dtype, fmt, strict=False, cache=False)  # a log's times are nearly all distinct
    leap = _leap_format(fmt)
    if leap is None:
        return parsed

    def no_leap_second(both: list[pl.Series]) -> pl.Series:
        values, texts = both
        rows = (values.dt.second() == 0).fill_null(False).arg_true()
        if rows.is_empty():
            return values
        leaped = texts.gather(rows).str.strptime(dtype, leap, strict=False, cache=False).is_not_null()
        return values.scatter(rows.filter(leaped), None) if leaped.any() else values

    return pl.map_batches([parsed, text], no_leap_second, return_dtype=dtype, is_elementwise=True)


UTC_TIMES = TimeOptions()  # the defaults: the forms above, unit by magnitude, naive times in UTC


def to_utc(expr: pl.Expr, dtype: pl.DataType, options: TimeOptions = UTC_TIMES, known: str | None = None) -> pl.Expr:
    """A time column of any dtype as `TIMESTAMP` (UTC microseconds); null where a value
    is not a time.

    `dtype` is the column's type (text for CSV and JSON lines, any for Parquet).
    `known`: the format's own strptime format for text (AOL's), read alone and fast
    unless `options.format` is given.
    """
    return _held(_to_utc(expr, dtype, options, known))


def _held(ts: pl.Expr) -> pl.Expr:
    """Null where a time is outside the years a Python datetime holds (1..9999), so that
    every `ts` reads back anywhere."""
    us = ts.dt.epoch("us")
    return pl.when(us.is_between(_MIN_US, _MAX_US)).then(ts)


def held_years(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Whether each value of a `Datetime` or `Date` column falls in the years a Python
    datetime holds (1..9999), compared by its stored integer (a time stamp in its unit,
    a date in days): a Java writer's `Long.MAX_VALUE` milliseconds is no date polars can
    cast or even print (it panics). True for a column of any other type."""
    if isinstance(dtype, pl.Datetime):
        per_us = _US_PER_UNIT[dtype.time_unit or "us"]
        lo, hi = max(int(_MIN_US // per_us), -(2**63)), min(int(_MAX_US // per_us), 2**63 - 1)  # ns: every int64
    elif isinstance(dtype, pl.Date):
        lo, hi = _MIN_US // 86_400_000_000, _MAX_US // 86_400_000_000
    else:
        return pl.lit(True)
    return expr.cast(pl.Int64).is_between(lo, hi).fill_null(True)


def _to_utc(expr: pl.Expr, dtype: pl.DataType, options: TimeOptions, known: str | None) -> pl.Expr:
    if isinstance(dtype, pl.Datetime | pl.Date):  # past the years 1..9999: null, as `_held` makes them
        expr = pl.when(held_years(expr, dtype)).then(expr)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return _localize(expr.dt.cast_time_unit("us"), options.timezone)
    if isinstance(dtype, pl.Date):  # its first instant: midnight, or 01:00 where clocks skip midnight
        midnight = expr.cast(_NAIVE)
        return pl.coalesce(_localize(midnight, options.timezone),
                           _localize(midnight + pl.duration(hours=1), options.timezone))  # fmt: skip
    if dtype.is_numeric():
        exact = dtype.is_integer() or (isinstance(dtype, pl.Decimal) and dtype.scale == 0)
        return epoch_to_utc(expr, options.unit, integer=exact)
    text = expr.cast(pl.String)
    if options.format is not None or known is not None:
        return _with_format(text, options.format or known, options.timezone)  # type: ignore[arg-type]
    plain = lambda t, fmt: _with_format(t, fmt, options.timezone)  # noqa: E731
    return _by_form(text, TIMESTAMP, plain=plain, general=lambda t: _any_form(t, options))


def _any_form(text: pl.Expr, options: TimeOptions) -> pl.Expr:
    """Text times of every form the module lists (`to_utc` without a format)."""
    return pl.coalesce(_iso(text, options.timezone), _rfc2822(text, options.timezone), _epoch_text(text, options.unit))


def _any_form_naive(text: pl.Expr) -> pl.Expr:
    """Whether text times of any form are written without an offset (`is_naive`)."""
    iso, rfc = _iso_groups(text), text.str.extract_groups(_RFC2822)
    iso_naive = iso.struct.field("date").is_not_null() & iso.struct.field("zone").is_null()
    rfc_naive = rfc.struct.field("day").is_not_null() & rfc.struct.field("zone").is_null()
    return (iso_naive | rfc_naive).fill_null(False)


# The forms nearly every exporter writes (pandas, Postgres, Python's str(datetime)),
# each a pattern with the strptime format that reads exactly what the general reader
# reads of it (a wall time without an offset); `_by_form` reads them so.
_PLAIN_FORMS = {
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$": "%Y-%m-%d %H:%M:%S",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$": "%Y-%m-%dT%H:%M:%S",
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{1,9}$": "%Y-%m-%d %H:%M:%S%.f",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}$": "%Y-%m-%dT%H:%M:%S%.f",
}


def _by_form(
    text: pl.Expr,
    dtype: pl.DataType,
    *,
    plain: Callable[[pl.Expr, str], pl.Expr],
    general: Callable[[pl.Expr], pl.Expr],
) -> pl.Expr:
    """`general(text)`, but each value of a plain form (`_PLAIN_FORMS`) read by
    `plain(text, its strptime format)`, which gives the same for it: the general
    reader tries every form on every value (about 10 µs a value; 30 ns for one
    strptime), and a column is nearly always of one plain form."""

    def read(values: pl.Series) -> pl.Series:
        rest = values.alias("t").to_frame().with_row_index("i")
        parts = []
        for pattern, fmt in _PLAIN_FORMS.items():
            if rest.is_empty():
                break
            hit = rest["t"].str.contains(pattern).fill_null(False)
            if hit.any():
                parts.append(rest.filter(hit).select("i", v=plain(pl.col("t"), fmt)))
                rest = rest.filter(~hit)
        if not rest.is_empty():
            parts.append(rest.select("i", v=general(pl.col("t"))))
        if not parts:
            return pl.Series(values.name, [], dtype=dtype)
        read_ = pl.concat([part.with_columns(pl.col("v").cast(dtype)) for part in parts]).sort("i")
        return read_["v"].alias(values.name)

    return text.map_batches(read, return_dtype=dtype, is_elementwise=True)


def is_naive(expr: pl.Expr, dtype: pl.DataType, options: TimeOptions = UTC_TIMES, known: str | None = None) -> pl.Expr:
    """Whether each value of a time column is a wall time without an offset of its own
    (the values `timezone` applies to and `RepeatedHour` may settle): a naive
    date-time or a date of a typed column; text read without an offset; never an
    epoch number or an aware date-time."""
    if isinstance(dtype, pl.Datetime):
        return pl.lit(dtype.time_zone is None)
    if isinstance(dtype, pl.Date):
        return pl.lit(True)
    if dtype.is_numeric():
        return pl.lit(False)
    text = expr.cast(pl.String)
    fmt = options.format or known
    if fmt is not None:
        return pl.lit(not _aware_format(fmt))
    return _by_form(text, pl.Boolean(), plain=lambda t, fmt: pl.lit(True), general=_any_form_naive)


def epoch_to_utc(
    expr: pl.Expr, unit: TimeUnit = "auto", *, integer: bool = True, fraction_ns: pl.Expr | None = None
) -> pl.Expr:
    """Unix epoch numbers as `TIMESTAMP`: in `unit`, or with "auto" in the unit under which
    the value falls in 1990..2100 (null when none does). `integer`: the values are
    integers, read exactly (nanoseconds cut to microseconds); else floats, rounded to
    the microsecond. `fraction_ns`: with integers, a fraction of the unit (in
    billionths) to add, cut to the microsecond (decimal text)."""
    x = expr.cast(pl.Int64 if integer else pl.Float64, strict=False)

    def micros(u: str) -> pl.Expr:
        per = _US_PER_UNIT[u]
        if integer:
            us = x // 1000 if u == "ns" else x * int(per)
            if fraction_ns is not None:  # a negative epoch's fraction counts back
                part = (fraction_ns * int(per) // 1_000_000_000) if u != "ns" else pl.lit(0)
                us = us + pl.when(x < 0).then(-part).otherwise(part)
            return us
        return (x * per).round(0).cast(pl.Int64, strict=False)

    if unit != "auto":  # as the user says, within the years a datetime holds (1..9999)
        holds = (x.cast(pl.Float64) * _US_PER_UNIT[unit]).is_between(_MIN_US, _MAX_US)  # before int64 could wrap
        us = pl.when(holds).then(micros(unit))
    else:
        lo, hi = _EPOCH_SECONDS
        magnitude = x  # 1990..2100: never negative
        chain = pl.when(magnitude.is_between(lo, hi)).then(micros("s"))
        for u, scale in (("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)):
            chain = chain.when(magnitude.is_between(lo * scale, hi * scale)).then(micros(u))
        us = chain.otherwise(None)
    return pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC").cast(TIMESTAMP)


def _epoch_text(text: pl.Expr, unit: TimeUnit) -> pl.Expr:
    """Epoch numbers written as text: integers exactly; a decimal fraction cut to the
    microsecond as ISO fractions are (read digit by digit, never through a float);
    exponents through a float."""
    number = pl.when(text.str.contains(_EPOCH_TEXT)).then(text.str.strip_chars())
    parts = number.str.extract_groups(r"^([+-]?\d+)\.(\d*)$")
    whole, digits = parts.struct.field("1"), parts.struct.field("2")
    # the fraction as nanoseconds of the unit: 9 digits, padded or cut
    fraction = digits.str.pad_end(9, "0").str.slice(0, 9).cast(pl.Int64, strict=False)
    decimal = epoch_to_utc(whole, unit, integer=True, fraction_ns=fraction)
    return pl.coalesce(epoch_to_utc(number, unit, integer=True), decimal, epoch_to_utc(number, unit, integer=False))


def _iso_groups(text: pl.Expr) -> pl.Expr:
    """The parts of ISO 8601 text (`_ISO`'s groups), the basic format made extended first."""
    return text.str.replace(_ISO_BASIC, "${1}-${2}-${3}T${4}:${5}:${6}").str.extract_groups(_ISO)


def _iso(text: pl.Expr, timezone: str) -> pl.Expr:
    g = _iso_groups(text)
    field_ = g.struct.field
    wall = pl.concat_str(
        field_("date"),
        pl.lit("T"),
        field_("hh").fill_null("00"),
        pl.lit(":"),
        field_("mm").fill_null("00"),
        pl.lit(":"),
        field_("ss").fill_null("00"),
        pl.lit("."),
        field_("frac").fill_null("0"),
    )
    return _at_offset(_strptime(wall, _NAIVE, "%Y-%m-%dT%H:%M:%S%.f"), _iso_offset_minutes(field_("zone")), timezone)


def _iso_offset_minutes(zone: pl.Expr) -> pl.Expr:
    """Minutes east of UTC of a written zone; null for none, -100,000 for one that cannot
    be (hours over 23, minutes over 59), which `_at_offset` turns into no time."""
    digits = zone.str.replace(":", "", literal=True)
    return _signed_offset(zone, digits.str.slice(1, 2), digits.str.slice(3, 2).fill_null("0"), numeric_zone=0)


_BAD_OFFSET = -100_000


def _signed_offset(zone: pl.Expr, hh: pl.Expr, mm: pl.Expr, numeric_zone: int | pl.Expr | None) -> pl.Expr:
    hours, minutes = hh.cast(pl.Int32, strict=False), mm.cast(pl.Int32, strict=False).fill_null(0)  # "+00"
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    valid = (hours <= 23) & (minutes <= 59)
    numeric = pl.when(valid).then(sign * (hours * 60 + minutes)).otherwise(_BAD_OFFSET)
    return pl.when(zone.str.contains(r"^[+-]")).then(numeric).when(zone.is_not_null()).then(numeric_zone)


def _rfc2822(text: pl.Expr, timezone: str) -> pl.Expr:
    g = text.str.extract_groups(_RFC2822)
    field_ = g.struct.field
    month = field_("mon").str.to_lowercase().replace_strict(_MONTHS, default=None)
    wall = pl.concat_str(
        field_("year"),
        pl.lit("-"),
        month,
        pl.lit("-"),
        field_("day").str.zfill(2),
        pl.lit("T"),
        field_("hh"),
        pl.lit(":"),
        field_("mm"),
        pl.lit(":"),
        field_("ss").fill_null("00"),
    )
    wall = _strptime(wall, _NAIVE, "%Y-%m-%dT%H:%M:%S")
    zone = field_("zone")
    named = zone.replace_strict(_RFC2822_ZONES, default=None, return_dtype=pl.Int32)
    return _at_offset(wall, _signed_offset(zone, zone.str.slice(1, 2), zone.str.slice(3, 2), named), timezone)


def _aware_format(fmt: str) -> bool:
    """Whether values read with strptime format `fmt` carry their own offset: `%z` and its
    variants, `%+` (ISO 8601 with offset) and `%s` (epoch seconds)."""
    return any(z in fmt for z in ("%z", "%:z", "%#z", "%::z", "%+", "%s"))


def _with_format(text: pl.Expr, fmt: str, timezone: str) -> pl.Expr:
    fmt = chrono_format(fmt)
    if _aware_format(fmt):
        return _strptime(text, TIMESTAMP, fmt)
    return _localize(_strptime(text, _NAIVE, fmt), timezone)


def _at_offset(wall: pl.Expr, offset_minutes: pl.Expr, timezone: str) -> pl.Expr:
    """Wall times with their offset in minutes east of UTC (null: none written)."""
    aware = (wall - pl.duration(minutes=offset_minutes)).dt.replace_time_zone("UTC")
    local = _localize(wall, timezone)
    return pl.when(offset_minutes == _BAD_OFFSET).then(None).when(offset_minutes.is_not_null()).then(aware).otherwise(
        local).cast(TIMESTAMP)  # fmt: skip


def _localize(wall: pl.Expr, timezone: str, ambiguous: Literal["earliest", "latest"] = "earliest") -> pl.Expr:
    """Naive wall times of `timezone` as UTC: null in the hour clocks skip, the earlier
    instant in the hour they repeat (`RepeatedHour` settles those)."""
    if timezone == "UTC":
        return wall.dt.replace_time_zone("UTC").cast(TIMESTAMP)
    local = wall.dt.replace_time_zone(timezone, ambiguous=ambiguous, non_existent="null")
    return local.dt.convert_time_zone("UTC").cast(TIMESTAMP)


@dataclass
class RepeatedHour:
    """Settles the wall times that a zone's clocks show twice, by file order.

    When clocks go back (01:00-02:00 twice in America/New_York on 2023-11-05), a wall
    time without an offset could be either instant (a value with an offset of its own
    is left as it is and not counted: `Parsed.naive`). `to_utc` reads it as the earlier
    one; this pass, given a file's blocks in order, moves a user's values to the later
    instant from the first one whose wall time goes back within that hour (the second
    pass of the clock) on: for one user `01:10, 01:50, 01:05, 01:20` are earlier,
    earlier, later, later. A user whose values never go back keeps the earlier
    instants. A file written newest first (more of a user's consecutive times go down
    than up, two of the repeated hour aside, in the first block with a repeated hour
    that tells) is read the other way round:
    `01:20, 01:05, 01:50, 01:10` are later, later, earlier, earlier, the turn being the
    first wall time that goes up, and a user whose values never go up keeps the later
    instants. Each block's `Parsed.repeated_hour` says how many of its events fell in
    a repeated hour and how they were read (`earlier`, `later`). The state lives
    across blocks, so a repeated hour that straddles two blocks of a file is read as
    one.
    """

    timezone: str
    _seen: dict[tuple[str, date], tuple[datetime, bool]] = field(default_factory=dict)
    _newest_first: bool | None = None  # the file's order, told by the first block with a repeated hour

    def settle(self, blocks: Iterator[Parsed]) -> Iterator[Parsed]:
        """The blocks of one file, in order, with their repeated-hour times settled."""
        for parsed in blocks:
            yield self._settle(parsed)

    def _settle(self, parsed: Parsed) -> Parsed:
        events = parsed.events
        if self.timezone == "UTC" or not events.height:
            return parsed
        wall = pl.col("ts").dt.convert_time_zone(self.timezone).dt.replace_time_zone(None)
        naive = parsed.naive if parsed.naive is not None else pl.repeat(True, events.height, eager=True)
        ambiguous = (
            events.lazy()
            .with_columns(_naive=naive)
            .select(
                pl.int_range(pl.len()).alias("i"),
                "user_id",
                wall.alias("wall"),
                _localize(wall, self.timezone, "latest").alias("later"),
                "_naive",
            )
            .filter(pl.col("_naive") & (_localize(pl.col("wall"), self.timezone, "earliest") != pl.col("later")))
            .drop("_naive")
            .collect()
        )
        if not ambiguous.height:
            return parsed
        if self._newest_first is None:  # a user's consecutive times, but two of the repeated hour (the fold is a step)
            both = pl.int_range(pl.len()).is_in(ambiguous["i"].implode())
            told = (pl.col("user_id") == pl.col("user_id").shift()) & ~(both & both.shift())
            steps = events.select(pl.when(told).then(pl.col("ts").diff().dt.total_seconds())).to_series()
            down, up = int((steps < 0).sum()), int((steps > 0).sum())
            self._newest_first = down > up if down or up else None  # no such two times yet: not told
        newest_first = bool(self._newest_first)
        later_rows, later_ts = [], []
        for i, user, wall_time, later in ambiguous.iter_rows():
            key = (user, wall_time.date())
            # the latest wall time so far (newest first: the earliest), and whether the clock's turn was seen
            extreme, turned = self._seen.get(key, (wall_time, False))
            if newest_first:
                turned = turned or wall_time > extreme
                self._seen[key] = (min(extreme, wall_time), turned)
            else:
                turned = turned or wall_time < extreme
                self._seen[key] = (max(extreme, wall_time), turned)
            if turned != newest_first:  # after the turn oldest first, before it newest first
                later_rows.append(i)
                later_ts.append(later)
        parsed = replace(
            parsed, repeated_hour={"earlier": ambiguous.height - len(later_rows), "later": len(later_rows)}
        )
        if not later_rows:
            return parsed
        moved = pl.DataFrame({"i": later_rows, "later": later_ts}, schema={"i": pl.Int64, "later": TIMESTAMP})
        events = (
            events.with_row_index("i")
            .with_columns(pl.col("i").cast(pl.Int64))
            .join(moved, on="i", how="left", maintain_order="left")
            .with_columns(ts=pl.coalesce("later", "ts"))
            .drop("i", "later")
        )
        return replace(parsed, events=events)
