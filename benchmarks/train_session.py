"""Training throughput of the session model against sentence-transformers, same run.

    .venv/bin/python benchmarks/train_session.py --pairs out/aol-pairs --model minilm-local

On the same training examples (anchor, positive, hard negative; `sessions.pairs.triplets`
of a `mine` output), the same model, batch size and sequence length, in this order:

1. the peer: sentence-transformers' `MultipleNegativesRankingLoss` (in-batch and hard
   negatives, scale 20 = temperature 0.05) on a `SentenceTransformer` of the same
   weights, in a plain loop in this process (AdamW, the same learning rate);
2. sessionflow's Ray Train loop (`sessionflow train session`), one worker using every
   CPU, read from the per-step throughput it logs to MLflow;
3. the same with two DDP workers (gloo; nccl on GPUs, skipped with one GPU), each half
   the batch (the same global batch).

Warm-up steps are left out of every figure; rates are training pairs (examples) per
second, and the ratio of (2) to (1) is printed. `--gpu` runs (2) and (3) on GPUs and
the peer on the first one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.encoder import CLUSTER_DEFAULT, MINILM_LOCAL, minilm_path  # noqa: E402
from workflows.jobs.train_session import SessionTrainConfig, TrainSessionJob, run, training_data  # noqa: E402


def peer_pairs_per_s(examples: pl.DataFrame, model: str, batch: int, steps: int, warmup: int, gpu: bool) -> float:
    """sentence-transformers: MNRL on (anchor, positive, negative), a plain training loop."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    device = "cuda" if gpu else "cpu"
    st = SentenceTransformer(minilm_path() if model == MINILM_LOCAL else model, device=device)
    st.max_seq_length = 32
    loss_fn = MultipleNegativesRankingLoss(st, scale=20.0)
    optimizer = torch.optim.AdamW(st.parameters(), lr=3e-5, weight_decay=0.01)
    st.train()
    times = []
    for step in range(steps):
        rows = examples[np.arange(step * batch, (step + 1) * batch) % examples.height]  # past the end: again
        start = time.perf_counter()
        features = []
        for column in ("anchor", "positive", "negative"):
            tokens = getattr(st, "preprocess", st.tokenize)(rows[column].to_list())  # `tokenize` before v6
            features.append({k: v.to(device) for k, v in tokens.items() if isinstance(v, torch.Tensor)})
        with torch.autocast(device, dtype=torch.bfloat16, enabled=gpu):
            loss = loss_fn(features, None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times[warmup:])


def ours_pairs_per_s(pairs: Path, model: str, workers: int, batch: int, steps: int, warmup: int, gpu: bool) -> float:
    """sessionflow's Ray Train loop: the median of the per-step rates it logs."""
    from mlflow.tracking import MlflowClient

    cfg = SessionTrainConfig(
        model=model, workers=workers, batch_size=batch // workers, max_steps=steps, eval_every=steps,
        max_val_pairs=200, gpu=gpu, lr=3e-5, epochs=steps,  # the steps decide, as the peer's loop (past the end: again)
    )  # fmt: skip
    job = TrainSessionJob(pairs=str(pairs), session=cfg, experiment="benchmark-train-session", register=False)
    outcome = run(job)
    history = MlflowClient().get_metric_history(outcome.run_id, "pairs_per_s")
    rates = [m.value for m in sorted(history, key=lambda m: m.step) if m.step > warmup]
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True, help="a `sessionflow mine` output directory")
    parser.add_argument("--model", default=MINILM_LOCAL, help=f"{MINILM_LOCAL} or a DistilBERT-shaped model "
                        f"(e.g. {CLUSTER_DEFAULT}, or a local directory)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args()
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu: no GPU is visible to torch here")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    import mlflow

    if mlflow.get_experiment_by_name("benchmark-train-session") is None:  # artifacts beside the store, not in the cwd
        mlflow.create_experiment("benchmark-train-session", artifact_location=str(work / "artifacts"))
    torch.set_num_threads(os.cpu_count() or 1)

    cfg = SessionTrainConfig(model=args.model, max_val_pairs=200)
    train, _ = training_data(args.pairs, cfg)  # the order the Ray loop sees in its first epoch
    order = np.random.default_rng([cfg.seed, 0]).permutation(train.height)
    examples = train[order]
    print(f"{args.model}: batch {args.batch_size}, max length 32, {args.steps} steps ({args.warmup} warm-up), "
          f"{os.cpu_count()} CPUs{', GPU' if args.gpu else ''}")  # fmt: skip

    peer = peer_pairs_per_s(examples, args.model, args.batch_size, args.steps, args.warmup, args.gpu)
    print(f"sentence-transformers MNRL, one process:   {peer:8.1f} pairs/s")
    one = ours_pairs_per_s(args.pairs, args.model, 1, args.batch_size, args.steps, args.warmup, args.gpu)
    print(f"sessionflow, Ray Train, 1 worker:          {one:8.1f} pairs/s  ({one / peer:.2f}x the peer)")
    if args.gpu and torch.cuda.device_count() < 2:
        print("sessionflow, Ray Train, 2 DDP workers:     skipped (one GPU: a worker takes a whole GPU)")
        return
    two = ours_pairs_per_s(args.pairs, args.model, 2, args.batch_size, args.steps, args.warmup, args.gpu)
    print(f"sessionflow, Ray Train, 2 DDP workers:     {two:8.1f} pairs/s  ({two / one:.2f}x one worker)")


if __name__ == "__main__":
    main()
