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


AOL_HEADER = "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n"


def aol_parts_resaved_by_pandas(directory: Path) -> list[Path]:
    """Two parts of an AOL log as a user had them: `part-1.txt` as AOL distributes it,
    `part-2.txt` read and written back by pandas (`read_csv(sep="\\t", quoting=3)`,
    `to_csv(sep="\\t", index=False)`), whose one row without an AnonID and queries
    without a click make pandas write both columns as floats (`1019251.0`, `3.0`). The
    user 1019251 has 399 rows in part-1 and 245 in part-2; in part-2 the user 1012899
    clicked the results 3 and 10. 2,500 rows, the one without an AnonID `empty_user`."""
    import pandas as pd

    def row(user: object, i: int, rank: object = "", url: str = "") -> str:
        return f"{user}\tquery {i}\t2006-04-{1 + i // 1000:02d} {i // 60 % 24:02d}:{i % 60:02d}:00\t{rank}\t{url}\n"

    first = [row(1019251, i) for i in range(399)] + [row(1019379 + i % 7, i) for i in range(399, 1500)]
    second = [row(1019251, i) for i in range(1500, 1745)] + [row("", 1745)]
    second += [row(1012899, 1746, 3, "http://www.audi.com/"), row(1012899, 1747, 10, "http://www.acura.com/")]
    second += [row(10211640 + i % 5, i) for i in range(1748, 2500)]
    (directory / "part-1.txt").write_text(AOL_HEADER + "".join(first))
    raw = io.StringIO(AOL_HEADER + "".join(second))
    pd.read_csv(raw, sep="\t", quoting=3).to_csv(directory / "part-2.txt", sep="\t", index=False)
    return [directory / "part-1.txt", directory / "part-2.txt"]
