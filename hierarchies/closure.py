"""Transitive closures of a hierarchy and the depth of each node, in polars.

The closure follows the Poincaré-embeddings reference (Nickel & Kiela 2017,
`wordnet/transitive_closure.py`): every synset is linked to all of its hypernyms,
transitively, and instances to their instance hypernyms and all of theirs. Here that
is one fixpoint over both kinds of edge: 743,241 (child, ancestor) edges on the
82,115 WordNet 3.0 nouns. The reference's loop, run on the same WordNet, gives 155
fewer: it does not follow an instance whose instance hypernym is itself an instance
(jesus.n.01 -> son.n.02 -> hypostasis.n.03 -> ...). The mammal closure is the same
either way (`benchmarks/wordnet_closure.py` compares both).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

# The reference's mammal closure (`mammals_filter.txt`) also drops these two direct
# hyponyms of mammal.n.01 as children; their only in-subtree ancestor is the root.
MAMMAL_EXCLUDE = ("tusker.n.01", "female_mammal.n.01")


def transitive_closure(edges: pl.DataFrame, child: str = "child", parent: str = "parent") -> pl.DataFrame:
    """All (id1 = descendant, id2 = ancestor) pairs reachable along the edges.

    Semi-naive evaluation: each round joins only the pairs found in the round before
    with the direct edges, until no new pair appears (as many rounds as the graph is deep).
    """
    direct = edges.select(pl.col(child).alias("id1"), pl.col(parent).alias("id2")).unique()
    step = direct.rename({"id1": "id2", "id2": "id3"})
    closure, delta = direct, direct
    while delta.height:
        reached = delta.join(step, on="id2").select("id1", pl.col("id3").alias("id2")).unique()
        delta = reached.join(closure, on=["id1", "id2"], how="anti")
        closure = pl.concat([closure, delta])
    return closure.sort("id1", "id2")


def subtree_closure(closure: pl.DataFrame, root: str, exclude: Iterable[str] = ()) -> pl.DataFrame:
    """The closure restricted to `root` and its descendants: edges (d, a) with d below
    root and a equal to root or below it. `exclude` drops nodes as children."""
    below = closure.filter(pl.col("id2") == root).select("id1")
    inside = pl.concat([below["id1"], pl.Series([root])])
    return closure.filter(
        pl.col("id1").is_in(below["id1"].implode()),
        pl.col("id2").is_in(inside.implode()),
        ~pl.col("id1").is_in(list(exclude)),
    )


def mammal_closure(closure: pl.DataFrame) -> pl.DataFrame:
    """The `mammal.n.01` closure of the reference: 6,540 edges on 1,180 nodes."""
    return subtree_closure(closure, "mammal.n.01", exclude=MAMMAL_EXCLUDE)


def depths(edges: pl.DataFrame, child: str = "child", parent: str = "parent") -> pl.DataFrame:
    """`id`, `depth`: the length of the shortest path from each node up to a root
    (a node without parents has depth 0), as nltk's `Synset.min_depth()`.

    Breadth-first from the roots down, one join per level.
    """
    e = edges.select(pl.col(child).alias("id"), pl.col(parent).alias("parent")).unique()
    nodes = pl.concat([e["id"], e["parent"]]).unique()
    frontier = pl.DataFrame({"id": nodes.filter(~nodes.is_in(e["id"].implode()))})
    seen = frontier.with_columns(depth=pl.lit(0, pl.Int32))
    level = 0
    while frontier.height:
        level += 1
        nxt = e.join(frontier.rename({"id": "parent"}), on="parent").select("id").unique()
        frontier = nxt.join(seen, on="id", how="anti")
        seen = pl.concat([seen, frontier.with_columns(depth=pl.lit(level, pl.Int32))])
    return seen.sort("id")


def closure_nodes(closure: pl.DataFrame) -> pl.Series:
    """Every node that appears in a closure, sorted."""
    return pl.concat([closure["id1"], closure["id2"]]).unique().sort()
