"""How a synthetic AOL-style log compares with the real AOL sample.

    .venv/bin/sessionflow synth --users 657426 --rows 36389567 --output /tmp/aol36m.tsv
    .venv/bin/python benchmarks/synth_stats.py /tmp/aol36m.tsv ../shared/data/aol/aol-top1000-clicked.tsv.gz

The real sample holds only clicked queries of the 1,000 users with most clicks, so
the synthetic log is also shown restricted to its clicked rows: that is the like-for-
like comparison for gaps and session lengths. Queries per user are not comparable
(the sample picks the heaviest users; the full log, like the synthetic one, is
heavy-tailed).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

from sessions.ingest import ingest
from sessions.io import scan_table
from sessions.stats import log_stats


def main(synthetic: str, real: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ingest([real], "aol", Path(tmp) / "real")
        ingest([synthetic], "aol", Path(tmp) / "synth")
        real_events = scan_table(Path(tmp) / "real" / "events.parquet")  # a dataset: parts and a manifest
        synth_events = scan_table(Path(tmp) / "synth" / "events.parquet")
        columns = {
            "real sample": log_stats(real_events),
            "synth, clicked rows": log_stats(synth_events.filter(pl.col("click_url").is_not_null())),
            "synth, all rows": log_stats(synth_events),
        }
    names = list(columns)
    print(f"{'statistic':<28}" + "".join(f"{n:>22}" for n in names))
    for group, stats in columns[names[0]].items():
        for key in stats:
            label = f"{group}.{key}"
            print(f"{label:<28}" + "".join(f"{columns[n][group][key]:>22,.2f}" for n in names))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
