"""Line- and CSV-style logs: AOL, Webis-SMC-12, Gayo-Avello, Midjourney CSV, CSV/TSV tables.

One `DelimitedFormat` describes a dialect (separator, quoting, header) and how its
named fields make the canonical columns; the reading, splitting and checking are
shared by all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from sessions.fields import split_delimited
from sessions.formats.base import Builder, Check, Columns, LogFormat, Parsed, finalize, text_checks, value_checks
from sessions.records import DEFAULT_BLOCK_BYTES, iter_records


class Fields(Columns):
    """The fields of a split record (a list column), by the names of the header."""

    def __init__(self, names: Sequence[str], fields: pl.Expr) -> None:
        self.names = list(names)
        self._fields = fields

    def _get(self, name: str) -> pl.Expr:
        return self._fields.list.get(self.names.index(name), null_on_oob=True)


@dataclass(frozen=True)
class DelimitedFormat(LogFormat):
    """A delimited text format.

    Attributes:
        name: the format name, written to the `source` column.
        sep: field separator.
        columns: the field names when a file has no header line.
        build: canonical columns from the named fields.
        quote: quote character of quoted fields, None for none (AOL, TSV).
        multiline: whether a quoted field may hold newlines (CSV); only with quote.
        header: whether the first line names the columns: never, always, or when it
            starts with the first of `columns` (AOL files have one, fragments may not).
        optional_trailing: how many trailing columns a record may leave out.
        layout: lines that are layout rather than records (Webis-SMC separators);
            they are neither events nor rejected and get no row id.
        checks: format-specific checks, tried after the value checks.
    """

    name: str
    sep: str
    columns: tuple[str, ...]
    build: Builder
    quote: str | None = None
    multiline: bool = False
    header: Literal["none", "optional", "required"] = "none"
    optional_trailing: int = 0
    layout: Callable[[pl.Expr], pl.Expr] | None = None
    checks: tuple[Check, ...] = ()

    def parse_file(self, path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Parsed]:
        names: Sequence[str] | None = self.columns if self.header == "none" else None
        next_row = 0
        quote = self.quote if self.multiline else None
        for block in iter_records(path, quote=quote, block_bytes=block_bytes):
            if names is None:
                names, block = self._read_header(block, path)
            lf = block.lazy()
            if self.layout is not None:
                lf = lf.filter(~self.layout(pl.col("text")).fill_null(False))
            lf = lf.with_row_index("row_id", offset=next_row)
            parsed = self._parse(lf, names, source_file=str(path))
            next_row += parsed.n_records
            yield parsed

    def _read_header(self, block: pl.DataFrame, path: str | Path) -> tuple[Sequence[str], pl.DataFrame]:
        first = block["text"][0]
        starts_like_header = first is not None and first.startswith(self.columns[0] + self.sep)
        if self.header == "optional" and not starts_like_header:
            return self.columns, block
        if first is None:
            raise ValueError(f"{path}: the header line is not valid UTF-8")
        header = pl.select(split_delimited(pl.lit(first), self.sep, self.quote)).item()
        return [h.strip().removeprefix("\ufeff") for h in header], block.slice(1)  # a BOM is not a name

    def _parse(self, lf: pl.LazyFrame, names: Sequence[str], *, source_file: str) -> Parsed:
        fields = split_delimited(pl.col("text"), self.sep, self.quote)
        try:
            built = self.build(Fields(names, pl.col("_fields")))
        except ValueError as err:
            raise ValueError(f"{source_file}: {err}") from None
        lf = lf.with_columns(_fields=fields).with_columns(**built)
        checks = [
            *text_checks(pl.col("_fields"), len(names), self.optional_trailing),
            *value_checks(),
            *self.checks,
        ]
        raw = pl.coalesce("text", "undecodable")
        return finalize(lf, source=self.name, source_file=source_file, checks=checks, raw=raw)
