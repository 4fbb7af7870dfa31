"""Reformulation types from a hierarchy model's geometry, on a synthetic log of the mammals.

    .venv/bin/python benchmarks/reformulation_hit.py runs:/RUN_ID/model [--seed 2]

A synthetic log walked on the WordNet mammals only (`synth.Taxonomy` of the mammal
closure that `--data wordnet-mammals` trains on, 300 users, 15,000 rows), so that a
model trained on the mammals knows its concepts. Its consecutive pairs inside the
gold sessions whose gold type is specialisation, generalisation or lateral are typed
from the model's points, each way measured on the same pairs (the issue's target is
accuracy 0.75):

- the norm difference beyond a threshold (what `sessionflow annotate` ships);
- HiT's score s(u ⊑ v) = −(d(u, v) + λ(‖v‖ − ‖u‖)) both ways (He et al. 2024): a
  specialisation when the later query scores as the child of the earlier one above
  the threshold, a generalisation the other way round, else lateral; λ and the
  threshold are those the training run chose on HiT's validation pairs (logged);
- a depth-5 decision tree on (distance, norm difference), 5-fold CV on these pairs:
  the most these two numbers can tell apart.
"""

from __future__ import annotations

import argparse
import time

import mlflow
import numpy as np
import polars as pl
import torch

from hierarchies.closure import mammal_closure, transitive_closure
from hierarchies.hit import hit_score
from hierarchies.wordnet import noun_concepts, noun_graph
from sessions.lexicon import encode
from sessions.reformulation import JUDGED
from synth import SynthConfig, Taxonomy
from synth.generate import generate
from workflows.tracking.hierarchy_model import load
from workflows.tracking.store import use_store


def mammals() -> Taxonomy:
    """The mammal closure's concepts and the direct edges among them, with WordNet depths."""
    graph = noun_graph()
    closure = mammal_closure(transitive_closure(graph.edges))
    ids = pl.concat([closure["id1"], closure["id2"]]).unique().implode()
    concepts = noun_concepts(graph).filter(pl.col("id").is_in(ids))
    return Taxonomy(concepts, graph.edges.filter(pl.col("child").is_in(ids) & pl.col("parent").is_in(ids)))


def typed(pred: np.ndarray, gold: np.ndarray) -> str:
    rec = " / ".join(f"{np.mean(pred[gold == t] == t):.3f}" for t in JUDGED)
    return f"{np.mean(pred == gold):.3f} | {rec}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a logged hierarchy model: runs:/ID/model or models:/NAME/VERSION")
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    use_store()
    rows = pl.concat([c.rows for c in generate(SynthConfig(users=300, rows=15_000, seed=args.seed), mammals())])
    model = load(args.model)
    start = time.perf_counter()
    codes, distinct = encode(rows["Query"])
    points = torch.from_numpy(model.points(distinct.to_list()))
    norm = model.norm(points).numpy()
    session, gold = rows["gold_session"].to_numpy(), rows["gold_reformulation"].to_numpy()
    at = np.nonzero(np.r_[False, session[1:] == session[:-1]])[0]
    at = at[np.isin(gold[at], JUDGED)]
    a, b, gold = codes[at - 1], codes[at], gold[at]
    d, na, nb = model.distance(points[a], points[b]).numpy(), norm[a], norm[b]
    seconds = time.perf_counter() - start
    print(f"{len(distinct):,} distinct queries encoded in {seconds:.0f} s; {len(at):,} judged pairs")
    print("| rule | accuracy | recall: specialisation / generalisation / lateral |\n|---|---|---|")
    print(f"| always lateral | {typed(np.full(len(gold), 'lateral'), gold)} |")
    for threshold in (0.25, 0.5, 1.0, 2.0):
        delta = nb - na
        pred = np.where(delta > threshold, JUDGED[0], np.where(delta < -threshold, JUDGED[1], JUDGED[2]))
        print(f"| norm difference > {threshold} | {typed(pred, gold)} |")
    metrics = mlflow.get_run(args.model.split("/")[1]).data.metrics if args.model.startswith("runs:/") else {}
    for protocol in ("mixed_hop", "multi_hop"):
        for negatives in ("rn", "hn"):
            lam = metrics.get(f"{protocol}_lambda_{negatives}")
            if lam is None:
                continue
            threshold = metrics[f"{protocol}_threshold_{negatives}"]
            child_of_earlier, child_of_later = hit_score(d, nb, na, lam), hit_score(d, na, nb, lam)
            pred = np.where(
                (child_of_earlier >= threshold) & (child_of_earlier >= child_of_later),
                JUDGED[0],
                np.where(child_of_later >= threshold, JUDGED[1], JUDGED[2]),
            )
            rule = f"HiT score, {protocol} {negatives.upper()} (λ {lam}, threshold {threshold:.2f})"
            print(f"| {rule} | {typed(pred, gold)} |")
    from sklearn.model_selection import cross_val_predict
    from sklearn.tree import DecisionTreeClassifier

    pred = cross_val_predict(DecisionTreeClassifier(max_depth=5, random_state=0), np.c_[d, nb - na], gold, cv=5)
    print(f"| decision tree on (distance, norm difference), 5-fold CV | {typed(pred, gold)} |")


if __name__ == "__main__":
    main()
