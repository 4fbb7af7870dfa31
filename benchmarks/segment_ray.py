"""The 36M-row segmentation benchmark through Ray Data, against the one-process path.

    .venv/bin/python benchmarks/segment_ray.py --sample ../shared/data/aol/aol-top1000-clicked.tsv.gz

Uses (or builds, as benchmarks/segment.py does) the 36,389,567-row AOL-shaped log of
ten gzipped files, and segments it with `cascade`, each run in a fresh child process:

1. the single-process polars path (`--engine local`);
2. Ray Data on a local Ray with 2 CPUs (this machine's all);
3. Ray Data on a local Ray with 1 CPU, for the scaling estimate.

Prints wall time, rows/s and the peak memory of the whole process tree (driver, raylet
and workers, sampled), the ratio of each Ray run to the local one, checks that the
sessions are identical, and turns the 1- and 2-worker measurements into an estimate
of what each added node brings.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aol_tiles import tile  # noqa: E402
from measure import run_measured  # noqa: E402

ROWS = 36_389_567


def run_child(engine: str, cpus: int, files: list[str], output: Path) -> None:
    """One segmentation run (in this process): the code the CLI runs."""
    from sessions.missions import MissionConfig
    from sessions.segment import SegmentConfig

    seg, missions = SegmentConfig(), MissionConfig()
    if engine == "local":
        from sessions.pipeline import segment_logs

        segment_logs(files, "aol", output, seg, missions)
        return
    from workflows.distributed.runtime import ray_runtime

    with ray_runtime(num_cpus=cpus):
        from workflows.distributed import data as ray_jobs

        ray_jobs.segment(files, "aol", output, seg, missions)


def measure(engine: str, cpus: int, files: list[str], output: Path) -> dict:
    """Wall time, peak tree RSS and the report of one run in a child process."""
    cmd = [sys.executable, __file__, "--child", engine, "--cpus", str(cpus), "--output", str(output), *files]
    seconds, peak_gib = run_measured(cmd, ROOT)
    return {"seconds": seconds, "peak_gib": peak_gib, "report": json.loads((output / "report.json").read_text())}


def sessions_of(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path / "sessions.parquet").sort("row_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default="../shared/data/aol/aol-top1000-clicked.tsv.gz")
    parser.add_argument("--work", default="/tmp/sessionflow-bench")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.cpus, args.files, args.output)
        return

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    work = Path(args.work)
    files = sorted(glob.glob(str(work / "log" / "*.txt.gz")))
    if not files:
        files = [str(p) for p in tile(args.sample, args.rows, 10, str(work / "log"))]
    print(f"input: {len(files)} gzipped AOL files; machine: {os.cpu_count()} CPUs")

    runs = {
        "local (one process)": measure("local", 0, files, work / "out-local"),
        "ray, 2 CPUs": measure("ray", 2, files, work / "out-ray2"),
        "ray, 1 CPU": measure("ray", 1, files, work / "out-ray1"),
    }
    rows = runs["local (one process)"]["report"]["rows_in"]
    base = runs["local (one process)"]["seconds"]
    print(f"{'run':<22}{'seconds':>9}{'rows/s':>12}{'peak GiB':>10}{'vs local':>10}  phases")
    for name, r in runs.items():
        phases = r["report"].get("phase_seconds", {})
        print(
            f"{name:<22}{r['seconds']:>9.1f}{rows / r['seconds']:>12,.0f}{r['peak_gib']:>10.1f}"
            f"{r['seconds'] / base:>9.2f}x  {phases}"
        )

    reference = sessions_of(work / "out-local")
    for name in ("out-ray2", "out-ray1"):
        same = sessions_of(work / name).equals(reference)
        print(f"{name}: sessions equal to the local engine's: {same}")
        if not same:
            sys.exit("the engines disagree")

    one, two = runs["ray, 1 CPU"]["seconds"], runs["ray, 2 CPUs"]["seconds"]
    efficiency = one / two / 2
    print(
        f"scaling: 1 -> 2 workers is {one / two:.2f}x faster ({efficiency:.0%} parallel efficiency on one "
        f"2-core machine, whose two workers share memory bandwidth and disk)"
    )
    per_worker = rows / one
    print(
        f"estimate: each added worker CPU adds about {per_worker * efficiency:,.0f} rows/s; a node of k CPUs "
        f"about k x that, while the shared storage keeps up; the full AOL collection ({ROWS:,} rows) on "
        f"n 16-CPU nodes: about {rows / (per_worker * efficiency * 16):,.0f} s / n + the driver's fixed costs"
    )


if __name__ == "__main__":
    main()
