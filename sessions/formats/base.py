"""What every log format produces, and the one place where records become either
canonical events or rejected rows.

A format reads one file and yields `Parsed` blocks in file order. Row ids in those
blocks are local (0-based among the file's records); the caller, who knows how many
records came before the file, shifts them to global ids (`Parsed.shifted`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl
import polars.selectors as cs

from sessions.fields import (
    first_reason,
    has_control_chars,
    integer_text,
    is_blank,
    is_float_id,
    may_hold_float,
    strip_spaces,
)
from sessions.formats.options import ReadOptions, map_name
from sessions.records import DEFAULT_BLOCK_BYTES
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA, Reason
from sessions.times import UTC_TIMES, RepeatedHour, TimeOptions, is_naive, to_utc

Check = tuple[pl.Expr, str]


def column_index(names: Sequence[str], name: str, *, loose: bool = False) -> int:
    """The position of the column `name` among a table's `names` (a header's, a
    schema's): the column named exactly so, in case and spaces (` user ` is not
    `user`). With `loose` (a CSV or TSV header's names, which a hand-written header
    pads: `user_id, time`), where none is, the one named so but for the white space
    around it (`str.strip`'s). ValueError when no column has that name (the columns'
    names shown quoted, with `near_names`), or several do (a header `uid,t,q,q`: which
    `q` is meant cannot be told, and the first was taken silently)."""
    at = [i for i, n in enumerate(names) if n == name]
    if not at and loose:
        at = [i for i, n in enumerate(names) if n.strip() == name]
        if len(at) > 1:
            alike, written = ", ".join(repr(names[i]) for i in at), map_name(names[at[0]])
            raise ValueError(f"{len(at)} columns are named {name!r} but for the spaces around it ({alike}): which is "
                             f"meant cannot be told; map one as written, in double quotes: {written}")  # fmt: skip
    if not at:
        raise ValueError(f"no column {name!r}; the columns are {list(names)}{near_note(names, [name])}")
    if len(at) > 1:
        where = ", ".join(str(i + 1) for i in at)
        raise ValueError(f"{len(at)} columns are named {name!r} (columns {where}): which is meant cannot be told; "
                         "rename all but one")  # fmt: skip
    return at[0]


def near_names(names: Sequence[str], missing: Sequence[str]) -> str:
    """What to add to "no column" (in parentheses: `near_note`) where a `missing` name is one of
    `names` but for its case or the white space around it (an export's `" user "`,
    `User`): how `--map` writes the column (`map_name`). Empty otherwise."""
    near = [n for m in missing for n in names
            if n != m and n.strip().casefold() == m.strip().casefold()]  # fmt: skip
    if not near:
        return ""
    shown = ", ".join(f"{n!r} as {map_name(n)}" for n in dict.fromkeys(near))
    return f"a name is matched as written, in case and spaces: --map names {shown}"


def near_note(names: Sequence[str], missing: Sequence[str]) -> str:
    """`near_names` in parentheses after a space, or empty."""
    return f" ({near})" if (near := near_names(names, missing)) else ""


_PARTITION = re.compile(r"(?:^|/)([^/=]+)=([^/]*)/")  # a Hive-style partition directory: `dt=2006-03-01/`


def partition_hint(path: str | Path, missing: Sequence[str]) -> str:
    """What to add to "no column" when a `missing` column is a Hive-style partition in
    `path` (`.../dt=2006-03-01/part-0.parquet`): its values are in the directory's name
    only, and sessionflow reads the files' own columns. Empty otherwise."""
    partitions = {key: value for key, value in _PARTITION.findall(str(path))}
    named = [m for m in missing if m in partitions]
    if not named:
        return ""
    shown = ", ".join(f"{m}={partitions[m]}/" for m in named)
    return (f" ({shown} is a partition directory: its value is in the path alone, which is not read; write the "
            f"column into the files)")  # fmt: skip


