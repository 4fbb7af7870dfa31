"""Line- and CSV-style logs: AOL, Webis-SMC-12, Gayo-Avello, Midjourney CSV, CSV/TSV tables.

One `DelimitedFormat` describes a dialect (separator, quoting, header) and how its
named fields make the canonical columns; the reading, splitting and checking are
shared by all of them.

Each block of a file is split into fields one of two ways, with the same result:
- fast: a tab-separated block whose bytes show nothing unusual (valid UTF-8, no
  control bytes, no empty line, exactly the right number of tabs) goes through
  polars' CSV reader, which is several times faster;
- careful: anything else is split record by record (`records.split_records`), so
  each bad record gets its own reason and line number.

A line that repeats the header (parts of a log joined with `cat`, each with its
header) is not a record: it is skipped, takes no row id, and is counted in
`Parsed.skipped`, as are layout lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from sessions.fields import may_hold_float, split_delimited, strip_spaces
from sessions.formats.base import (
    Builder,
    Check,
    Columns,
    LogFormat,
    Parsed,
    column_index,
    finalize,
    near_names,
    partition_hint,
    text_checks,
)
from sessions.formats.dialect import field_opening_quote, log_dialect
from sessions.formats.options import ReadOptions, map_name
from sessions.parallel import ordered_map
from sessions.quoting import Quoting
from sessions.records import (
    DEFAULT_BLOCK_BYTES,
    Block,
    byte_census,
    iter_blocks,
    not_utf8_advice,
    other_layout,
    split_records,
    utf8_ok,
)
from sessions.schema import Reason
from sessions.times import TimeOptions


def field_name(i: int) -> str:
    """The column of the i-th field (0-based) of a record: `_f<i>`."""
    return f"_f{i}"


EMPTY_QUOTED = '""'  # an empty text as a CSV writer quotes it (polars' write_csv, csv's QUOTE_NONNUMERIC, R)


class Fields(Columns):
    """The fields of a record, one column `_f<i>` each, by the names of the header; with
    the `block` they are read from, where a column may be seen to hold no float. The
    columns `empty_quoted` read `""` (`EMPTY_QUOTED`) as the empty field it stands for
    (`DelimitedFormat.plain`)."""

    loose = True  # a header's names are also found without the spaces around them (`user_id, time`)

    def __init__(
        self, names: Sequence[str], times: TimeOptions, block: pl.DataFrame | None = None,
        empty_quoted: Sequence[str] = (),
    ) -> None:  # fmt: skip
        self.names = list(names)
        self.times = times
        self.block = block
        self.empty_quoted = tuple(empty_quoted)

    def _get(self, name: str) -> pl.Expr:
        field = pl.col(field_name(column_index(self.names, name, loose=True)))
        return pl.when(field == EMPTY_QUOTED).then(pl.lit("")).otherwise(field) if name in self.empty_quoted else field

    def _may_hold_float(self, name: str) -> bool:
        """Whether the block's column `name` may hold float notation (`may_hold_float`):
        where it cannot, as an AOL file's ids and ranks, `integer_text` is the text."""
        return self.block is None or may_hold_float(self.block[field_name(column_index(self.names, name, loose=True))])

    def integer(self, name: str) -> pl.Expr:
        return super().integer(name) if self._may_hold_float(name) else strip_spaces(self[name])


REORDERED = "reordered header"  # `_skip` of a line holding the header's names in another order


def _may_hold_header(data: bytes, names: Sequence[str], sep: str) -> bool:
    """Whether `data` may hold a line of the header's `names` in any order: each name
    occurs as a whole field (at a line's start or end, or between separators). First
    each name anywhere, one search each: a block without the first name is done in one."""
    encoded, s = [n.encode() for n in names], sep.encode()
    if not all(name in data for name in encoded):
        return False
    return all(
        data.startswith(name + s)
        or data.endswith(s + name)
        or any(f in data for f in (b"\n" + name + s, s + name + s, s + name + b"\n", s + name + b"\r"))
        for name in encoded
    )


