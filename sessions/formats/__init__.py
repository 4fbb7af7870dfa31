"""Readers of every supported log format, by name."""

from __future__ import annotations

from pathlib import Path

from sessions.formats.aol import AOL
from sessions.formats.base import LogFormat, Parsed
from sessions.formats.gold import GAYO_AVELLO, WEBIS_SMC
from sessions.formats.prompts import DIFFUSIONDB, MIDJOURNEY
from sessions.formats.table import ColumnMap, table_format

FORMATS: dict[str, LogFormat] = {
    f.name: f
    for f in (AOL, WEBIS_SMC, GAYO_AVELLO, DIFFUSIONDB, MIDJOURNEY)  # type: ignore[attr-defined]
}
FORMAT_NAMES: tuple[str, ...] = (*FORMATS, "table")


def format_for(name: str, path: str | Path, mapping: ColumnMap | None = None) -> LogFormat:
    """The reader for one input file of the named format.

    `table` needs a column mapping and picks CSV, TSV, JSON lines or Parquet by the
    file name; the other formats have fixed columns and take no mapping.
    """
    if name == "table":
        if mapping is None:
            raise ValueError("--format table needs a column mapping: --map user=COL,time=COL,text=COL")
        return table_format(path, mapping)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMAT_NAMES)}")
    if mapping is not None:
        raise ValueError(f"--map applies to --format table only; {name} has fixed columns")
    return FORMATS[name]


__all__ = ["FORMATS", "FORMAT_NAMES", "ColumnMap", "LogFormat", "Parsed", "format_for"]
