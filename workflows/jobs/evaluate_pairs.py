"""Scoring labelled query pairs with a session model, next to two baselines.

Baselines on the same pairs: character 3-gram Jaccard (`sessions.text`), and the
encoder the model was fine-tuned from, without fine-tuning (dot product). The model's
accuracy is at its calibrated threshold (p_same >= 0.5); the baselines have no
calibration, so theirs is at their best threshold on these very pairs (an upper
bound, which flatters them). A pair with a query the model cannot read (emoji alone,
a script its vocabulary lacks: `models.encoder.unread_texts`), whose p_same the
model leaves NaN, scores the p_same of a dot product of 0, no evidence either way, as
training's validation scores it; `unread_pairs` counts them. Pairs that name their
negatives' kind (`mine`'s `kind`: `random`, `same_user`, `lexical_hard`) also get
each scorer's AUC of the positives against each kind alone (`auc_vs_<kind>`): which
negatives a model cannot tell apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from sessions.lexicon import trigram_jaccard
from workflows.jobs import common

if TYPE_CHECKING:
    from models.encoder import TextEncoder

JACCARD = "3-gram Jaccard"


@dataclass(frozen=True)
class PairEvaluation:
    """What `evaluate pairs` found: the pairs with the model's p_same, each scorer's scores and
    metrics (`models.calibration.pair_metrics` at its threshold), and the split scored."""

    pairs: pl.DataFrame  # query_a, query_b, label, p_same, unread (a query the model cannot read)
    scores: dict[str, np.ndarray]  # scorer -> scores (the model's are p_same)
    metrics: dict[str, dict]  # scorer -> auc, accuracy, threshold, pairs, positives[, auc_vs_<kind>]
    split: str = "all"  # the split of the pairs scored: train, val or test of a `mine` output, or all
    unread_pairs: int = 0  # pairs with a query the model cannot read, scored at a dot product of 0

    def examples(self, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The model's n most confident right and n most confident wrong pairs, of those it
        read (a pair it cannot read is no decision of its own)."""
        p = (
            self.pairs.filter(~pl.col("unread"))
            .with_columns(
                right=(pl.col("p_same") >= 0.5).cast(pl.Int8) == pl.col("label"),
                confidence=(pl.col("p_same") - 0.5).abs(),
            )
            .sort("confidence", descending=True)
        )
        columns = ["query_a", "query_b", "label", "p_same"]
        return p.filter("right").head(n).select(columns), p.filter(~pl.col("right")).head(n).select(columns)


def read_pairs(path: str | Path, split: str | None = "test") -> tuple[pl.DataFrame, str]:
    """query_a, query_b, label (and kind, where the pairs have it as text) of a `mine`
    output (one split, or all with None) or a CSV (local paths or URIs), and the split
    read ("all" where the pairs have no `split`: read whole with "test", the default,
    or None).
    ValueError / FileNotFoundError in one line for pairs that are not there or bad
    (`common.read_pairs_table`: every pair of the file is checked, whatever the split),
    a split other than test asked of pairs without splits, or a split without positive
    and negative pairs (naming the splits the pairs have)."""
    pairs, location = common.read_pairs_table(str(path))
    if split not in (None, "test") and "split" not in pairs.columns:
        raise ValueError(f"{location}: no split column, so no split {split}: --split all reads every pair")
    split = split if split and "split" in pairs.columns else None
    if split:
        splits = sorted(pairs["split"].drop_nulls().unique().cast(pl.String).to_list())
        pairs = pairs.filter(pl.col("split") == split)
        if not pairs.height:
            raise ValueError(f"{location}: no pairs in split {split} (its splits: {', '.join(splits) or 'none'})")
    kinds = "kind" in pairs.columns and pairs.schema["kind"] in (pl.String, pl.Categorical, pl.Enum)
    pairs = pairs.select("query_a", "query_b", "label", *([pl.col("kind").cast(pl.String)] if kinds else []))
    if pairs["label"].n_unique() < 2:
        raise ValueError(f"{location}: need positive and negative pairs" + (f" (split {split})" if split else ""))
    return pairs, split or "all"


def baseline_scores(pairs: pl.DataFrame, encoder: TextEncoder, name: str) -> dict[str, np.ndarray]:
    """The baselines' scores of `pairs`: `encoder` (called `name`) not fine-tuned, by
    dot product, and 3-gram Jaccard."""
    from models.session import pair_scores

    return {
        f"{name}, not fine-tuned": pair_scores(encoder, pairs["query_a"].to_list(), pairs["query_b"].to_list()),
        JACCARD: trigram_jaccard(pairs["query_a"], pairs["query_b"]).to_numpy(),
    }


