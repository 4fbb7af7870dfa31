"""CPU seconds of reading and of segmenting the 1M-row AOL slice, for comparing commits.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/segment_cpu.py \
        --slice /tmp/sessionflow-bench/slice-1m.tsv

The slice is the one `benchmarks/segment.py` writes into its --work directory. Prints the
median of five calls (after one that loads the kernels) of `sessions.ingest.read_logs`
and of `sessions.segment.segment`, in CPU seconds of the process (all its threads) and
wall seconds. CPU time moves less than wall time with what else the machine runs, so
two commits are best compared by running this alternately in each one's checkout (a
`git worktree` with PYTHONPATH set to it).
"""

from __future__ import annotations

import argparse
import statistics
import time

from sessions.ingest import read_logs
from sessions.io import MemorySink
from sessions.segment import SegmentConfig, segment


def once(path: str, cfg: SegmentConfig) -> tuple[float, float, float, float]:
    """(read CPU s, segment CPU s, read wall s, segment wall s) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    events, rejected = MemorySink(["row_id", "user_id", "ts", "query"]), MemorySink()
    read_logs([path], "aol", events, rejected)
    frame = events.frame()
    read_cpu, read_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    segment(frame, cfg)
    return read_cpu, time.process_time() - cpu, read_wall, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slice", default="/tmp/sessionflow-bench/slice-1m.tsv")
    args = parser.parse_args()
    cfg = SegmentConfig()
    once(args.slice, cfg)  # numba's kernels loaded
    runs = [once(args.slice, cfg) for _ in range(5)]
    med = [statistics.median(run[i] for run in runs) for i in range(4)]
    print(f"read: {med[0]:.3f} s CPU, {med[2]:.3f} s wall; segment: {med[1]:.3f} s CPU, {med[3]:.3f} s wall")


if __name__ == "__main__":
    main()
