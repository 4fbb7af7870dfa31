"""Hierarchies as index arrays for the embedding models, and their train/test splits.

A `Hierarchy` is a vocabulary of nodes (WordNet synset ids), a text per node (and
every name it goes by: `NodeNames`), the transitive closure as (child, ancestor)
index pairs, which of those pairs are direct parent edges (the basic hierarchy), and
each node's depth below its root.

    h = wordnet_mammals()                      # 1,180 nodes, 6,540 closure edges
    split = split_edges(h, share=0.1, seed=0)  # link prediction on held-out edges
    split = split_nodes(h, share=0.1, seed=0)  # on held-out nodes, never seen in training
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import sparse

from hierarchies.closure import closure_nodes, depths, mammal_closure, transitive_closure
from hierarchies.wordnet import noun_graph


@dataclass(frozen=True)
class NodeNames:
    """Every name each node goes by: node i's are `texts[ptr[i]:ptr[i + 1]]`, its
    `Hierarchy.texts` entry first. A WordNet synset is named by its lemmas joined
    ("aardvark, ant bear, anteater, Orycteropus afer") and, when it has several, by each
    lemma alone: a log writes one of them, and a text model trained on the joined form
    alone places a single name worse (docs/hierarchy-model.md, "Reformulation types").

    texts: (L,) str, L >= n; ptr: (n + 1,) int64, nondecreasing from 0 to L, every node at
    least one name. ValueError otherwise.
    """

    texts: np.ndarray
    ptr: np.ndarray

    def __post_init__(self) -> None:
        ptr = self.ptr
        if ptr.ndim != 1 or len(ptr) == 0 or ptr[0] != 0 or ptr[-1] != len(self.texts) or (np.diff(ptr) < 1).any():
            raise ValueError(f"every node needs a name: ptr must rise from 0 to {len(self.texts)} by >= 1")

    @classmethod
    def single(cls, texts: np.ndarray) -> NodeNames:
        """Each node named by its text alone."""
        return cls(np.asarray(texts), np.arange(len(texts) + 1, dtype=np.int64))

    @classmethod
    def of(cls, names: list[list[str]]) -> NodeNames:
        """From each node's names (its text first), repeats within a node dropped."""
        names = [list(dict.fromkeys(each)) for each in names]
        texts = np.array([name for each in names for name in each], dtype=str)
        return cls(texts, _offsets(np.array([len(each) for each in names], dtype=np.int64)))

    def first(self) -> np.ndarray:
        """(n,) str, each node's first name (its `Hierarchy.texts` entry)."""
        return self.texts[self.ptr[:-1]]

    @property
    def counts(self) -> np.ndarray:
        """(n,) int64, how many names each node has."""
        return np.diff(self.ptr)

    def rows(self, nodes: np.ndarray) -> np.ndarray:
        """(sum of counts,) int64, the rows in `texts` of every name of `nodes` (sorted indices)."""
        counts = self.counts[nodes]
        starts = np.repeat(self.ptr[nodes] - np.cumsum(counts) + counts, counts)
        return starts + np.arange(counts.sum())

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """(n,) int64, the row in `texts` of one name per node, each drawn uniformly."""
        return self.ptr[:-1] + (rng.random(len(self.ptr) - 1) * self.counts).astype(np.int64)

    def subset(self, nodes: np.ndarray) -> NodeNames:
        """The names of `nodes` (sorted indices), re-indexed."""
        return NodeNames(self.texts[self.rows(nodes)], _offsets(self.counts[nodes]))


