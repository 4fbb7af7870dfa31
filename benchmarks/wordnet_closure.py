"""WordNet noun closure: sessionflow's polars fixpoint against the reference's loop.

    .venv/bin/python benchmarks/wordnet_closure.py [../shared/data/wordnet/mammal_closure.csv]

The peer is the Poincaré-embeddings reference (`wordnet/transitive_closure.py`):
nltk's `Synset.closure` per synset, in Python. Both start from a loaded WordNet; the
one-off extraction of the noun graph from nltk (cached afterwards) is timed apart.
With the reference mammal closure's path, the edges are also compared one for one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import polars as pl

from hierarchies.closure import closure_nodes, mammal_closure, transitive_closure
from hierarchies.wordnet import noun_graph, wordnet


def reference_closure() -> set[tuple[str, str]]:
    wn = wordnet()
    edges = set()
    for synset in wn.all_synsets(pos="n"):
        for hyper in synset.closure(lambda s: s.hypernyms()):
            edges.add((synset.name(), hyper.name()))
        for instance in synset.instance_hyponyms():
            for hyper in instance.closure(lambda s: s.instance_hypernyms()):
                edges.add((instance.name(), hyper.name()))
                for h in hyper.closure(lambda s: s.hypernyms()):
                    edges.add((instance.name(), h.name()))
    return edges


def main(reference_csv: str | None) -> None:
    wordnet()  # load nltk's reader before any timing
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SESSIONFLOW_CACHE"] = cache
        t = time.perf_counter()
        graph = noun_graph()
        extract = time.perf_counter() - t
    t = time.perf_counter()
    ours = transitive_closure(graph.edges)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    ref = reference_closure()
    ref_s = time.perf_counter() - t
    mine = set(ours.iter_rows())
    print(f"noun graph from nltk (once, then cached): {extract:.1f} s, {graph.nodes.height:,} synsets")
    print(f"noun closure: {ours.height:,} edges on {closure_nodes(ours).len():,} nodes")
    print(f"reference loop: {len(ref):,} edges, all of them here: {ref <= mine}; extra here: {len(mine - ref)}")
    print(f"polars fixpoint {ours_s:.2f} s vs reference loop {ref_s:.2f} s: {ref_s / ours_s:.1f}x faster")
    mammals = mammal_closure(ours)
    print(f"mammal closure: {mammals.height:,} edges on {closure_nodes(mammals).len():,} nodes")
    if reference_csv:
        expected = pl.read_csv(reference_csv).select("id1", "id2").sort("id1", "id2")
        print(f"equal to {reference_csv} edge for edge: {mammals.sort('id1', 'id2').equals(expected)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference_csv", nargs="?", help="the reference's mammal closure, to compare edge for edge")
    main(parser.parse_args().reference_csv)
