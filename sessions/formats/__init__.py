"""Readers of every supported log format, by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sessions.formats.aol import AOL
from sessions.formats.base import LogFormat, Parsed
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
    if name == "table":
        if options.mapping is None:
            raise ValueError("--format table needs a column mapping: --map user=COL,time=COL,text=COL")
        return table_format(path, options.mapping, options)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMAT_NAMES)}")
    if options.mapping is not None:
        raise ValueError(f"--map applies to --format table only; {name} has fixed columns")
    return replace(FORMATS[name], options=options)  # type: ignore[type-var]


__all__ = ["FORMATS", "FORMAT_NAMES", "ColumnMap", "LogFormat", "Parsed", "ReadOptions", "format_for"]
