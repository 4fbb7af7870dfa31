"""Job configuration: typed dataclasses, loadable from YAML, overridable from the CLI.

A YAML file holds one mapping per section (`segment:`, `missions:`, ...); keys must
be fields of the section's dataclass, so a typo is an error, not a silent default.
Command-line options that are given override the file; the resolved configuration
is what the job records (report.json, MLflow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def read_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    return data


def build(cls: type[T], section: str, file_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> T:
    """An instance of dataclass `cls` from a YAML section and CLI overrides (None = not given)."""
    values = dict(file_values.get(section) or {})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {section} option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)


def check_sections(file_values: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(file_values) - set(known))
    if unknown:
        raise ValueError(f"unknown config section(s) {', '.join(unknown)}; known: {', '.join(known)}")


def defaults_help(cls: type) -> str:
    """'name=default, ...' of a config dataclass, for --help texts."""
    return ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))