def _offsets(counts: np.ndarray) -> np.ndarray:
    """(k + 1,) int64 offsets of runs of `counts` (k,) laid end to end, from 0."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


@dataclass(frozen=True)
class Hierarchy:
    """A closure over a vocabulary; node i is `names[i]`.

    names: (n,) str, sorted node ids; texts: (n,) str, readable text of each node;
    edges: (m, 2) int64 (child, ancestor) pairs of the transitive closure;
    direct: (m,) bool, True where the pair is a direct parent edge;
    depth: (n,) int64, shortest number of direct edges up to a root (a root is 0);
    aliases: every name of each node, its text first (`NodeNames`); by default the text alone.

    Every loader's hierarchy is made here, so here it is refused, one line, when a node is
    its own ancestor or the edges go round (`refuse_cycles`).
    """

    names: np.ndarray
    texts: np.ndarray
    edges: np.ndarray
    direct: np.ndarray
    depth: np.ndarray
    aliases: NodeNames = field(default=None)  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        n, m = len(self.names), len(self.edges)
        if len(self.texts) != n or len(self.depth) != n:
            raise ValueError(f"{n} names, {len(self.texts)} texts and {len(self.depth)} depths")
        if self.aliases is None:
            object.__setattr__(self, "aliases", NodeNames.single(self.texts))
        elif len(self.aliases.ptr) != n + 1 or not np.array_equal(self.aliases.first(), self.texts):
            raise ValueError("aliases must give every node its names, its text first")
        if self.edges.shape != (m, 2) or self.direct.shape != (m,):
            raise ValueError(f"edges must be (m, 2) with one `direct` flag each, got {self.edges.shape}")
        if m and (self.edges.min() < 0 or self.edges.max() >= n):
            raise ValueError("an edge points outside the vocabulary")
        refuse_cycles(self.names, self.edges)

    @property
    def n_nodes(self) -> int:
        """n, the size of the vocabulary."""
        return len(self.names)

    @property
    def n_edges(self) -> int:
        """m, the (child, ancestor) pairs of the closure."""
        return len(self.edges)

    def index(self, names: np.ndarray | list[str]) -> np.ndarray:
        """The index of each name (every name must be in the vocabulary).

        names (k,) str -> (k,) int64 node indices; KeyError naming up to five names not in
        the vocabulary.
        """
        names = np.asarray(names)
        at = np.searchsorted(self.names, names).clip(0, max(self.n_nodes - 1, 0))
        if names.size and (self.n_nodes == 0 or not np.array_equal(self.names[at], names)):
            raise KeyError(f"not in the vocabulary: {sorted(set(names.tolist()) - set(self.names.tolist()))[:5]}")
        return at

    def closure(self) -> pl.DataFrame:
        """The closure by name: `id1` (child), `id2` (ancestor), as the reference CSV has it."""
        return pl.DataFrame({"id1": self.names[self.edges[:, 0]], "id2": self.names[self.edges[:, 1]]})

    def leaves(self) -> np.ndarray:
        """Nodes that are no node's ancestor."""
        return np.setdiff1d(np.arange(self.n_nodes), self.edges[:, 1])

    def with_edges(self, keep: np.ndarray) -> Hierarchy:
        """The same vocabulary with only the edges where `keep` (a bool mask over edges)."""
        return Hierarchy(self.names, self.texts, self.edges[keep], self.direct[keep], self.depth, self.aliases)

    def subset(self, nodes: np.ndarray) -> Hierarchy:
        """The hierarchy on `nodes` (sorted indices), re-indexed; edges touching other nodes go."""
        nodes = np.asarray(nodes, dtype=np.int64)
        new = np.full(self.n_nodes, -1, dtype=np.int64)
        new[nodes] = np.arange(len(nodes))
        edges = new[self.edges]
        keep = (edges >= 0).all(axis=1)
        return Hierarchy(
            self.names[nodes], self.texts[nodes], edges[keep], self.direct[keep], self.depth[nodes],
            self.aliases.subset(nodes),
        )  # fmt: skip


def refuse_cycles(names: np.ndarray, edges: np.ndarray) -> None:
    """ValueError, in one line naming a few of its nodes, where the (child, ancestor)
    `edges` (m, 2) (indices into `names` (n,)) make a node its own ancestor: an edge
    (a, a), or a cycle a -> b -> ... -> a (a strongly connected component of more than one
    node; any cycle of a closure has one). 0.2 s on the 743,241 pairs of all WordNet nouns.
    """
    n = len(names)
    if not len(edges):
        return
    graph = sparse.csr_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, component = sparse.csgraph.connected_components(graph, directed=True, connection="strong")
    size = np.bincount(component)
    if (size > 1).any():
        inside = edges[(component[edges[:, 0]] == component[edges[:, 1]]) & (edges[:, 0] != edges[:, 1])]
        cycle = [repr(str(names[i])) for i in _a_cycle(inside, n)]
        shown = " -> ".join([*cycle[:4], "..."] if len(cycle) > 4 else cycle) + f" -> {cycle[0]}"
        raise ValueError(
            f"not a hierarchy: its edges go round, {shown} (child -> ancestor, a cycle of {len(cycle)}); "
            f"{int(size[size > 1].sum())} nodes lie on cycles"
        )
    loops = np.flatnonzero(edges[:, 0] == edges[:, 1])
    if len(loops):
        more = f" (and {len(loops) - 1} more)" if len(loops) > 1 else ""
        raise ValueError(f"not a hierarchy: {str(names[edges[loops[0], 0]])!r} is its own ancestor{more}")


