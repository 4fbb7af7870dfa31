"""Scoring a whole log: `sessionflow score` against sentence-transformers on every row.

    .venv/bin/python benchmarks/score.py                 # 2,000,000 rows, minilm-local, CPU
    .venv/bin/python benchmarks/score.py --gpu           # on a GPU machine: one actor per GPU

1. Builds (once, in --work) an AOL-shaped log with `sessionflow synth` (users issuing
   repeated queries, clicks as extra rows: 2M rows, about half of them distinct
   texts; the real AOL sample repeats more, 39% distinct), and logs an all-MiniLM-L6-v2
   session model (`minilm-local`, an arbitrary calibration: speed does not depend on
   it) to a store in --work.
2. Times, each in a fresh child process with the peak memory of its process tree:
   - the peer: sentence-transformers `model.encode` of the query of every row, in one
     process (the same max length, 32 tokens, batch size 256; reading the log not
     counted);
   - sessionflow: `sessionflow score` end to end (parse, encode each distinct text
     once on a local Ray, sessions, missions, write), with `--embeddings`.
3. Prints rows/s of both and their ratio (target: sessionflow at least 3x the peer).
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


def peer(log: Path, result: Path, gpu: bool) -> None:
    """The child of the peer: encode every row's query, time only the encoding."""
    import polars as pl
    import torch
    from sentence_transformers import SentenceTransformer

    from models.encoder import minilm_path

    torch.set_num_threads(os.cpu_count() or 1)
    queries = pl.read_csv(log, separator="\t", quote_char=None, infer_schema=False, columns=["Query"])["Query"]
    model = SentenceTransformer(minilm_path(), device="cuda" if gpu else "cpu")
    model.max_seq_length = 32
    start = time.perf_counter()
    vectors = model.encode(queries.fill_null("").to_list(), batch_size=256, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    result.write_text(json.dumps({"rows": len(vectors), "seconds": seconds}))


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
    with mlflow.start_run():
        encoder_dir = load_encoder("minilm-local").save(work / "minilm")
        uri = log_session_model(encoder_dir, Calibration(20.0, -14.0), "minilm-local", work / "model")
    uri_file.write_text(uri)
    return uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/sessionflow-bench-score")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--gpu", action="store_true", help="Both on the GPU: the peer's model, one actor per GPU.")
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer(args.peer, args.result, args.gpu)
        return

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    os.environ.update(env)
    log = work / f"aol-{args.rows}.tsv"
    cli = [sys.executable, "-m", "workflows.cli"]
    if not log.exists():
        users = max(1, round(args.rows * USERS / ROWS))
        run_measured([*cli, "synth", "--users", str(users), "--rows", str(args.rows), "-o", str(log)], ROOT, env)
    uri = session_model(work)

    import polars as pl

    queries = pl.read_csv(log, separator="\t", quote_char=None, infer_schema=False, columns=["Query"])["Query"]
    rows, distinct = len(queries), queries.n_unique()
    print(f"log: {rows:,} rows, {distinct:,} distinct queries ({distinct / rows:.0%}); {os.cpu_count()} CPUs")

    device = ["--gpu"] if args.gpu else []
    peer_seconds, peer_gib = run_measured(
        [sys.executable, __file__, "--peer", str(log), "--result", str(work / "peer.json"), *device], ROOT, env
    )
    encode_seconds = json.loads((work / "peer.json").read_text())["seconds"]

    out = work / "scored"
    gpus = ["--gpus-per-worker", "1"] if args.gpu else []
    command = [*cli, "score", str(log), "-f", "aol", "--session-model", uri, "--embeddings", *gpus, "-o", str(out)]
    ours_seconds, ours_gib = run_measured(command, ROOT, env)
    report = json.loads((out / "report.json").read_text())
    assert report["rows_ok"] == rows, report

    peer_rate, ours_rate = rows / encode_seconds, rows / ours_seconds
    print(f"{'run':<52}{'seconds':>9}{'rows/s':>10}{'peak GiB':>10}")
    print(f"{'sentence-transformers encode, every row (encode only)':<52}{encode_seconds:>9.1f}{peer_rate:>10,.0f}"
          f"{peer_gib:>10.1f}")  # fmt: skip
    print(f"{'  the same child process, end to end':<52}{peer_seconds:>9.1f}{rows / peer_seconds:>10,.0f}")
    print(f"{'sessionflow score, end to end (local Ray)':<52}{ours_seconds:>9.1f}{ours_rate:>10,.0f}{ours_gib:>10.1f}")
    print(f"phases: {report['phase_seconds']}; distinct texts encoded: {report['distinct_texts']:,}")
    print(f"sessionflow / peer: {ours_rate / peer_rate:.2f}x (target: at least 3x)")


if __name__ == "__main__":
    main()
