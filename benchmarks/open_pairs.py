"""The pairs that lexical evidence leaves open, and what time and a text encoder say of
them (docs/segmentation.md, "Where the errors are, by kind").

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/open_pairs.py \
        --gt ../shared/data/sessions-gt/gayo-avello-2009.dev.csv --format gayo-avello [--encoder minilm-local]

Of each user's consecutive labelled queries, those the lexical rule breaks (not
lexically close, nor close to the session so far: `segment --method lexical`), by the
gap between them: how many, and the share the gold keeps in one session; then the ROC
AUC of the encoder's cosine (not fine-tuned) at telling those kept from those split,
for the pairs within the cascade's 6-hour bound, of the gap, and of a logistic
regression of both (user-level 5-fold CV) with the joins it would make at p >= 0.5. No
gap with a majority kept together, and AUCs far from 1, say that neither the gap nor
the text decides these pairs.
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from models.encoder import load_encoder
from models.session import pair_scores
from sessions.segment import SegmentConfig, segment, user_time_order
from workflows.jobs.evaluate_segmentation import read_gold

GAPS_S = [0, 60, 120, 300, 600, 1800, 3600, 6 * 3600]  # bucket edges: (edge_i, edge_i+1]; the first: 0 s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", required=True, help="a ground-truth file with gold sessions")
    parser.add_argument("--format", required=True, help="its format (gayo-avello, webis-smc, aol, table)")
    parser.add_argument("--encoder", default="minilm-local")
    args = parser.parse_args()

    gold = read_gold(args.gt, args.format).events
    cut = segment(gold.drop("gold_session", "gold_mission", strict=False), SegmentConfig(method="lexical"))
    events = user_time_order(cut.join(gold.select("row_id", "gold_session"), on="row_id"))
    previous = [pl.col(c).shift(1).over("user_id") for c in ("ts", "session_id", "gold_session", "query")]
    pairs = events.with_columns(
        gap=(pl.col("ts") - previous[0]).dt.total_seconds(),
        broken=pl.col("session_id") != previous[1],
        same=pl.col("gold_session") == previous[2],
        before=previous[3],
    ).filter(pl.col("same").is_not_null())
    edges = [*GAPS_S, float("inf")]
    bucket = pl.lit(None, pl.String)
    for low, high in zip(reversed(edges[:-1]), reversed(edges[1:]), strict=True):
        bucket = pl.when(pl.col("gap") <= high).then(pl.lit(f"({low:g}, {high:g}] s")).otherwise(bucket)
    shares = (
        pairs.with_columns(bucket=pl.when(pl.col("gap") <= 0).then(pl.lit("0 s")).otherwise(bucket))
        .group_by("bucket", "broken")
        .agg(pairs=pl.len(), kept_together=pl.col("same").mean().round(3), low=pl.col("gap").min())
        .sort("broken", "low", descending=[True, False])
        .drop("low")
    )
    with pl.Config(tbl_rows=40):
        print(f"{args.gt}: consecutive labelled pairs, broken or joined by the lexical rule, by gap")
        print(shares)
    open_pairs = pairs.filter(pl.col("broken") & (pl.col("gap") > 0) & (pl.col("gap") <= 6 * 3600))
    encoder = load_encoder(args.encoder)
    cosine = pair_scores(encoder, open_pairs["before"].to_list(), open_pairs["query"].to_list())
    labels = open_pairs["same"].to_numpy().astype(int)
    print(f"{open_pairs.height} pairs broken by the lexical rule 0 s < gap <= 6 h, {int(labels.sum())} kept together "
          f"by the gold: ROC AUC of {args.encoder}'s cosine {roc_auc_score(labels, np.nan_to_num(cosine)):.3f}, of "
          f"the gap (shorter: same) {roc_auc_score(labels, -open_pairs['gap'].to_numpy()):.3f}")  # fmt: skip
    # both together: a logistic regression of (log gap, cosine), each user's pairs scored by a fit without them
    features = np.c_[np.log1p(open_pairs["gap"].to_numpy()), np.nan_to_num(cosine)]
    p_same = np.zeros(len(labels))
    for train, test in GroupKFold(5).split(features, labels, open_pairs["user_id"].to_numpy()):
        p_same[test] = LogisticRegression().fit(features[train], labels[train]).predict_proba(features[test])[:, 1]
    joined = p_same >= 0.5
    print(f"both, logistic regression in user-level 5-fold CV: ROC AUC {roc_auc_score(labels, p_same):.3f}; at p >= 0.5"
          f" it joins {int(joined.sum())}, {int(labels[joined].sum())} of them kept together by the gold")  # fmt: skip


if __name__ == "__main__":
    main()