@dataclass(frozen=True)
class DelimitedFormat(LogFormat):
    """A delimited text format.

    Attributes:
        name: the format name, written to the `source` column.
        sep: field separator.
        columns: the field names when a file has no header line.
        build: canonical columns from the named fields.
        quote: quote character of quoted fields, None for none (AOL, TSV).
        quoting: how a quote inside them is written (`quoting.Quoting`): doubled (RFC
            4180), or escaped with a backslash (Spark's CSV, R's `write.table`).
        multiline: whether a quoted field may hold newlines (CSV); only with quote.
        header: whether the first line names the columns: never, always, or when it
            starts with the first of `columns` (AOL files have one, fragments may not).
        optional_trailing: how many trailing columns a record may leave out.
        required: a record may also leave out the columns after the last of these (a
            table's user, time and text: not its optional labels, nor the columns no
            setting reads), as Python's `csv` and pandas read a row cut short; each
            such column is then null (a label: none).
        short_fields: a record may also hold only its first `short_fields` fields
            (AOL's query-only rows with the empty ItemRank and ClickURL trimmed, as
            the AOL readme describes them); the rest are then null.
        rest_in_last: the last column is free text that holds the rest of a record, its
            separators included (Webis-SMC's comment: a tab in it made the record
            `wrong_field_count`, and its query and label were lost); with a quote, a
            field in quotes is one field (a CSV-quoted Webis-SMC file's, `judge`).
        layout: lines that are layout rather than records (Webis-SMC separators);
            they are neither events nor rejected and get no row id.
        checks: format-specific checks, tried after the value checks.
        fast: allow the fast path for clean tab-separated blocks (tests turn it off
            to compare both paths).
        unknown_users: user values the format writes for no one.
        options: the job's read settings.
        read_as: how this file's fields are read, when the file itself decided it
            (a CSV-quoted TSV table); given to every block, so that the report says so.
        judge: the user and time columns of a raw tab-separated log (AOL, Webis-SMC)
            that a user may have saved back CSV-quoted (pandas' `to_csv(sep="\\t")`):
            at the first block where a field opens with a quote, the file is judged
            raw or quoted (`dialect.log_dialect`, by these columns) and read so from
            there; the blocks before hold no quoted field, and read alike either way.
            None: read as `quote` says.
        plain: the columns of a raw log that never hold a quote (a click's rank and
            URL, a mission number, a synthetic log's labels: none is text a user
            typed), where `""` read raw is the empty field a CSV writer quoted (polars'
            `write_csv` of an empty text, which pandas writes as nothing), as a quoted
            reading of the file gives it: a slice saved so read raw (nothing in its
            queries that only a writer writes) had every row without a click
            rejected as `bad_click_rank`.
    """

    name: str
    sep: str
    columns: tuple[str, ...]
    build: Builder
    quote: str | None = None
    quoting: Quoting = Quoting.DOUBLED
    multiline: bool = False
    header: Literal["none", "optional", "required"] = "none"
    optional_trailing: int = 0
    required: tuple[str, ...] = ()
    short_fields: int | None = None
    rest_in_last: bool = False
    layout: Callable[[pl.Expr], pl.Expr] | None = None
    checks: tuple[Check, ...] = ()
    fast: bool = True
    unknown_users: tuple[str, ...] = ()
    options: ReadOptions = field(default_factory=ReadOptions)
    read_as: str | None = None
    judge: tuple[str, str] | None = None
    plain: tuple[str, ...] = ()

    def read_blocks(self, path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Parsed]:
        quote = self.quote if self.multiline else None
        blocks = iter_blocks(path, quote=quote, sep=self.sep, escape=self.quoting.escape, block_bytes=block_bytes)
        first = next(blocks, None)
        if first is None:
            return
        # a stream damaged before its first whole line holds no header, only a truncated record
        has_header = self.header != "none" and not (first.damage and not len(first.newlines))
        names, first = self._read_header(first, path) if has_header else (self.columns, first)
        # Blocks are parsed two at a time (polars and numpy release the GIL), each by the format that reads it
        # (`judge`); row ids are local to a block until its place in the file is known.
        next_row = 0
        readers = self._readers(itertools.chain([first], blocks), path)
        for parsed in ordered_map(lambda read: read[0]._parse_block(read[1], names, str(path)), readers):
            yield parsed.shifted(next_row)
            next_row += parsed.n_records

    def _readers(self, blocks: Iterator[Block], path: str | Path) -> Iterator[tuple[DelimitedFormat, Block]]:
        """Each block with the format that reads it: this one, until a block where a field
        opens with a quote makes a `judge` judge the file (`as_written`) for it and the rest."""
        reader = self
        for block in blocks:
            if reader.judge is not None and field_opening_quote(block.data, True) >= 0:
                reader = reader.as_written(path)
            yield reader, block

    def as_written(self, path: str | Path) -> DelimitedFormat:
        """This format as the raw log at `path` (tab-separated, its fields never holding a
        tab or a line break) was written, judged by `dialect.log_dialect` from its
        `judge` columns: raw, or CSV-quoted (a quote inside doubled, or escaped as the
        judgement found), each record one line; the report saying how (`read_as`)."""
        if self.judge is None:
            return self
        user, time = self.judge
        dialect = log_dialect(path, self.sep, user=user, time=time, times=self.options.times)
        return replace(self, quote=dialect.quote, quoting=dialect.quoting, judge=None,
                       read_as=dialect.read_as(self.sep, named_csv=False))  # fmt: skip

    def _parse_block(self, block: Block, names: Sequence[str], source_file: str) -> Parsed:
        fast = self._fast_fields(block, names)
        careful = fast is None
        fields, maybe_blank = (self._careful_fields(block, names), True) if fast is None else fast
        skipped = {}
        if careful:
            reordered = fields.filter(pl.col("_skip") == REORDERED)
            if reordered.height:
                line, text = reordered.select("line_no", "text").row(0)
                raise ValueError(f"{source_file}: line {line} is the header with its columns in another order "
                                 f"({text!r}, after {self.sep.join(names)!r}): files of other column orders "
                                 f"joined into one, whose rows after it would be read in the first order; split it "
                                 f"there, or export each part with the same columns in the same order")  # fmt: skip
            skipped = {kind: int(fields["_skip"].eq(kind).sum()) for kind in ("header", "layout")}
            fields = fields.filter(pl.col("_skip").is_null()).drop("_skip")
        fields = fields.with_row_index("row_id")
        parsed = self._parse(fields, names, careful=careful, maybe_blank=maybe_blank, source_file=source_file,
                             skipped=skipped, damage=block.damage)  # fmt: skip
        return replace(parsed, read_as=self.read_as)

    def _read_header(self, block: Block, path: str | Path) -> tuple[Sequence[str], Block]:
        if self.header == "required" and (held := other_layout(block.first_line_bytes(), path)):
            # said so, not as a header of odd names (a breaker's Parquet and JSON lines given as Midjourney's); a
            # log whose header is optional (AOL's) rejects such a file's records, and the summary says the same
            raise ValueError(f"{path}: --format {self.name} reads a delimited text log with a header line, and {held}")
        first = block.first_line_text()
        starts_like_header = first is not None and first.startswith(self.columns[0] + self.sep)
        if self.header == "optional" and not starts_like_header:
            return self.columns, block
        if first is None or "\x00" in first:  # UTF-16's NULs are valid UTF-8
            raise ValueError(f"{path}: the header line is not UTF-8 text; {not_utf8_advice(block.first_line_bytes())}")
        if not first.strip():  # an IndexError's traceback for a table (a breaker's find), no column '' for Webis
            raise ValueError(f"{path}: its first line is blank, where the header line naming its columns is read: "
                             "remove the blank lines before the header")  # fmt: skip
        header = pl.select(split_delimited(pl.lit(first), self.sep, self.quote, self.quoting)).item()
        # names as written (` user `: mapped exactly, or by `user`: `Fields`); a BOM that starts the line is no name's
        # (one more after the file's own, which the reader dropped), one within it is text: a column named U+FEFF
        # lost it, and `--map` then read another column (a hypothesis example: ` \ufeff ` for `\ufeff`)
        names = [header[0].removeprefix("\ufeff"), *header[1:]]
        _one_column_each(names, self.columns, path)
        return names, block.after_first_line()

    def _fast_fields(self, block: Block, names: Sequence[str]) -> tuple[pl.DataFrame, bool] | None:
        """Fields of a clean tab-separated block via polars' CSV reader, and whether
        any of its lines may be blank (`ByteCensus.blank_candidates`); or None. (A block
        of a CSV-quoted log without a quote in it is clean too, where no record spans lines.)"""
        unquoted = self.quote is None or (not self.multiline and self.quote.encode() not in block.data)
        if not (self.fast and self.sep == "\t" and unquoted and self.layout is None):
            return None
        data, n = block.data, block.n_lines
        if not n or block.damage or _may_hold_header(data, names, self.sep):
            return None  # a broken stream or maybe a header line (in any order): the careful path
        census = byte_census(data, block.newlines, self.sep)
        if (
            census.controls  # binary junk
            or census.separators != (len(names) - 1) * n  # polars refuses a line with too many: none has too few
            or census.empty_lines
            or census.bom
            or not utf8_ok(data)
        ):
            return None
        try:
            frame = pl.read_csv(
                data, separator="\t", quote_char=None, has_header=False, infer_schema=False,
                new_columns=[field_name(i) for i in range(len(names))], empty_string_is_null=False,
            )  # fmt: skip
        except pl.exceptions.PolarsError:
            return None
        if frame.height != n:
            return None
        terminated = np.ones(n, dtype=bool)
        terminated[-1] = data.endswith(b"\n")
        frame = frame.with_columns(
            line_no=pl.int_range(block.first_line, block.first_line + n, dtype=pl.Int64),
            terminated=pl.Series(terminated),
            unclosed=pl.lit(False),  # no quotes: a raw TSV
            escaped=pl.lit(False),
            damaged=pl.lit(False),
            _n_fields=pl.lit(len(names), dtype=pl.UInt32),
        )
        return frame, census.blank_candidates > 0

    def _careful_fields(self, block: Block, names: Sequence[str]) -> pl.DataFrame:
        """Fields of each record of a block, checked one by one; `_skip` names the lines
        that are not records (`header`, `layout`), null for records."""
        records = split_records(block, self.quote if self.multiline else None, self.sep, self.quoting.escape)
        split = split_delimited(pl.col("text"), self.sep, self.quote, self.quoting)
        records = records.with_columns(split.alias("_list"))
        skip = pl.lit(None, dtype=pl.String)
        if self.header != "none":

            def stripped(fields: pl.Expr) -> pl.Expr:  # a line's fields as a header's names compare
                return fields.list.eval(pl.element().str.strip_chars())

            line = stripped(pl.col("_list"))
            headers = {tuple(names), tuple(self.columns)}
            is_header = pl.any_horizontal(line == stripped(pl.lit(list(h), dtype=pl.List(pl.String))) for h in headers)
            skip = pl.when(is_header.fill_null(False)).then(pl.lit("header")).otherwise(skip)
            # the header's names in another order: files of other column orders joined (`cat a.csv b.csv`)
            reordered = line.list.sort() == stripped(pl.lit(list(names), dtype=pl.List(pl.String))).list.sort()
            skip = pl.when(skip.is_null() & reordered.fill_null(False)).then(pl.lit(REORDERED)).otherwise(skip)
        if self.layout is not None:
            skip = pl.when(self.layout(pl.col("text")).fill_null(False)).then(pl.lit("layout")).otherwise(skip)
        fields = [pl.col("_list").list.get(i, null_on_oob=True).alias(field_name(i)) for i in range(len(names))]
        n_fields = pl.col("_list").list.len()
        if self.rest_in_last:  # the last column's text runs to the end of the record, separators and all
            last = len(names) - 1
            rest = pl.col("_list").list.slice(last).list.join(self.sep)
            fields[last] = pl.when(n_fields > last).then(rest).alias(field_name(last))
            n_fields = pl.min_horizontal(n_fields, pl.lit(len(names), dtype=pl.UInt32))
        return records.select(pl.exclude("_list"), *fields, _n_fields=n_fields, _skip=skip)

    def _parse(
        self,
        block: pl.DataFrame,
        names: Sequence[str],
        *,
        careful: bool,
        maybe_blank: bool,
        source_file: str,
        skipped: dict[str, int],
        damage: str | None,
    ) -> Parsed:
        try:
            columns = Fields(names, self.options.times, block, empty_quoted=() if self.quote else self.plain)
            built = columns.with_naive(self.build(columns))
        except ValueError as err:
            missing = [c for c in self.columns if c not in columns]
            hint = partition_hint(source_file, missing)
            headless = self.header == "required" and str(err).startswith("no column")
            if not hint and headless and not near_names(names, missing):  # names near the mapped ones: a header
                hint = " (its first line: a table's first line names its columns)"
            raise ValueError(f"{source_file}: {err}{hint}") from None
        lf = block.lazy().with_columns(**built)
        fields = [pl.col(field_name(i)) for i in range(len(names))]
        if careful:
            optional = self.optional_trailing
            if self.required:
                last = max(column_index(names, c, loose=True) for c in self.required)
                optional = max(optional, len(names) - 1 - last)
            checks = text_checks(pl.col("_n_fields"), len(names), optional, self.short_fields)
            raw = pl.coalesce("text", "undecodable")
        else:  # the block's bytes were checked (no control byte): only a line of blank fields can be empty
            blank = pl.all_horizontal(f.str.strip_chars() == "" for f in fields)
            checks = [(blank, Reason.EMPTY_LINE)] if maybe_blank else []
            raw = pl.concat_str(fields, separator=self.sep)
        checks += [*self.value_checks(bytes_checked=not careful), *self.checks]
        return finalize(lf, source=self.name, source_file=source_file, checks=checks, raw=raw, skipped=skipped,
                        damage=damage)  # fmt: skip


def _one_column_each(names: Sequence[str], columns: Sequence[str], path: str | Path) -> None:
    """ValueError in one line naming the file where two of the names `columns` (a
    `--map`'s, which `table.ColumnMap.parse` found apart) are one column of the header
    `names`: `query` and `" query"` both find ` query` (a header name is found without
    the spaces around it), and the text was read as its own session label (the change
    breaker's find). A name the header lacks is the reader's to say."""
    found: dict[int, str] = {}
    for column in dict.fromkeys(columns):
        try:
            at = column_index(names, column, loose=True)
        except ValueError:
            continue
        if at in found:
            raise ValueError(f"{path}: --map names {map_name(found[at])} and {map_name(column)}, which are one "
                             f"column here ({names[at]!r}): map each to a column of its own")  # fmt: skip
        found[at] = column
