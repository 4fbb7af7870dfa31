"""Readers of every supported log format, by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sessions.formats.aol import AOL
from sessions.formats.base import LogFormat, Parsed
from sessions.formats.columnar import ParquetFormat
from sessions.formats.gold import GAYO_AVELLO, WEBIS_SMC
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.formats.prompts import DIFFUSIONDB, MIDJOURNEY
from sessions.formats.table import ColumnMap, table_format

FORMATS: dict[str, LogFormat] = {
    f.name: f
    for f in (AOL, WEBIS_SMC, GAYO_AVELLO, DIFFUSIONDB, MIDJOURNEY)  # type: ignore[attr-defined]
}
FORMAT_NAMES: tuple[str, ...] = (*FORMATS, "table")


def format_for(name: str, path: str | Path, options: ReadOptions = DEFAULT_READ) -> LogFormat:
    """The reader for one input file of the named format, with the job's read settings.

    `table` needs a column mapping (`options.map`) and picks CSV, TSV, JSON lines or
    Parquet by the file name; the other formats have fixed columns and take no
    mapping. ValueError for an unknown format or a mapping that does not fit.
    """
    check_format(name, options)
    if name == "table":
        return table_format(path, options.mapping, options)
    return replace(FORMATS[name], options=options)  # type: ignore[type-var]


def reads_as_parquet(name: str | None, path: str | Path) -> bool:
    """Whether the format `name` reads the file at `path` as Parquet: `table` a file named
    for Parquet (`.parquet`, `.pq`, compressed or not), a format of Parquet logs
    (diffusiondb) every file; the others (aol, webis-smc, gayo-avello, midjourney) read
    text. False for an unknown name, or None."""
    from sessions.formats.table import named_table_kind

    if name == "table":
        return named_table_kind(path) == "parquet"
    return name is not None and isinstance(FORMATS.get(name), ParquetFormat)


def check_format(name: str, options: ReadOptions = DEFAULT_READ) -> None:
    """ValueError in one line for an unknown format, a `table` without a column mapping,
    or a mapping given to a format of fixed columns: what `format_for` refuses, checked
    before a job reads anything."""
    if name == "table":
        if options.mapping is None:
            raise ValueError("--format table needs a column mapping: --map user=COL,time=COL,text=COL")
        return
    if name not in FORMATS:
        raise ValueError(f"unknown --format {name!r}; choose one of {', '.join(FORMAT_NAMES)}")
    if options.mapping is not None:
        raise ValueError(f"--map applies to --format table only; {name} has fixed columns")


__all__ = ["FORMATS", "FORMAT_NAMES", "ColumnMap", "LogFormat", "Parsed", "ReadOptions", "check_format", "format_for",
           "reads_as_parquet"]  # fmt: skip
