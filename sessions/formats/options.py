"""How raw logs are read beyond their format: the `--map` of a table, how times are
written, which user values stand for no one, and whether a damaged file is an error.

Every job that reads raw logs (ingest, segment, score, annotate) holds one
`ReadOptions` as its `read` settings; the readers of both engines take it whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sessions.times import TimeOptions, TimeUnit

if TYPE_CHECKING:
    from sessions.formats.table import ColumnMap


@dataclass(frozen=True)
class ReadOptions:
    """The read settings of a job (see the module docstring); ValueError for a bad one."""

    map: str | None = field(default=None, metadata={
        "help": "columns of a --format table: user=COL,time=COL,text=COL[,session=COL][,mission=COL]; a name "
                "is matched as written, in case and spaces (a CSV header's also without the spaces around it); "
                'one with spaces around it, a comma or a leading quote in double quotes, a quote doubled: '
                'user=" User ID "'})  # fmt: skip
    time_format: str | None = field(default=None, metadata={
        "help": "strptime format of text times, e.g. '%d/%m/%Y %H:%M' (%z: an offset; %S.%f: seconds and their "
                "fraction, as Python reads them), then the only one read; none: ISO 8601/RFC 3339 date-times and "
                "dates, RFC 2822 or epoch numbers"})  # fmt: skip
    time_unit: TimeUnit = field(default="auto", metadata={
        "help": "unit of epoch numbers; auto: s, ms, us or ns, the one that puts the value in 1990..2100"})  # fmt: skip
    timezone: str = field(default="UTC", metadata={
        "help": "IANA zone of times written without an offset (DST-aware; the hour clocks repeat is read in file "
                "order and counted in the report)"})  # fmt: skip
    unknown_user: tuple[str, ...] = field(default=(), metadata={
        "help": "user values that stand for no one (repeatable, or comma-separated; one holding a comma: a list "
                "in a --config file), besides the format's own "
                "(DiffusionDB's deleted_account; a table's \\N, NULL, None, NaN, NA, <NA>, undefined), each in "
                "any case: their records are rejected as unknown_user"})  # fmt: skip
    strict: bool = field(default=False, metadata={
        "help": "a damaged input (a compressed file cut off) is an error naming the file, not read up to the "
                "damage and reported"})  # fmt: skip

    def __post_init__(self) -> None:
        if self.map:
            try:
                self.mapping  # noqa: B018 (checks --map)
            except ValueError as err:
                raise ValueError(f"--map: {err}") from None
        self.times  # noqa: B018 (checks the time settings)

    @property
    def mapping(self) -> ColumnMap | None:
        """The parsed `--map`, None when not given."""
        from sessions.formats.table import ColumnMap

        return ColumnMap.parse(self.map) if self.map else None

    @property
    def times(self) -> TimeOptions:
        """The time settings as `TimeOptions` (ValueError for an unknown zone, unit or format)."""
        return TimeOptions(format=self.time_format, unit=self.time_unit, timezone=self.timezone)


def map_name(column: str) -> str:
    """A column name as `--map` writes it (`ColumnMap.parse` reads it back as `column`):
    as is, but in double quotes, a quote inside doubled, where the bare form would not
    read back: an empty name, one with white space around it (`str.strip`'s, which a
    bare name loses), a comma (which ends an item) or a leading quote. `" user "` for
    ` user `, `"a,b"` for `a,b` (and for a name `"q"`, quotes and all, three quotes each side)."""
    if column and column == column.strip() and "," not in column and not column.startswith('"'):
        return column
    return '"' + column.replace('"', '""') + '"'


DEFAULT_READ = ReadOptions()  # the settings of a job given none (frozen: safe to share)
