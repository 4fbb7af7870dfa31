"""How the Ray jobs bring each user's events together, measured: through storage, as
they do, or through Ray Data's own hash shuffle.

    .venv/bin/python benchmarks/shuffle.py --rows 10000000

On the AOL-shaped tiled log of benchmarks/segment_ray.py (`--rows` of it, ten gzipped
files), each in a fresh process on a local Ray with 2 CPUs, the step that every Ray
job of sessionflow starts with: parse every file and gather every user's events into
one of `4 x CPUs` buckets, then one task per bucket (which here only counts its rows
and users, so that the movement of data is what is measured):

1. `staging`: what the jobs do (`workflows.distributed.staging.stage`): each parse task
   writes its events by bucket under the job's output location (local disk here; an
   object store on a cluster), each bucket task reads its bucket back;
2. `ray-shuffle`: the same parse tasks hand their events to Ray Data, and
   `groupby("_bucket", num_partitions=n).map_groups(...)` (Ray's hash shuffle through
   the object store, spilling to local disk when memory runs short) gives each
   bucket task its rows.

Prints wall time and peak memory of the whole process tree of each, and checks that
both saw every row, each bucket the same users.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aol_tiles import tile  # noqa: E402
from measure import run_measured  # noqa: E402


def staging_run(files: list[str], work: Path, buckets: int) -> list[dict]:
    import polars as pl
    import pyarrow as pa

    from sessions import storage
    from workflows.distributed.staging import bucket_dirs, per_directory, read_bucket, stage

    def count(batch: pa.Table, offsets: dict[int, int]) -> pa.Table:
        rows = []
        for directory in batch["dir"].to_pylist():
            events = read_bucket(directory, offsets, columns=["row_id", "user_id"])
            rows.append({"bucket": int(storage.name(directory).split("=")[1]), "rows": events.height,
                         "users": events["user_id"].n_unique()})  # fmt: skip
        return pa.Table.from_pylist(rows)

    staging = str(work / "staging")
    storage.remove(staging)
    _, offsets = stage(files, "aol", staging, buckets=buckets, columns=["row_id", "user_id", "ts", "query"])
    counted = per_directory(bucket_dirs(staging), count, {"offsets": offsets})
    storage.remove(staging)
    return counted.sort("bucket").to_dicts() if isinstance(counted, pl.DataFrame) else []


def shuffle_run(files: list[str], buckets: int) -> list[dict]:
    import polars as pl
    import pyarrow as pa
    import ray

    from sessions.buckets import user_bucket
    from sessions.formats import format_for
    from workflows.distributed.staging import collect

    def parse(batch: pa.Table) -> pa.Table:
        frames = []
        for path in batch["path"].to_pylist():
            for parsed in format_for("aol", path).parse_file(path):
                events = parsed.events.select("row_id", "user_id", "ts", "query")
                frames.append(events.with_columns(_bucket=user_bucket(pl.col("user_id"), buckets)))
        return pl.concat(frames).to_arrow()

    def count(group: pa.Table) -> pa.Table:
        frame = pl.from_arrow(group)
        return pa.table({"bucket": [int(frame["_bucket"][0])], "rows": [frame.height],
                         "users": [frame["user_id"].n_unique()]})  # fmt: skip

    items = ray.data.from_items([{"path": p} for p in files])
    events = items.map_batches(parse, batch_size=1, batch_format="pyarrow")
    counted = events.groupby("_bucket", num_partitions=buckets).map_groups(count, batch_format="pyarrow")
    return collect(counted).sort("bucket").to_dicts()


def child(mode: str, files: list[str], work: Path) -> None:
    from workflows.distributed.runtime import ray_runtime

    with ray_runtime(num_cpus=2):
        buckets = 8
        counts = staging_run(files, work, buckets) if mode == "staging" else shuffle_run(files, buckets)
    (work / f"{mode}.json").write_text(json.dumps(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", default="../shared/data/aol/aol-top1000-clicked.tsv.gz")
    parser.add_argument("--work", default="/tmp/sessionflow-bench")
    parser.add_argument("--rows", type=int, default=36_389_567)
    parser.add_argument("--child", choices=["staging", "ray-shuffle"], help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    if args.child:
        child(args.child, args.files, work)
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    log = work / f"log-{args.rows}"
    files = sorted(glob.glob(str(log / "*.txt.gz"))) or [str(p) for p in tile(args.sample, args.rows, 10, str(log))]
    print(f"input: {len(files)} gzipped AOL files, {args.rows:,} rows; {os.cpu_count()} CPUs")
    results = {}
    for mode in ("staging", "ray-shuffle"):
        seconds, peak = run_measured([sys.executable, __file__, "--child", mode, "--work", str(work), *files], ROOT)
        results[mode] = (seconds, peak, json.loads((work / f"{mode}.json").read_text()))
        print(f"{mode:<12} {seconds:8.1f} s  peak {peak:5.1f} GiB (process tree)")
    same = results["staging"][2] == results["ray-shuffle"][2]
    rows = sum(b["rows"] for b in results["staging"][2])
    print(f"rows gathered: {rows:,}; every bucket the same rows and users both ways: {same}")
    if not same:
        sys.exit("the two ways disagree")


if __name__ == "__main__":
    main()