class Columns(ABC):
    """A record's named columns as expressions, whatever the file layout.

    Formats describe their canonical columns with a `Builder` over this interface,
    so the same mapping serves CSV, JSON lines and Parquet.
    """

    names: list[str]
    times: TimeOptions = UTC_TIMES
    time_source: tuple[str, str | None] | None = None  # the column `time` read, and its known format

    loose: bool = False  # whether a name is also found but for the spaces around it (`column_index`)

    def __contains__(self, name: str) -> bool:
        return name in self.names or (self.loose and any(n.strip() == name for n in self.names))

    def __getitem__(self, name: str) -> pl.Expr:
        column_index(self.names, name, loose=self.loose)
        return self._get(name)

    @abstractmethod
    def _get(self, name: str) -> pl.Expr: ...

    def time(self, name: str, known: str | None = None) -> pl.Expr:
        """The column as UTC time stamps, read by `sessions.times.to_utc` as its type
        (`dtype`) and the job's time settings say (null where it is not a time);
        `known`: the format's own strptime format, if it has one."""
        self.time_source = (name, known)
        return to_utc(self[name], self.dtype(name), self.times, known)

    def dtype(self, name: str) -> pl.DataType:
        """The column's type (text, but for typed columns)."""
        return pl.String()

    def integer(self, name: str) -> pl.Expr:
        """The field `name` of a built-in format that holds an integer by definition (a
        user id, a click rank, a mission or session number, epoch seconds), as text:
        without the white space around it (`strip_spaces`), and as its integer where
        written as a whole float (`integer_text`: `1019251.0`, as pandas writes an
        integer column with a missing value, is the user `1019251`; a rank `3.0` is 3)."""
        return integer_text(strip_spaces(self[name]))

    def with_naive(self, built: dict[str, pl.Expr]) -> dict[str, pl.Expr]:
        """A builder's columns plus `_naive` (`sessions.times.is_naive` of the column its
        `ts` was read from), for `finalize` to hand to `RepeatedHour`."""
        if self.time_source is None:
            return built
        name, known = self.time_source
        return {**built, "_naive": is_naive(self[name], self.dtype(name), self.times, known)}


# Canonical columns (and private `_`-prefixed helpers) from a record's columns.
Builder = Callable[[Columns], dict[str, pl.Expr]]


@dataclass(frozen=True)
class Parsed:
    """One block of a file: its accepted events and its rejected records.

    `skipped` counts the lines of the block that are not records at all and so take
    no row id, by kind: `header` (a header line repeated inside a file, as when parts
    are joined with `cat`) and `layout` (Webis-SMC's separator and blank lines).
    `damage` says why the file's compressed stream broke off after this block (its
    last record is then rejected as `truncated_stream`); None for a sound file.
    `repeated_hour` counts the events whose wall time fell in an hour the zone's
    clocks repeat, by the instant they were read as (`earlier`, `later`:
    `sessions.times.RepeatedHour`); `naive` says, per event, whether its time was
    written without an offset (None: not known, taken as all). `read_as` says how the
    file's fields were read where the file itself decided it (a CSV-quoted TSV).
    `float_users` counts the events whose user id was read as written in float notation
    (`sessions.fields.is_float_id`): a CSV or TSV `table`'s `599381.0`, which its text keeps,
    and in every format an id of 2**53 or more whose digits a float lost
    (`1.0612563642406546e+17`), which is another user than the integer it was.
    """

    events: pl.DataFrame  # EVENT_SCHEMA
    rejected: pl.DataFrame  # REJECTED_SCHEMA
    rows_read: int  # records the block held, counted before they were split
    skipped: dict[str, int] = field(default_factory=dict)
    damage: str | None = None
    repeated_hour: dict[str, int] = field(default_factory=dict)
    naive: pl.Series | None = None
    read_as: str | None = None
    rejected_lines: dict[str, int] = field(default_factory=dict)  # physical lines the rejected rows took, by reason
    float_users: int = 0

    @property
    def n_records(self) -> int:
        """Records of the block: its events and its rejected rows."""
        return self.events.height + self.rejected.height

    def shifted(self, offset: int) -> Parsed:
        """The same block with row ids moved by offset (local -> global)."""
        if offset == 0:
            return self
        shift = pl.col("row_id") + offset
        return replace(self, events=self.events.with_columns(shift), rejected=self.rejected.with_columns(shift))


