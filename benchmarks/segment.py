"""Session segmentation at the AOL collection's size, against two peers.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/segment.py \
        --sample ../shared/data/aol/aol-top1000-clicked.tsv.gz

(Where PYTHONDONTWRITEBYTECODE is set and no bytecode exists yet, every process compiles
numba's and scipy's modules from source, about 2 s here: `make test` unsets it too.)

1. Builds (once, in --work) a 36,389,567-row AOL-shaped log: the real sample tiled
   with fresh user ids and shifted times, as ten gzipped collection files.
2. Times `sessionflow segment --method cascade --engine local` on it in a child process (parse +
   sessions + missions + write), with its peak RSS and the seconds of each of its steps
   (the report's `profile_seconds`: read, order, lexicon, sessions, missions, write),
   next to (a) polars only reading the same files (`pl.read_csv`, all columns as text).
3. On a 1M-row slice, runs a straightforward pandas implementation of the same
   cascade rules (pandas for the table work, Python per pair for the lexical
   evidence) and sessionflow's `segment` (sessions only, the same rules), checks that
   both give the same sessions, and prints rows/s of each: sessionflow's first call
   (numba's start in the process, 0.2-1 s by machine, and other first uses included) and the median of the five
   calls after it (kernels loaded, as pandas' modules are before its call; one call
   varies by 10-20% on this machine).

Prints ratios, never a bare pass/fail on time.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aol_tiles import AOL_HEADER, tile

from sessions.ingest import read_logs
from sessions.io import MemorySink
from sessions.segment import SegmentConfig, segment
from sessions.text import STOPWORDS

ROWS = 36_389_567
SLICE = 1_000_000
WARM_CALLS = 5  # the calls after the first, kernels loaded as pandas' modules are: their median


# ---- the peer: the same cascade rules, written the straightforward pandas way ----
_NON_ALNUM = re.compile(r"[\W_]+")
_STOP = re.compile(r"\b(?:" + "|".join(STOPWORDS) + r")\b")
_SPACES = re.compile(r" {2,}")


def _normalize(q: str) -> str:
    return _SPACES.sub(" ", _STOP.sub(" ", _NON_ALNUM.sub(" ", q.lower()))).strip()


def _grams(norm: str) -> set[str]:
    if not norm:
        return set()
    padded = f" {norm} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _close(a: str, b: str, same: bool, cfg: SegmentConfig) -> bool:
    if same:
        return True
    ta, tb = set(a.split()) if a else set(), set(b.split()) if b else set()
    if ta and tb and len(ta & tb) / min(len(ta), len(tb)) >= cfg.min_overlap:
        return True
    ga, gb = _grams(a), _grams(b)
    union = len(ga | gb)
    return union > 0 and len(ga & gb) / union >= cfg.min_jaccard


def _contained(a: str, b: str, share: float) -> bool:
    ga = _grams(a)
    return bool(ga) and len(ga & _grams(b)) / len(ga) >= share


def pandas_cascade(path: str, cfg: SegmentConfig) -> pd.DataFrame:
    """row_id, session_id by the cascade rules, in pandas."""
    df = pd.read_csv(
        path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False, names=AOL_HEADER, header=0
    )
    df["row_id"] = range(len(df))
    df["ts"] = pd.to_datetime(df["QueryTime"], format="%Y-%m-%d %H:%M:%S")
    df = df.sort_values(["AnonID", "ts", "row_id"], kind="stable").reset_index(drop=True)
    df["norm"] = df["Query"].map(_normalize)
    df["first"] = df["AnonID"] != df["AnonID"].shift()
    gap = df.groupby("AnonID")["ts"].diff().dt.total_seconds().fillna(0)
    long_gap = gap > cfg.break_after_minutes * 60
    middle = ~df["first"] & ~long_gap & (gap > cfg.join_within_s)
    # one query: the same normalised text; for queries without terms, case and spacing
    # variants of one; a blank query is the same as no other
    bare = df["norm"] == ""
    raw = df.loc[bare, "Query"].str.lower().str.split().str.join(" ")
    ident, blank = df["norm"].copy(), pd.Series(False, index=df.index)
    ident[bare], blank[bare] = "\x00" + raw, raw == ""
    same = ((ident == ident.shift()) & ~blank).to_numpy()
    norms = df["norm"].tolist()
    pairs = zip(middle.tolist(), [None, *norms[:-1]], norms, same.tolist(), strict=True)
    close = [m and _close(prev, norm, s, cfg) for m, prev, norm, s in pairs]
    breaks = (df["first"] | long_gap | (middle & ~pd.Series(close))).to_numpy().copy()
    # The session so far: one pass over the rows the pairwise decisions separate.
    start_of = pd.Series(range(len(df))).where(breaks).ffill().astype(int).to_numpy()
    rejoin = []
    for i in np.flatnonzero(breaks & middle.to_numpy()):
        previous_start = start_of[i - 1]
        members: list[str] = []  # the session's last distinct texts with 3-grams, nearest first
        for m in range(i - 1, previous_start - 1, -1):
            if norms[m] and norms[m] not in members:
                members.append(norms[m])
                if len(members) == cfg.so_far_queries:
                    break
        if any(_contained(norms[i], member, cfg.min_containment) for member in members):
            rejoin.append(i)
    breaks[rejoin] = False
    df["n"] = pd.Series(breaks).astype(int).groupby(df["AnonID"]).cumsum() - 1
    df["session_id"] = df["AnonID"] + "/" + df["n"].astype(str)
    return df[["row_id", "session_id"]]


def sessionflow_sessions(path: str, cfg: SegmentConfig) -> pl.DataFrame:
    events, rejected = MemorySink(["row_id", "user_id", "ts", "query"]), MemorySink()
    read_logs([path], "aol", events, rejected)
    return segment(events.frame(), cfg).select("row_id", "session_id")


# ---- measurements ----
def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def polars_read(files: list[str]) -> int:
    rows = 0
    for f in files:
        rows += pl.read_csv(f, separator="\t", quote_char=None, infer_schema=False).height
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default="../shared/data/aol/aol-top1000-clicked.tsv.gz")
    parser.add_argument("--work", default="/tmp/sessionflow-bench")
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    work = Path(args.work)
    files = sorted(glob.glob(str(work / "log" / "*.txt.gz")))
    if not files:
        if not Path(args.sample).is_file():
            sys.exit(f"--sample {args.sample}: no such file (the AOL sample of ../shared/data, or its path)")
        files = [str(p) for p in tile(args.sample, args.rows, 10, str(work / "log"))]
    cfg = SegmentConfig()

    read_rows, read_s = timed(polars_read, files)
    print(f"input: {len(files)} gzipped AOL files, {read_rows:,} rows")
    print(f"(a) polars read only: {read_s:.1f} s ({read_rows / read_s:,.0f} rows/s)")

    cmd = [sys.executable, "-m", "workflows", "segment", *files, "--format", "aol", "--engine", "local"]
    cmd += ["--output", str(work / "sessions")]
    _, ours_s = timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    report = json.loads((work / "sessions" / "report.json").read_text())
    print(
        f"sessionflow segment --method cascade: {ours_s:.1f} s ({read_rows / ours_s:,.0f} rows/s), "
        f"peak RSS {peak_gib:.1f} GiB, phases {report['phase_seconds']}, "
        f"{report['sessions']:,} sessions, {report['missions']:,} missions"
    )
    print(f"segmenting costs {ours_s / read_s:.2f}x the bare read")
    profile = report["profile_seconds"]  # seconds by step, summed over the threads that ran it
    total = sum(profile.values())
    print("steps (seconds summed over threads, share of their sum): " + ", ".join(
        f"{step} {seconds:.1f} s {seconds / total:.0%}" for step, seconds in profile.items()))  # fmt: skip

    slice_path = work / "slice-1m.tsv"
    if not slice_path.exists():
        first = pl.read_csv(files[0], separator="\t", quote_char=None, infer_schema=False, n_rows=SLICE)
        first.write_csv(slice_path, separator="\t", quote_style="never")
    ours, ours_slice_s = timed(sessionflow_sessions, str(slice_path), cfg)  # numba's first use in this process
    warm_s = statistics.median(timed(sessionflow_sessions, str(slice_path), cfg)[1] for _ in range(WARM_CALLS))
    peer, peer_s = timed(pandas_cascade, str(slice_path), cfg)
    slice_rows = peer.shape[0]  # SLICE, or the first file's rows when the log is smaller
    same = ours.sort("row_id")["session_id"].to_list() == peer.sort_values("row_id")["session_id"].tolist()
    print(
        f"(b) {slice_rows:,}-row slice: pandas {slice_rows / peer_s:,.0f} rows/s, "
        f"sessionflow {slice_rows / ours_slice_s:,.0f} rows/s: "
        f"{peer_s / ours_slice_s:.1f}x (its first call in the process, numba's start included; "
        f"the median of the {WARM_CALLS} calls after it: {slice_rows / warm_s:,.0f} rows/s, {peer_s / warm_s:.1f}x); "
        f"same sessions: {same}"
    )
    if not same:
        sys.exit("the two implementations disagree")


if __name__ == "__main__":
    main()
