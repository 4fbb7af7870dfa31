"""The gold pairs a text encoder cannot order: which positives it ranks lowest and
which negatives highest (docs/session-model.md, "The negatives are not what holds the
model back").

    sessionflow mine ../shared/data/sessions-gt/gayo-avello-2009.dev.csv --format gayo-avello \
        --gold session --output out/gold-gayo
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hardest_gold_pairs.py out/gold-gayo [--encoder minilm-local]

Prints, for the encoder not fine-tuned (dot products of unit vectors): the share of
positives that score below the median negative, the negatives of each kind it scores
highest and the positives it scores lowest. `evaluate pairs` gives the AUC against
each kind of negative.
"""

from __future__ import annotations

import argparse

import polars as pl

from models.encoder import load_encoder
from models.session import pair_scores
from sessions.io import read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", help="a `mine --gold` output directory")
    parser.add_argument("--encoder", default="minilm-local")
    parser.add_argument("--show", type=int, default=8, help="pairs listed of each kind")
    args = parser.parse_args()
    pairs = read_table(f"{args.pairs}/pairs.parquet")
    scores = pair_scores(load_encoder(args.encoder), pairs["query_a"].to_list(), pairs["query_b"].to_list())
    pairs = pairs.with_columns(score=pl.Series(scores))
    positives, negatives = pairs.filter(pl.col("label") == 1), pairs.filter(pl.col("label") == 0)
    below = (positives["score"] < negatives["score"].median()).mean()
    print(f"{args.pairs}: {positives.height:,} positives, {below:.1%} of them below the median negative")
    for kind in sorted(negatives["kind"].unique()):
        print(f"the {kind} negatives scored highest:")
        for a, b, s in negatives.filter(pl.col("kind") == kind).top_k(args.show, by="score").select(
            "query_a", "query_b", "score").rows():  # fmt: skip
            print(f"  {s:.3f}  {a} | {b}")
    print("the positives scored lowest:")
    for a, b, s in positives.bottom_k(args.show, by="score").select("query_a", "query_b", "score").rows():
        print(f"  {s:.3f}  {a} | {b}")


if __name__ == "__main__":
    main()