class LogFormat(ABC):
    """A log format: reads one file into canonical events and rejected records.

    `options` are the job's read settings (`sessions.formats.format_for` binds them);
    `unknown_users` the user values the format itself writes for no one.
    """

    name: str
    options: ReadOptions
    unknown_users: tuple[str, ...]

    def parse_file(self, path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Parsed]:
        """Parsed blocks of one file, in order, with local row ids; the wall times of an
        hour the zone repeats settled by file order (`sessions.times.RepeatedHour`)."""
        return RepeatedHour(self.options.timezone).settle(self.read_blocks(path, block_bytes=block_bytes))

    @abstractmethod
    def read_blocks(self, path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Parsed]:
        """What `parse_file` gives, before the repeated hour is settled."""

    def value_checks(self, bytes_checked: bool = False) -> list[Check]:
        """The checks every event of this format must pass (`value_checks` with the
        format's and the job's unknown users, and `bytes_checked`)."""
        return value_checks((*self.unknown_users, *self.options.unknown_user), bytes_checked)


def text_checks(
    n_fields: pl.Expr | None = None, expected: int = 0, optional_trailing: int = 0, short_fields: int | None = None
) -> list[Check]:
    """The checks on a text record before its fields are looked at: a broken
    compressed stream, encoding, a quoted field never closed, binary junk, blank lines and, for delimited records,
    the number of fields (`n_fields` against `expected`, of which `optional_trailing`
    may be missing; or exactly `short_fields`, a short form the format allows)."""
    text = pl.col("text")
    checks: list[Check] = [
        (pl.col("damaged"), Reason.TRUNCATED_STREAM),
        (text.is_null(), Reason.BAD_ENCODING),
        # a quote left open: on a last line the file cut short, else a field that took every line after it
        # (counted as the file ends its lines: a CR file's line breaks inside a quoted field stay CRs in `text`)
        (pl.col("unclosed") & ~pl.col("terminated") & (pl.col("lines") <= 1), Reason.TRUNCATED_LINE),
        (pl.col("unclosed"), Reason.UNCLOSED_QUOTE),
        (pl.col("escaped"), Reason.BACKSLASH_ESCAPE),
        (has_control_chars(text), Reason.CONTROL_CHARS),
        (text.str.strip_chars() == "", Reason.EMPTY_LINE),
    ]
    if n_fields is not None:
        wrong = ~n_fields.is_between(expected - optional_trailing, expected)
        if short_fields is not None:
            wrong = wrong & (n_fields != short_fields)
        checks += [
            (wrong & ~pl.col("terminated"), Reason.TRUNCATED_LINE),
            (wrong, Reason.WRONG_FIELD_COUNT),
        ]
    return checks


# The event's text fields, as a format's builder gives them (before their checks)
TEXT_FIELDS = tuple(c for c, dtype in EVENT_SCHEMA.items() if dtype == pl.String() and c != "source")


