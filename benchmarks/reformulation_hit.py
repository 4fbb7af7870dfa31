"""Reformulation types from a hierarchy model on synthetic logs, in user-level nested CV.

    .venv/bin/python benchmarks/reformulation_hit.py runs:/RUN_ID/model [--log mammals|FILE] [--seed 2]

Run where the model was trained (its `mlflow.db`), or set MLFLOW_TRACKING_URI to its store.

`--log mammals` (the default): a synthetic log walked on the WordNet mammals only
(`synth.Taxonomy` of the mammal closure that `--data wordnet-mammals` trains on, 300
users, 15,000 rows), so that a model trained on the mammals knows its concepts;
else a `sessionflow synth` log (AOL style). The consecutive pairs inside the gold
sessions whose gold type is specialisation, generalisation or lateral are judged.

Printed, each on the same pairs:
- what `sessionflow annotate` does (`sessions.reformulation`): its `--ratio` chosen
  from `RATIO_GRID` on four fifths of the users and scored on the fifth, five folds
  (the CV estimate: mean ± standard deviation over folds, recall pooled), and at the
  shipped default ratio;
- the same with the number of terms as the geometry (`TermCount`, no knob);
- the rule shipped before: the norm difference of the whole queries beyond a
  threshold (0.25), repeats aside;
- always `lateral`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from hierarchies.closure import mammal_closure, transitive_closure
from hierarchies.wordnet import noun_concepts, noun_graph
from sessions.reformulation import (
    DEFAULT_RATIO,
    JUDGED,
    RATIO_GRID,
    TermCount,
    replacements,
    types_of,
)
from sessions.text import normalize
from synth import SynthConfig, Taxonomy, write_log
from workflows.jobs.annotate import gold_sessions, hierarchy_geometry

FOLDS = 5


def mammals() -> Taxonomy:
    """The mammal closure's concepts and the direct edges among them, with WordNet depths."""
    graph = noun_graph()
    closure = mammal_closure(transitive_closure(graph.edges))
    ids = pl.concat([closure["id1"], closure["id2"]]).unique().implode()
    concepts = noun_concepts(graph).filter(pl.col("id").is_in(ids))
    return Taxonomy(concepts, graph.edges.filter(pl.col("child").is_in(ids) & pl.col("parent").is_in(ids)))


def mammal_sessions(seed: int) -> pl.DataFrame:
    """The mammals' synthetic log, read as `gold_sessions` reads a log."""
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "mammals.tsv"
        write_log(SynthConfig(users=300, rows=15_000, seed=seed), mammals(), log)
        return gold_sessions(log, "aol")


def scored(pred: pl.Series, gold: pl.Series) -> tuple[float, dict[str, float]]:
    """Accuracy on the judged pairs, and the recall of each judged type."""
    frame = pl.DataFrame({"p": pred, "g": gold}).filter(pl.col("g").is_in(JUDGED))
    hit = (frame["p"] == frame["g"]).to_numpy()
    g = frame["g"].to_numpy()
    return float(hit.mean()), {t: float(hit[g == t].mean()) for t in JUDGED}


def line(name: str, accuracy: str, recall: dict[str, float]) -> str:
    return f"| {name} | {accuracy} | " + " / ".join(f"{recall[t]:.3f}" for t in JUDGED) + " |"


def nested_cv(replaced: pl.DataFrame, gold: pl.Series, users: np.ndarray) -> tuple[list[float], list[float], pl.Series]:
    """The ratio chosen on the other folds' users and scored on each fold: (accuracy of
    each fold, the ratio each chose, every row's type from its fold's choice)."""
    distinct = np.unique(users)
    fold_of = dict(zip(distinct, np.random.default_rng(0).permutation(len(distinct)) % FOLDS, strict=True))
    fold = np.array([fold_of[u] for u in users])
    pred = np.empty(len(users), dtype=object)
    accuracies, chosen = [], []
    for k in range(FOLDS):
        inner, outer = fold != k, fold == k
        best = max(RATIO_GRID, key=lambda r: scored(types_of(replaced.filter(inner), r), gold.filter(inner))[0])
        pred[outer] = types_of(replaced.filter(outer), best).to_numpy()
        accuracies.append(scored(pl.Series(pred[outer].tolist(), dtype=pl.String), gold.filter(outer))[0])
        chosen.append(best)
    return accuracies, chosen, pl.Series(pred.tolist(), dtype=pl.String)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a logged hierarchy model: runs:/ID/model or models:/NAME@ALIAS")
    parser.add_argument("--log", default="mammals", help="mammals (walked on the mammals), or a synth log (AOL)")
    parser.add_argument("--seed", type=int, default=2, help="the mammals log's seed")
    args = parser.parse_args()
    try:  # the model first: a store or a run that is not there is one line, before the log is made
        model = hierarchy_geometry(args.model)
        sessions = mammal_sessions(args.seed) if args.log == "mammals" else gold_sessions(args.log, "aol")
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    gold, users = sessions["gold_reformulation"], sessions["user_id"].to_numpy()
    start = time.perf_counter()
    replaced = replacements(sessions, model)
    seconds = time.perf_counter() - start
    judged = int(sessions["gold_reformulation"].is_in(JUDGED).sum())
    asked = int(replaced.filter(pl.col("distance").is_not_null())["removed"].len())
    print(f"{args.log}: {sessions.height:,} rows, {judged:,} judged pairs, {asked:,} replacements asked of the "
          f"model ({seconds:.1f} s)")  # fmt: skip
    print("| types from | accuracy | recall: specialisation / generalisation / lateral |\n|---|---|---|")
    accuracies, chosen, pred = nested_cv(replaced, gold, users)
    _, recall = scored(pred, gold)
    cv = f"**{np.mean(accuracies):.3f} ± {np.std(accuracies):.3f}** (ratio {', '.join(map(str, chosen))})"
    print(line("the model on the changed terms, ratio chosen in nested CV over users", cv, recall))
    accuracy, recall = scored(types_of(replaced, DEFAULT_RATIO), gold)
    print(line(f"the same at the default ratio {DEFAULT_RATIO}", f"{accuracy:.3f}", recall))
    accuracy, recall = scored(types_of(replacements(sessions, TermCount())), gold)
    print(line("the number of terms in place of the model", f"{accuracy:.3f}", recall))
    norm = pl.Series(model.specificity(sessions["query"]))
    delta = (norm - norm.shift(1)).to_numpy()
    key = sessions.select(normalize(pl.col("query")))["query"]
    same = (key == key.shift(1)).fill_null(False).to_numpy()
    before = np.where(same, "repeat", np.where(delta > 0.25, JUDGED[0], np.where(delta < -0.25, JUDGED[1], JUDGED[2])))
    accuracy, recall = scored(pl.Series(before), gold)
    print(line("the rule shipped before: norm difference of the whole queries > 0.25", f"{accuracy:.3f}", recall))
    accuracy, recall = scored(pl.Series(["lateral"] * sessions.height), gold)
    print(line("always lateral", f"{accuracy:.3f}", recall))


if __name__ == "__main__":
    main()
