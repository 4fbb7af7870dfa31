"""What an encoder backend costs in quality: pair ROC AUC of a session model on labelled
pairs with eager torch (the reference) and with its ONNX exports (float, int8).

    GT=../shared/data/sessions-gt
    sessionflow mine $GT/gayo-avello-2009.dev.csv --format gayo-avello --gold session -o out/gold-gayo
    sessionflow mine $GT/webis-smc-12.dev.txt --format webis-smc --gold mission -o out/gold-webis
    .venv/bin/python benchmarks/backend_quality.py --session-model models:/session-model@champion \
        --pairs out/gold-gayo out/gold-webis

Every pair of each `mine` output (all splits) is scored with each backend of the same
registered model (`workflows.tracking.session_model.onnx_encoder_dir`: the export
logged beside it); the target is an AUC within 0.005 of torch's. Also the mean and
the lowest cosine between the int8 and the torch vectors of the pairs' texts.
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def main() -> None:
    from models.calibration import pair_metrics
    from models.onnx_encoder import OnnxTextEncoder
    from models.session import pair_scores
    from workflows.jobs.common import read_pairs_table
    from workflows.tracking.session_model import SessionScorer, onnx_encoder_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--session-model", default="models:/session-model@champion")
    parser.add_argument("--pairs", nargs="+", required=True, help="`mine` outputs (labelled pairs)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    torch_encoder = SessionScorer(args.session_model).encoder
    directory = onnx_encoder_dir(args.session_model)
    encoders = {"torch": torch_encoder, **{b: OnnxTextEncoder(directory, b) for b in ("onnx", "onnx-int8")}}
    print(f"{'pairs':<28}{'n':>8}" + "".join(f"{b + ' AUC':>16}" for b in encoders) + f"{'int8 - torch':>14}")
    for path in args.pairs:
        pairs, _ = read_pairs_table(path)
        a, b, labels = pairs["query_a"].to_list(), pairs["query_b"].to_list(), pairs["label"].to_numpy()
        aucs = {name: pair_metrics(pair_scores(encoder, a, b), labels).auc for name, encoder in encoders.items()}
        row = "".join(f"{v:>16.4f}" for v in aucs.values())
        name = os.path.basename(path.rstrip("/"))
        print(f"{name:<28}{len(labels):>8,}{row}{aucs['onnx-int8'] - aucs['torch']:>+14.4f}")
        texts = sorted(set(a) | set(b))
        cosines = (encoders["onnx-int8"].encode(texts) * torch_encoder.encode(texts)).sum(1)
        print(f"  int8 vs torch vectors of its {len(texts):,} texts: mean cosine {np.mean(cosines):.4f}, "
              f"lowest {np.min(cosines):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