def value_checks(unknown_users: Sequence[str] = (), bytes_checked: bool = False) -> list[Check]:
    """The checks every event must pass, whatever its format: its text fields free of
    control characters as decoded (what a JSON line escapes, `"a\\u0001b"`, or a Parquet
    string holds, as a text line's raw bytes are checked: `text_checks`; not checked again
    when `bytes_checked`, for fields cut from bytes found free of them, as a clean
    tab-separated block's are: `records.byte_census`), a user, and
    one that stands for someone (not one of `unknown_users`, such as DiffusionDB's
    `deleted_account`: records of unknown users are never linked to each other), a
    time and a text. Unknown users match whatever their case (`NULL`, `Null`)."""
    unknown = pl.col("user_id").str.strip_chars().str.to_lowercase().is_in([u.lower() for u in unknown_users])
    texts = cs.by_name(*TEXT_FIELDS, require_all=False) & cs.string()  # those the format has
    controls = pl.any_horizontal(has_control_chars(texts), pl.lit(False)).fill_null(False)
    return [
        *([(controls, Reason.CONTROL_CHARS)] if not bytes_checked else []),
        (is_blank(pl.col("user_id")), Reason.EMPTY_USER),
        *([(unknown, Reason.UNKNOWN_USER)] if unknown_users else []),
        (pl.col("ts").is_null(), Reason.BAD_TIME),
        (is_blank(pl.col("query")), Reason.EMPTY_TEXT),
    ]


def _float_users(users: pl.Series) -> int:
    """How many of the events' user ids (text) were read as written in float notation
    (`is_float_id`); a look at the column first (`may_hold_float`), since most hold none."""
    if not may_hold_float(users.drop_nulls()):
        return 0
    return int(pl.select(is_float_id(pl.lit(users, dtype=pl.String)).sum()).item())


def finalize(
    frame: pl.LazyFrame,
    *,
    source: str,
    source_file: str,
    checks: Sequence[Check],
    raw: pl.Expr,
    skipped: dict[str, int] | None = None,
    damage: str | None = None,
) -> Parsed:
    """Split a block into events and rejected rows by the first failing check.

    `frame` holds `row_id`, `line_no`, optionally `lines` (the physical lines each
    record takes, 1 where absent) and any of the canonical event columns (those it
    lacks come out null). `checks` are tried in order; a record is rejected with the
    reason of the first one that holds. `raw` renders a record for the rejected table;
    it is evaluated on rejected records only. `skipped`, `damage`, `float_users`: see
    `Parsed`.
    """
    names = frame.collect_schema().names()
    canonical = [
        (pl.col(c) if c in names else pl.lit(None)).cast(dtype, strict=False).alias(c)
        for c, dtype in EVENT_SCHEMA.items()
        if c != "source"
    ]
    df = frame.with_columns(_reason=first_reason(checks)).collect()
    ok = pl.col("_reason").is_null()
    events = df.lazy().filter(ok).select(canonical).with_columns(source=pl.lit(source)).select(list(EVENT_SCHEMA))
    naive = df["_naive"].filter(df["_reason"].is_null()) if "_naive" in df.columns else None  # not every column
    float_users = _float_users(df["user_id"].filter(df["_reason"].is_null())) if "user_id" in df.columns else 0
    lines = pl.col("lines").sum() if "lines" in df.columns else pl.len()  # a record without its count: one line
    rejected_lines = (  # most blocks reject nothing: no second pass over them
        df.lazy().filter(~ok).group_by("_reason").agg(lines).collect().rows()
        if df["_reason"].null_count() < df.height else []
    )  # fmt: skip
    rejected = (
        df.lazy()
        .filter(~ok)
        .select(
            pl.col("row_id").cast(pl.Int64),
            source_file=pl.lit(source_file),
            line_no=pl.col("line_no").cast(pl.Int64),
            raw=raw.cast(pl.String),
            reason=pl.col("_reason"),
        )
    )
    return Parsed(
        events.collect().cast(EVENT_SCHEMA),  # type: ignore[arg-type]
        rejected.collect().cast(REJECTED_SCHEMA),  # type: ignore[arg-type]
        rows_read=df.height,
        skipped={k: v for k, v in (skipped or {}).items() if v},
        damage=damage,
        naive=naive,
        rejected_lines=dict(rejected_lines),
        float_users=float_users,
    )
