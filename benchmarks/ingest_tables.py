"""Reading a table of one's own (`--format table`) in each kind, against pandas.

    .venv/bin/python benchmarks/ingest_tables.py --rows 1000000

Writes the real AOL sample, tiled to --rows rows (`aol_tiles.tile`), with one query in
50 made a phrase query in double quotes, as the tables people export: a CSV as polars
writes it, a raw TSV as AOL's logs are written (quotes as text), a TSV as pandas
writes it (`to_csv(sep="\t")`: quoted, quotes doubled), JSON lines and Parquet, each
with the columns `u`, `t` (text times `2006-03-01 07:17:12`; typed in Parquet) and
`q`. For each, in this process: sessionflow's reader (`sessions.ingest.read_logs`,
every record checked, into memory) against the peer, pandas reading the same file and
parsing its times (`read_csv(dtype=str, keep_default_na=False, quoting=...)` +
`to_datetime(format="ISO8601")`, `read_json(lines=True)`, `read_parquet`), which checks
nothing. Every file is read by sessionflow once before the timed reads (numba's start,
about 0.5 s on the first raw TSV read of a process, is then outside them, as pandas'
imports are; and both readers find the files in the page cache). Prints the seconds
of each and the ratio, and checks that every kind gives the texts written.

Prints ratios, never a pass/fail on time.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aol_tiles import tile

from sessions.formats import ReadOptions
from sessions.ingest import read_logs
from sessions.io import MemorySink


def write_tables(sample: str, rows: int, work: Path) -> tuple[dict[str, Path], list[str]]:
    """The tiled log as each kind of table, written once into `work`; and its texts."""
    paths = {
        "csv (polars)": work / "log.csv",
        "tsv (raw, as AOL)": work / "raw.tsv",
        "tsv (pandas, CSV-quoted)": work / "pandas.tsv",
        "jsonl": work / "log.jsonl",
        "parquet": work / "log.parquet",
    }
    (source,) = tile(sample, rows, 1, str(work / "aol"), compress=False)
    log = pl.read_csv(source, separator="\t", quote_char=None, infer_schema=False)
    phrase = pl.int_range(pl.len()) % 50 == 0
    table = log.select(u="AnonID", t="QueryTime", q=pl.col("Query").fill_null("x")).with_columns(
        q=pl.when(phrase).then('"' + pl.col("q") + '"').otherwise("q")
    )
    table.write_csv(paths["csv (polars)"])
    lines = table.select(pl.concat_str("u", "t", "q", separator="\t"))["u"]
    paths["tsv (raw, as AOL)"].write_text("u\tt\tq\n" + "\n".join(lines) + "\n")
    table.to_pandas().to_csv(paths["tsv (pandas, CSV-quoted)"], sep="\t", index=False)
    table.write_ndjson(paths["jsonl"])
    typed = table.with_columns(pl.col("t").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S"))
    typed.write_parquet(paths["parquet"])
    return paths, table["q"].to_list()


def pandas_read(path: Path) -> list[str]:
    """The peer: pandas reads the table and its times; the texts read."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)["q"].tolist()
    if path.suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, dtype={"u": str, "q": str, "t": str})
    else:
        raw = path.name == "raw.tsv"
        frame = pd.read_csv(path, sep="," if path.suffix == ".csv" else "\t", dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_NONE if raw else csv.QUOTE_MINIMAL)  # fmt: skip
    frame["t"] = pd.to_datetime(frame["t"], format="ISO8601", utc=True)
    return frame["q"].tolist()


def sessionflow_read(path: Path) -> list[str]:
    """sessionflow's reader of `--format table`, into memory: the texts read."""
    events, rejected = MemorySink(["row_id", "query"]), MemorySink()
    read_logs([path], "table", events, rejected, options=ReadOptions(map="user=u,time=t,text=q"))
    return events.frame().sort("row_id")["query"].to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default="../shared/data/aol/aol-top1000-clicked.tsv.gz")
    parser.add_argument("--work", default="/tmp/sessionflow-bench-tables")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paths, texts = write_tables(args.sample, args.rows, work)
    for path in paths.values():  # numba's start (the raw TSV's first read: about 0.5 s, once a process, as pandas'
        sessionflow_read(path)  # imports are before its reads), and every file in the page cache for both readers
    for kind, path in paths.items():
        start = time.perf_counter()
        ours = sessionflow_read(path)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = pandas_read(path)
        peer_s = time.perf_counter() - start
        print(
            f"{kind}: {len(texts):,} rows; sessionflow {ours_s:.2f} s ({len(texts) / ours_s:,.0f} rows/s), "
            f"pandas {peer_s:.2f} s: sessionflow {peer_s / ours_s:.2f}x pandas' speed; "
            f"texts as written: sessionflow {ours == texts}, pandas {theirs == texts}"
        )


if __name__ == "__main__":
    main()
