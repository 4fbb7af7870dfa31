"""Mission linking on heavy users: one user's long history of unrelated topics.

    .venv/bin/python benchmarks/heavy_users.py               # the shipped rule
    .venv/bin/python benchmarks/heavy_users.py --single      # single linkage, for comparison

Logs from `synth.heavy.topic_stream` (topics of two WordNet nouns drawn by frequency,
5 queries each, gaps 1 s to 7 min): 10,000 and 100,000 queries of one user, and the
10,000 spread over 1,000 users. Prints a Markdown row per log: missions, the largest
(queries, topics), pair precision and F1 against the topics, and seconds for
sessions and missions (`sessions.pipeline.sessions_with_missions`, cascade).
"""

from __future__ import annotations

import argparse
import time

import polars as pl

import sessions.missions
from sessions.metrics import segmentation_scores
from sessions.missions import MissionConfig, first_of_component
from sessions.pipeline import sessions_with_missions
from sessions.segment import SegmentConfig
from synth.heavy import topic_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", action="store_true", help="missions as connected components (single linkage)")
    args = parser.parse_args()
    if args.single:
        sessions.missions.grow_missions = lambda n, a, b, terms: first_of_component(n, a, b)
    print("| queries | users | missions | largest mission | pair P | pair F1 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for n, users in ((10_000, 1), (100_000, 1), (10_000, 1_000)):
        events = topic_stream(n, users=users)
        start = time.perf_counter()
        found = sessions_with_missions(events, SegmentConfig(), MissionConfig())
        seconds = time.perf_counter() - start
        found = found.join(events.select("row_id", "gold_mission"), on="row_id")
        sizes = found.group_by("mission_id").agg(pl.len(), topics=pl.col("gold_mission").n_unique())
        largest = sizes.sort("len", descending=True).row(0, named=True)
        scores = segmentation_scores(found, "mission_id", "gold_mission")
        print(
            f"| {n:,} | {users:,} | {sizes.height:,} | {largest['len']:,} queries, {largest['topics']:,} topics "
            f"| {scores['precision']:.3f} | {scores['f1']:.3f} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
