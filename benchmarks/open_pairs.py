"""The pairs that lexical evidence leaves open, and what time and a text encoder say of
them (docs/segmentation.md, "Where the errors are, by kind").

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/open_pairs.py \
        --gt ../shared/data/sessions-gt/gayo-avello-2009.dev.csv --format gayo-avello [--encoder minilm-local]

Of each user's consecutive labelled queries, those the lexical rule breaks (not
lexically close, nor close to the session so far: `segment --method lexical`), by the
gap between them: how many, and the share the gold keeps in one session; then the ROC
AUC of the encoder's cosine (not fine-tuned) at telling those kept from those split,
for the pairs within the cascade's 6-hour bound, of the gap, and of a logistic
regression of both (user-level 5-fold CV) with the joins it would make at p >= 0.5;
with `--wordnet`, also WordNet's relatedness of the two queries (the best Wu & Palmer
1994 similarity between the first three noun senses of a term of each, the terms the
lexical rules compare: world knowledge a 6-layer encoder may lack, a rival product or
an associate by name), its AUC and the joins it would make within 5 minutes. No gap
with a majority kept together, and AUCs far from 1, say that neither the gap nor the
text decides these pairs.
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
from sessions.text import normalize, per_text
from workflows.jobs.evaluate_segmentation import read_gold

GAPS_S = [0, 60, 120, 300, 600, 1800, 3600, 6 * 3600]  # bucket edges: (edge_i, edge_i+1]; the first: 0 s
WORDNET_SENSES = 3  # noun senses of a term compared (WordNet orders them by frequency)
WORDNET_MAX_GAP_S = 300  # the joins a WordNet rule would make are counted within this gap


def wordnet_relatedness(before: list[str], after: list[str]) -> np.ndarray:
    """(n,) the best Wu & Palmer (1994) similarity in [0, 1] between a noun sense of a
    term of `before[i]` and one of `after[i]` (terms as `sessions.text` makes them, of
    three letters or more; the first `WORDNET_SENSES` senses of each), 0 where either
    has none."""
    from hierarchies.wordnet import wordnet

    wn = wordnet()
    senses = {}

    def noun_senses(norm: str) -> list:  # of a normalised text's terms
        for term in norm.split():
            if term not in senses:
                senses[term] = wn.synsets(term, wn.NOUN)[:WORDNET_SENSES] if len(term) > 2 else []
        return [sense for term in norm.split() for sense in senses[term]]

    norms = per_text(normalize, pl.Series(before + after)).to_list()
    pairs = zip(norms[: len(before)], norms[len(before) :], strict=True)
    return np.array([max((a.wup_similarity(b) or 0.0 for a in noun_senses(x) for b in noun_senses(y)), default=0.0)
                     for x, y in pairs])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", required=True, help="a ground-truth file with gold sessions")
    parser.add_argument("--format", required=True, help="its format (gayo-avello, webis-smc, aol, table)")
    parser.add_argument("--encoder", default="minilm-local")
    parser.add_argument("--wordnet", action="store_true", help="also WordNet's relatedness of the pairs")
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
    if args.wordnet:
        related = wordnet_relatedness(open_pairs["before"].to_list(), open_pairs["query"].to_list())
        near = open_pairs["gap"].to_numpy() <= WORDNET_MAX_GAP_S
        print(f"WordNet's relatedness (best Wu-Palmer of the terms' noun senses): ROC AUC "
              f"{roc_auc_score(labels, related):.3f}; of the {int(near.sum())} pairs within {WORDNET_MAX_GAP_S} s "
              f"({int(labels[near].sum())} kept together), a rule joining those related at least ... would join: "
              + ", ".join(
                  f"{t}: {int((near & (related >= t)).sum())} ({int(labels[near & (related >= t)].sum())} right)"
                  for t in (0.7, 0.8, 0.9)))  # fmt: skip


if __name__ == "__main__":
    main()
