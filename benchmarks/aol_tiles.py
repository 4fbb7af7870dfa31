"""An AOL-shaped log of any size made from the real AOL sample: the sample repeated
with fresh user ids and times shifted by whole weeks, split into collection files.

    .venv/bin/python benchmarks/aol_tiles.py ../shared/data/aol/aol-top1000-clicked.tsv.gz \
        --rows 36389567 --files 10 --output /tmp/aol-tiles

writes /tmp/aol-tiles/user-ct-test-collection-01.txt.gz ... -10, each with the AOL
header, sorted by user and time as the real collection is.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import polars as pl
import pyarrow as pa

AOL_HEADER = ["AnonID", "Query", "QueryTime", "ItemRank", "ClickURL"]


def tile(sample: str, rows: int, files: int, output: str, compress: bool = True) -> list[Path]:
    """Write `rows` rows in `files` AOL collection files; returns their paths."""
    base = pl.read_csv(
        sample, separator="\t", quote_char=None, infer_schema=False, has_header=True, new_columns=AOL_HEADER
    ).with_columns(pl.col("AnonID").cast(pl.Int64), pl.col("QueryTime").str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S"))
    copies = math.ceil(rows / base.height)
    span = int(base["AnonID"].max()) + 1
    per_file = math.ceil(copies / files)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f, first in enumerate(range(0, copies, per_file)):
        last = min(first + per_file, copies)
        frame = pl.concat(
            base.with_columns(
                pl.col("AnonID") + c * span,  # fresh users
                pl.col("QueryTime") + pl.duration(weeks=c % 13),  # a quarter's worth of shifts
            ).head(min(base.height, rows - c * base.height))
            for c in range(first, last)
        )
        frame = frame.sort("AnonID", "QueryTime", maintain_order=True).with_columns(
            pl.col("QueryTime").dt.strftime("%Y-%m-%d %H:%M:%S")
        )
        path = out / f"user-ct-test-collection-{f + 1:02d}.txt{'.gz' if compress else ''}"
        with pa.output_stream(str(path), compression="gzip" if compress else None) as stream:
            frame.write_csv(stream, separator="\t", quote_style="never")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sample")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--output", required=True)
    parser.add_argument("--no-gzip", action="store_true")
    args = parser.parse_args()
    for path in tile(args.sample, args.rows, args.files, args.output, compress=not args.no_gzip):
        print(path)


if __name__ == "__main__":
    main()
