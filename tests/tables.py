"""Tables written as each kind's writers write them, for the tests of reading any table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_table(path: Path, names: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A table of columns `names` as each kind's writers write it (by the name's suffix):
    Arrow's Parquet, `json.dumps` lines, Python's `csv` (a tab for `.tsv`)."""
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_arrays([pa.array(column) for column in zip(*rows, strict=True)], names), path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(names, row, strict=True))) + "\n" for row in rows))
    else:
        text = io.StringIO(newline="")
        csv.writer(text, delimiter="\t" if path.suffix == ".tsv" else ",", lineterminator="\n").writerows(
            [names, *rows]
        )
        path.write_text(text.getvalue(), encoding="utf-8")