def _a_cycle(inside: np.ndarray, n: int) -> list[int]:
    """One cycle, as its nodes in order, among `inside` (k >= 1, 2): the edges between two
    nodes of a strongly connected component, so every node of one has one going out."""
    out = np.full(n, -1, dtype=np.int64)
    out[inside[:, 0]] = inside[:, 1]  # one edge out of each such node
    seen: dict[int, int] = {}
    node = int(inside[0, 0])
    while node not in seen:
        seen[node] = len(seen)
        node = int(out[node])
    return list(seen)[seen[node] :]


class PairIndex:
    """Whether (a, b) node pairs are among a set of pairs (a closure: is b an ancestor
    of a?), vectorised: each pair coded a * n + b, looked up in a sorted array."""

    def __init__(self, pairs: np.ndarray, n_nodes: int) -> None:
        self.n = n_nodes
        self.keys = np.unique(pairs[:, 0].astype(np.int64) * n_nodes + pairs[:, 1])  # (m,) sorted

    def contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bool array of the broadcast shape of `a` and `b` (node indices)."""
        code = np.asarray(a, dtype=np.int64) * self.n + np.asarray(b, dtype=np.int64)
        if not len(self.keys):
            return np.zeros(code.shape, dtype=bool)
        return self.keys[np.searchsorted(self.keys, code).clip(max=len(self.keys) - 1)] == code


def self_or_ancestor(ancestors: PairIndex, child: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(B, k) True where other[i, j] is child[i] (B,) itself or one of its ancestors:
    never a negative of child[i]."""
    return ancestors.contains(child[:, None], other) | (other == child[:, None])


def draw_non_ancestors(
    ancestors: PairIndex, child: np.ndarray, k: int, draw: Callable[[tuple[int, ...]], np.ndarray], rounds: int
) -> tuple[np.ndarray, np.ndarray]:
    """k nodes for each child (B,) by `draw(shape)`, a draw that is the child or one of
    its ancestors drawn again, up to `rounds` times: ((B, k) nodes, (B, k) still bad).
    Only the slots drawn again are looked up again (in row-major order, as `draw` fills them)."""
    out = draw((len(child), k))
    bad = self_or_ancestor(ancestors, child, out)
    for _ in range(rounds):
        rows, cols = np.nonzero(bad)  # (r,) each, row-major
        if not len(rows):
            break
        redrawn = draw((len(rows),))  # one per bad slot
        out[rows, cols] = redrawn
        bad[rows, cols] = self_or_ancestor(ancestors, child[rows], redrawn[:, None])[:, 0]
    return out, bad