def evaluate_pairs(model_uri: str, pairs: pl.DataFrame, baseline: str | None = None) -> PairEvaluation:
    """The model's p_same and both baselines' scores on `pairs`, with AUC and accuracy, and
    where `pairs` has a `kind` column the AUC against each kind of negative
    (`auc_by_negative_kind`); a pair with a query the model cannot read scores its
    p_same at a dot product of 0 (`unread_pairs`)."""
    from models.calibration import best_threshold, pair_metrics
    from models.encoder import load_encoder
    from workflows.tracking import session_model

    model = session_model.load(model_uri)
    a, b = pairs["query_a"].to_list(), pairs["query_b"].to_list()
    labels = pairs["label"].to_numpy()
    p = session_model.p_same(model, a, b)
    unread = np.isnan(p)  # a query the model cannot read: no evidence either way
    p[unread] = session_model.p_same_at(model, 0.0)
    base = baseline or session_model.base_model_of(model)
    scores = {f"session model ({model_uri})": p, **baseline_scores(pairs, load_encoder(base), base)}
    metrics = {}
    for i, (name, s) in enumerate(scores.items()):
        threshold = 0.5 if i == 0 else best_threshold(s, labels)
        metrics[name] = {**pair_metrics(s, labels, threshold).to_dict(), "threshold": threshold,
                         **auc_by_negative_kind(s, labels, pairs)}  # fmt: skip
    scored = pairs.with_columns(p_same=pl.Series(p), unread=pl.Series(unread))
    return PairEvaluation(scored, scores, metrics, unread_pairs=int(unread.sum()))


def auc_by_negative_kind(scores: np.ndarray, labels: np.ndarray, pairs: pl.DataFrame) -> dict[str, float]:
    """{"auc_vs_<kind>": ROC AUC of the positives against the negatives of that kind
    alone (`models.calibration.pair_metrics`)}, for each kind of negative in the text
    column `pairs["kind"]` (sorted by name, spaces around it ignored; a missing or blank
    kind is none); {} when the pairs carry no kind. scores, labels: (n,) aligned with
    `pairs`."""
    from models.calibration import pair_metrics

    if "kind" not in pairs.columns:
        return {}
    kinds = pairs["kind"].str.strip_chars().fill_null("").to_numpy()  # " x" is x
    negative = labels == 0
    out = {}
    for kind in sorted(set(kinds[negative]) - {""}):
        chosen = ~negative | (kinds == kind)
        out[f"auc_vs_{kind}"] = pair_metrics(scores[chosen], labels[chosen]).auc
    return out


@dataclass(frozen=True)
class EvaluatePairsJob:
    """What `sessionflow evaluate pairs` scores."""

    model: str = field(default="models:/session-model@champion", metadata={
        "help": "a session model: models:/session-model@champion, models:/NAME/VERSION, runs:/..."})  # fmt: skip
    pairs: str | None = field(default=None, metadata={
        "help": "a `mine` output directory, or a CSV with query_a, query_b, label"})  # fmt: skip
    split: Literal["train", "val", "test", "all"] = field(default="test", metadata={
        "help": "split of a `mine` output (a table without a split column: all, with test or all)"})  # fmt: skip
    baseline: str | None = field(default=None, metadata={
        "help": "encoder for the not-fine-tuned baseline (not given: the one the model started from)"})  # fmt: skip
    examples: int = field(default=5, metadata={"help": "show this many most confident right and wrong pairs"})


def run(job: EvaluatePairsJob) -> PairEvaluation:
    """The model and its baselines on the job's labelled pairs; ValueError / FileNotFoundError for bad inputs."""
    from models.encoder import check_encoder
    from workflows.tracking.store import require_model

    if job.examples < 0:
        raise ValueError(f"--examples {job.examples}: must be 0 or more")
    pairs = common.require(job.pairs, "pairs")
    if job.baseline is not None:  # named before a model loads: transformers' own message named no option
        check_encoder(job.baseline, "--baseline")
    require_model(job.model, ("session",))  # a missing or wrong model named before the pairs are read
    labelled, split = read_pairs(pairs, None if job.split == "all" else job.split)
    return dataclasses.replace(evaluate_pairs(job.model, labelled, job.baseline), split=split)
