"""Polars expressions that turn raw record text into typed fields.

Everything here is vectorised: no Python function runs per row.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence

import polars as pl

from sessions.schema import TIMESTAMP

# Formats tried, in order, for a text time stamp without a format of its own.
ISO_TIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
)

_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"
# Plausible Unix epochs in seconds: 1990-01-01 .. 2100-01-01 (AOL is 2006, prompts 2022+).
_EPOCH_RANGE = (631_152_000, 4_102_444_800)


def split_delimited(text: pl.Expr, sep: str, quote: str | None) -> pl.Expr:
    """Split each record into its list of fields.

    Without a quote character this is a plain split (AOL, TSV). With one, each record
    is split by Python's `csv` reader (RFC 4180, not strict), so every field is what
    `csv` reads: a quoted field may hold the separator, newlines and doubled quotes; a
    quote inside an unquoted field is text (`12" pizza pan`); text after a closing
    quote stays in the field (`"best" pizza places` is `best pizza places`).
    """
    if quote is None:
        return text.str.split(sep)
    return text.map_batches(functools.partial(_csv_fields, sep=sep, quote=quote), return_dtype=pl.List(pl.String))


def _csv_fields(texts: pl.Series, *, sep: str, quote: str) -> pl.Series:
    def fields(record: str | None) -> list[str] | None:
        if record is None:
            return None
        try:
            return next(csv.reader([record], delimiter=sep, quotechar=quote), [""])
        except csv.Error:  # a bare carriage return inside an unquoted field: one field, as written
            return [record]

    return pl.Series([fields(t) for t in texts.to_list()], dtype=pl.List(pl.String))


def parse_time(expr: pl.Expr, formats: Sequence[str] = ISO_TIME_FORMATS) -> pl.Expr:
    """Text time stamps to UTC, trying each format in turn; naive times are taken as UTC.

    Digits-only values are read as Unix epoch seconds. Unparseable values become null.
    """
    attempts = [expr.str.strptime(TIMESTAMP, fmt, strict=False) for fmt in formats]
    return pl.coalesce(*attempts, epoch_seconds(expr))


def epoch_seconds(expr: pl.Expr) -> pl.Expr:
    """Unix epoch seconds (as text or integer) to UTC; out-of-range values become null."""
    secs = expr.cast(pl.Int64, strict=False)
    lo, hi = _EPOCH_RANGE
    in_range = secs.is_between(lo, hi)
    return pl.when(in_range).then(pl.from_epoch(secs, time_unit="s")).cast(TIMESTAMP)


def to_utc(expr: pl.Expr, dtype: pl.DataType, formats: Sequence[str] = ISO_TIME_FORMATS) -> pl.Expr:
    """A time column of any dtype (datetime, date, epoch seconds, text) as UTC microseconds."""
    if isinstance(dtype, pl.Datetime):
        aware = expr.dt.convert_time_zone("UTC") if dtype.time_zone else expr.dt.replace_time_zone("UTC")
        return aware.dt.cast_time_unit("us")
    if isinstance(dtype, pl.Date):
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.is_numeric():
        return epoch_seconds(expr)
    return parse_time(expr.cast(pl.String), formats)


def has_control_chars(text: pl.Expr) -> pl.Expr:
    """True where the text holds NUL or other control bytes (tab, CR and LF excepted)."""
    return text.str.contains(_CONTROL)


def is_blank(text: pl.Expr) -> pl.Expr:
    """True where the text is missing or only whitespace."""
    return text.is_null() | (text.str.strip_chars() == "")


def first_reason(checks: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The reason of the first check that holds, null when none does."""
    if not checks:
        return pl.lit(None, dtype=pl.String)
    (cond, reason), *rest = checks
    chain = pl.when(cond).then(pl.lit(str(reason)))
    for cond, reason in rest:
        chain = chain.when(cond).then(pl.lit(str(reason)))
    return chain.otherwise(pl.lit(None, dtype=pl.String))