class Siblings:
    """Draws each child's siblings (the other children of its direct parents): the hard
    negatives of Hierarchy Transformers (He et al. 2024, whose training data for hard
    negatives pairs each (child, parent) with the child's siblings).

    direct: (m, 2) (child, parent) direct edges, node indices below `n_nodes`; a draw
    picks one of the child's parents uniformly, then one of that parent's children
    uniformly (so not uniform over the siblings of a child of several parents).
    """

    def __init__(self, direct: np.ndarray, n_nodes: int) -> None:
        self.parents_ptr, self.parents = _csr(direct[:, 0], direct[:, 1], n_nodes)  # by child
        self.children_ptr, self.children = _csr(direct[:, 1], direct[:, 0], n_nodes)  # by parent

    def draw(
        self, child: np.ndarray, k: int, rng: np.random.Generator, ancestors: PairIndex, rounds: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """k siblings of each child (B,): ((B, k) nodes, (B, k) valid). A draw that is the
        child itself, one of its `ancestors` (those the caller knows: the training pairs')
        or a repeat within its row is drawn again, up to `rounds` times; a slot still bad
        (a child of few or no siblings) is invalid and holds the child itself, so that it
        names no node the batch would not hold anyway."""
        child = np.asarray(child, dtype=np.int64)
        out = np.zeros((len(child), k), dtype=np.int64)
        bad = np.ones(out.shape, dtype=bool)
        for _ in range(rounds + 1):
            row, col = np.nonzero(bad)
            if not len(row):
                break
            out[row, col] = self._sibling(child[row], rng)
            bad = self_or_ancestor(ancestors, child, out) | _repeats(out)
        bad |= out < 0
        return np.where(bad, child[:, None], out), ~bad

    def _sibling(self, child: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(B,) one draw per child: a child of one of its parents, or -1 for a root."""
        u, v = rng.random(len(child)), rng.random(len(child))  # drawn for every child: one stream
        out = np.full(len(child), -1, dtype=np.int64)
        count = self.parents_ptr[child + 1] - self.parents_ptr[child]
        has = count > 0
        parent = self.parents[self.parents_ptr[child[has]] + (u[has] * count[has]).astype(np.int64)]
        kids = self.children_ptr[parent + 1] - self.children_ptr[parent]  # >= 1: the child is one
        out[has] = self.children[self.children_ptr[parent] + (v[has] * kids).astype(np.int64)]
        return out


def _csr(key: np.ndarray, value: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ptr (n + 1,), values): `values[ptr[i]:ptr[i + 1]]` are those of key i."""
    order = np.argsort(key, kind="stable")
    return _offsets(np.bincount(key, minlength=n)), np.asarray(value, dtype=np.int64)[order]


def _repeats(rows: np.ndarray) -> np.ndarray:
    """(B, k) True where rows[i, j] repeats another entry of row i (all but one of each value)."""
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    repeat = np.zeros(rows.shape, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    out = np.empty_like(repeat)
    np.put_along_axis(out, order, repeat, axis=1)
    return out


def node_texts(nodes: pl.DataFrame, gloss: bool = False) -> pl.Series:
    """Readable text of each node: its lemmas joined by ", ", then ": gloss" if asked."""
    text = pl.col("lemmas").list.join(", ")
    if gloss:
        text = pl.concat_str([text, pl.lit(": "), pl.col("gloss")])
    return nodes.select(text.alias("text"))["text"]


def node_names(nodes: pl.DataFrame, gloss: bool = False) -> NodeNames:
    """Every name of each node: its text (`node_texts`), then, when it has several
    lemmas, each lemma alone (with ": gloss" if asked)."""
    texts = node_texts(nodes, gloss).to_list()
    lemmas = nodes["lemmas"].to_list()
    glosses = nodes["gloss"].to_list() if gloss else [None] * len(texts)
    return NodeNames.of([
        [text] + ([f"{lemma}: {g}" if gloss else lemma for lemma in each] if len(each) > 1 else [])
        for text, each, g in zip(texts, lemmas, glosses, strict=True)
    ])  # fmt: skip


def build_hierarchy(
    closure: pl.DataFrame, parents: pl.DataFrame, nodes: pl.DataFrame | None = None, gloss: bool = False
) -> Hierarchy:
    """A `Hierarchy` from name tables.

    closure: `id1` (child), `id2` (ancestor); parents: `child`, `parent`, the direct
    edges (those not in the closure are ignored); nodes: `id`, `lemmas` (list of
    readable lemmas) and, for `gloss`, `gloss`. Without `nodes`, a node's text is its id
    up to the first "." with "_" as space (`toy_poodle.n.01` -> "toy poodle"), its only
    name; with them, a node of several lemmas is also named by each (`node_names`).

    KeyError naming up to five ids that `nodes` gives no lemmas; ValueError (`Hierarchy`)
    when a node is its own ancestor or the edges go round.
    """
    names = closure_nodes(closure)
    direct = parents.select(pl.col("child").alias("id1"), pl.col("parent").alias("id2")).unique()
    closure = closure.select("id1", "id2").join(direct.with_columns(direct=pl.lit(True)), on=["id1", "id2"], how="left")
    vocabulary = names.to_numpy().astype(str)
    edges = np.stack([np.searchsorted(vocabulary, closure[c].to_numpy().astype(str)) for c in ("id1", "id2")], axis=1)
    is_direct = closure["direct"].fill_null(False).to_numpy()
    depth = depths(closure.filter("direct").select(child="id1", parent="id2"))
    depth = pl.DataFrame({"id": names}).join(depth, on="id", how="left")["depth"].fill_null(0).to_numpy()
    aliases = None
    if nodes is None:
        texts = names.str.split(".").list.first().str.replace_all("_", " ").to_numpy().astype(str)
    else:
        table = pl.DataFrame({"id": names}).join(nodes, on="id", how="left")
        if table["lemmas"].null_count():
            raise KeyError(f"no text for {table.filter(pl.col('lemmas').is_null())['id'].head(5).to_list()}")
        aliases = node_names(table, gloss)
        texts = aliases.first()  # each node's first name is its text (`node_texts`)
    return Hierarchy(
        names=vocabulary,
        texts=texts,
        edges=edges.astype(np.int64),
        direct=is_direct.astype(bool),
        depth=depth.astype(np.int64),
        aliases=aliases,
    )


def wordnet_mammals(gloss: bool = False) -> Hierarchy:
    """The mammal closure of Nickel & Kiela 2017: 1,180 nodes, 6,540 edges, root `mammal.n.01` at depth 0."""
    graph = noun_graph()
    return build_hierarchy(mammal_closure(transitive_closure(graph.edges)), graph.edges, graph.nodes, gloss)


def wordnet_nouns(gloss: bool = False) -> Hierarchy:
    """The closure of all WordNet nouns: 82,115 nodes, 743,241 edges, root `entity.n.01`."""
    graph = noun_graph()
    return build_hierarchy(transitive_closure(graph.edges), graph.edges, graph.nodes, gloss)


@dataclass(frozen=True)
class Split:
    """A training hierarchy and the (child, ancestor) pairs held out from it.

    train: what a model may see; node i of `train` is node `nodes[i]` of `full`
        (for an edge split every node, for a node split only the kept ones).
    test_edges: (k, 2) held-out pairs in `full`'s indices.
    test_nodes: the held-out nodes (empty for an edge split).
    """

    full: Hierarchy
    train: Hierarchy
    nodes: np.ndarray
    test_edges: np.ndarray
    test_nodes: np.ndarray

    def train_edges(self) -> np.ndarray:
        """(m, 2) training pairs in `full`'s indices."""
        return self.nodes[self.train.edges]


def split_edges(h: Hierarchy, share: float, seed: int = 0) -> Split:
    """Hold out `share` of the closure edges, drawn among those that are not direct parent edges
    (0: none; ValueError for a share outside [0, 1), one that rounds to no edge, or more than
    the non-direct edges).

    The direct edges all stay in training, so the basic hierarchy stays connected and
    every held-out pair is implied by training edges only through transitivity.
    """
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1), got {share}")
    candidates, count = np.flatnonzero(~h.direct), round(share * h.n_edges)
    if share and not count:
        raise ValueError(f"a share of {share:g} holds out none of {h.n_edges} edges")
    if count > len(candidates):
        raise ValueError(f"asked to hold out {count} edges, only {len(candidates)} are not direct parent edges")
    held = np.sort(np.random.default_rng(seed).choice(candidates, size=count, replace=False))
    keep = np.ones(h.n_edges, dtype=bool)
    keep[held] = False
    nodes = np.arange(h.n_nodes)
    return Split(h, h.with_edges(keep), nodes, h.edges[held], np.empty(0, dtype=np.int64))


def homonym_groups(names: NodeNames) -> np.ndarray:
    """(n,) int64, a group per node: the connected components of nodes linked by a shared
    name, case aside (`str.lower`: the encoders' tokenizers are uncased, so `Afghan` and
    `afghan` are one text to them)."""
    n = len(names.ptr) - 1
    _, name = np.unique(np.char.lower(names.texts.astype(str)), return_inverse=True)  # (L,) a code per name
    node = np.repeat(np.arange(n), names.counts)  # (L,) the node of each name
    links = sparse.coo_matrix((np.ones(len(node)), (node, n + name)), shape=(n + name.max(initial=-1) + 1,) * 2)
    return sparse.csgraph.connected_components(links, directed=False)[1][:n].astype(np.int64)


def split_nodes(h: Hierarchy, share: float, seed: int = 0) -> Split:
    """Hold out `share` of the nodes, drawn among the leaves, with every edge that touches them
    (0: none; ValueError for a share outside [0, 1), one that rounds to no node, or more
    than the leaves whose names no inner node has).

    Nodes that share a name, case aside (homonyms: three `pony` synsets among the
    mammals; any of their `aliases`: `homonym_groups`) go to the same side, and a name
    is held out only when all its nodes are leaves, so no held-out name is seen in
    training; the count may overshoot by a homonym or two.
    The training hierarchy is re-indexed on the kept nodes. Removing leaves
    disconnects no kept node.
    """
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1), got {share}")
    group = homonym_groups(h.aliases)
    inner = np.ones(h.n_nodes, dtype=bool)
    inner[h.leaves()] = False
    eligible = np.flatnonzero(np.bincount(group, weights=inner) == 0)  # texts of leaves only
    order = np.random.default_rng(seed).permutation(eligible)
    reached = np.cumsum(np.bincount(group)[order])  # nodes held out after each group
    target = round(share * h.n_nodes)
    if share and not target:
        raise ValueError(f"a share of {share:g} holds out none of {h.n_nodes} nodes")
    if target > (reached[-1] if len(reached) else 0):
        raise ValueError(f"asked to hold out {target} nodes, only {reached[-1] if len(reached) else 0} leaves can be")
    taken = order[: np.searchsorted(reached, target) + 1] if target else order[:0]
    held = np.flatnonzero(np.isin(group, taken))
    touches = np.isin(h.edges, held).any(axis=1)
    nodes = np.setdiff1d(np.arange(h.n_nodes), held)
    return Split(h, h.subset(nodes), nodes, h.edges[touches], held)
