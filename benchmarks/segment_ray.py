"""The 36M-row segmentation benchmark through Ray Data, against the one-process path.

    .venv/bin/python benchmarks/segment_ray.py --sample ../shared/data/aol/aol-top1000-clicked.tsv.gz

Uses (or builds, as benchmarks/segment.py does) the 36,389,567-row AOL-shaped log of
ten gzipped files, and segments it with `cascade`, each run in a fresh child process:

1. the single-process polars path (`--engine local`);
2. Ray Data on a local Ray with 2 CPUs (this machine's all);
3. Ray Data on a local Ray with 1 CPU, for the scaling estimate;
4. (`s3`) run 2 again with the log read from and every output, staging included,
   written to an S3 endpoint on 127.0.0.1 (moto's server, standing in for a cloud
   object store; its own memory is not counted), as on a cluster without a shared disk.

Prints wall time, rows/s and the peak memory of the whole process tree (driver, raylet
and workers, sampled), the ratio of each Ray run to the local one and of the S3 run
to the local-disk one, checks that the sessions are identical, and turns the 1- and
2-worker measurements into an estimate of what each added node brings. `--runs`
chooses the runs (all by default).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aol_tiles import tile  # noqa: E402
from measure import run_measured  # noqa: E402

ROWS = 36_389_567


def run_child(engine: str, cpus: int, files: list[str], output: str) -> None:
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


def measure(engine: str, cpus: int, files: list[str], output: str, env: dict | None = None) -> dict:
    """Wall time, peak tree RSS and the report of one run in a child process."""
    from sessions import storage

    cmd = [sys.executable, __file__, "--child", engine, "--cpus", str(cpus), "--output", output, *files]
    seconds, peak_gib = run_measured(cmd, ROOT, env)
    report = json.loads(storage.read_text(storage.join(output, "report.json")))
    return {"seconds": seconds, "peak_gib": peak_gib, "report": report}


def sessions_of(output: str) -> pl.DataFrame:
    from sessions import storage
    from sessions.io import read_table

    return read_table(storage.join(output, "sessions.parquet")).sort("row_id")


@contextlib.contextmanager
def s3_endpoint(work: Path) -> Iterator[dict]:
    """moto's S3 server on 127.0.0.1 with a bucket `bench`; the AWS variables that point at it."""
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(work / "moto.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    os.environ.update(env)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(env["AWS_ENDPOINT_URL"], timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default="../shared/data/aol/aol-top1000-clicked.tsv.gz")
    parser.add_argument("--work", default="/tmp/sessionflow-bench")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--runs", default="local,ray2,ray1,s3", help="runs to do, of local, ray2, ray1, s3")
    parser.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
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

    wanted = set(args.runs.split(","))
    plan = {"local": ("local (one process)", "local", 0), "ray2": ("ray, 2 CPUs", "ray", 2),
            "ray1": ("ray, 1 CPU", "ray", 1)}  # fmt: skip
    runs, outputs = {}, {}
    for key, (name, engine, cpus) in plan.items():
        if key in wanted:
            outputs[name] = str(work / f"out-{key}")
            runs[name] = measure(engine, cpus, files, outputs[name])
    with contextlib.ExitStack() as stack:
        if "s3" in wanted:
            env = stack.enter_context(s3_endpoint(work))
            from sessions import storage

            tick = time.perf_counter()
            remote = [f"s3://bench/log/{Path(f).name}" for f in files]
            for local, uri in zip(files, remote, strict=True):
                storage.copy_file(local, uri)
            print(f"uploaded the log to the endpoint in {time.perf_counter() - tick:.0f} s (not counted)")
            name = "ray, 2 CPUs, S3"
            outputs[name] = "s3://bench/out-ray2"
            runs[name] = measure("ray", 2, remote, outputs[name], {**os.environ, **env})
        report(runs, outputs)


def report(runs: dict[str, dict], outputs: dict[str, str]) -> None:
    """The table, the sessions compared to the first run's, the ratios and the scaling estimate."""
    first = next(iter(runs))
    rows = runs[first]["report"]["rows_in"]
    base = runs[first]["seconds"]
    print(f"{'run':<22}{'seconds':>9}{'rows/s':>12}{'peak GiB':>10}{f'vs {first}':>14}  phases")
    for name, r in runs.items():
        phases = r["report"].get("phase_seconds", {})
        print(
            f"{name:<22}{r['seconds']:>9.1f}{rows / r['seconds']:>12,.0f}{r['peak_gib']:>10.1f}"
            f"{r['seconds'] / base:>13.2f}x  {phases}"
        )
    reference = sessions_of(outputs[first])
    for name in list(runs)[1:]:
        same = sessions_of(outputs[name]).equals(reference)
        print(f"{name}: sessions equal to {first}'s: {same}")
        if not same:
            sys.exit("the runs disagree")
    if "ray, 2 CPUs, S3" in runs and "ray, 2 CPUs" in runs:
        ratio = runs["ray, 2 CPUs, S3"]["seconds"] / runs["ray, 2 CPUs"]["seconds"]
        print(f"S3 / local disk (Ray, 2 CPUs): {ratio:.2f}x (target: within 1.3x)")
    if not {"ray, 1 CPU", "ray, 2 CPUs"} <= set(runs):
        return
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
        f"n 16-CPU nodes: about {ROWS / (per_worker * efficiency * 16):,.0f} s / n + the driver's fixed costs"
    )


if __name__ == "__main__":
    main()
