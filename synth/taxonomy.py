"""A concept hierarchy as integer arrays, for drawing topics and reformulations of
millions of queries at once.

The generator knows nothing of WordNet itself: it takes a `Taxonomy` of plain polars
tables (`Taxonomy.wordnet()` builds one from its nouns), so any is-a hierarchy with names
can drive it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# Topics are drawn from concepts at least this deep: below "entity", "object", ...
MIN_TOPIC_DEPTH = 4
# Generalising never climbs above this depth: nobody searches for "physical entity".
MIN_QUERY_DEPTH = 3
# What people search for, by WordNet category: things, places, people, food, health,
# culture; abstract categories (noun.attribute, noun.relation, ...) are not topics.
TOPIC_CATEGORY_WEIGHT = {
    "noun.artifact": 3.0, "noun.animal": 3.0, "noun.food": 3.0, "noun.location": 3.0,
    "noun.plant": 2.0, "noun.person": 2.0, "noun.object": 1.0, "noun.body": 1.0,
    "noun.state": 1.0, "noun.communication": 1.0, "noun.act": 1.0, "noun.group": 1.0,
    "noun.substance": 0.5, "noun.event": 0.5,
}  # fmt: skip
# What people draw: things that can be seen.
PROMPT_CATEGORY_WEIGHT = {
    "noun.animal": 3.0, "noun.artifact": 3.0, "noun.plant": 2.0, "noun.location": 2.0,
    "noun.person": 2.0, "noun.food": 1.0, "noun.object": 2.0, "noun.phenomenon": 0.5,
}  # fmt: skip


@dataclass(frozen=True)
class Taxonomy:
    """Concepts and their direct is-a edges.

    concepts: `id` (str), `lemmas` (list[str]: names, preferred first),
        `lemma_counts` (list[int]: how common each name is), `depth` (int),
        `lexname` (str: a coarse category such as noun.animal).
    edges: `child`, `parent` (concept ids).
    """

    concepts: pl.DataFrame
    edges: pl.DataFrame

    @classmethod
    def wordnet(cls) -> Taxonomy:
        """WordNet 3.0's nouns (what `sessionflow synth` draws topics from)."""
        from hierarchies.wordnet import noun_concepts, noun_graph

        graph = noun_graph()
        return cls(noun_concepts(graph), graph.edges)


def _csr(groups: np.ndarray, members: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Compressed rows: members of group g are members[ptr[g]:ptr[g + 1]]."""
    order = np.argsort(groups, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, groups + 1, 1)
    return np.cumsum(ptr), members[order]


class WeightedRows:
    """Draw one member per row of a CSR table, with probability proportional to a weight."""

    def __init__(self, ptr: np.ndarray, members: np.ndarray, weights: np.ndarray) -> None:
        self.ptr, self.members = ptr, members
        self.cum = np.cumsum(weights, dtype=np.float64)
        before = np.concatenate(([0.0], self.cum))
        self.lo = before[ptr[:-1]]
        self.total = before[ptr[1:]] - self.lo

    def count(self, rows: np.ndarray) -> np.ndarray:
        """(k,) int64, how many members each of `rows` (k,) has."""
        return self.ptr[rows + 1] - self.ptr[rows]

    def draw(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A member of each row (rows must be non-empty); u uniform in [0, 1)."""
        target = self.lo[rows] + u * self.total[rows]
        pos = np.searchsorted(self.cum, target, side="right")
        return self.members[np.clip(pos, self.ptr[rows], self.ptr[rows + 1] - 1)]


class ConceptIndex:
    """Integer-indexed arrays of a Taxonomy for vectorised sampling."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        concepts = taxonomy.concepts
        self.n = concepts.height
        self.ids = concepts["id"]
        index = {cid: i for i, cid in enumerate(self.ids.to_list())}
        self.depth = concepts["depth"].fill_null(0).to_numpy().astype(np.int32)
        counts = concepts["lemma_counts"].list.sum().fill_null(0).to_numpy().astype(np.float64)
        self.lexname = concepts["lexname"].to_numpy()

        edges = taxonomy.edges.filter(
            pl.col("child").is_in(self.ids.implode()) & pl.col("parent").is_in(self.ids.implode())
        )
        child = np.array([index[c] for c in edges["child"].to_list()], dtype=np.int64)
        parent = np.array([index[p] for p in edges["parent"].to_list()], dtype=np.int64)
        ptr, kids = _csr(parent, child, self.n)
        self.children = WeightedRows(ptr, kids, counts[kids] + 0.5)  # common children are likelier
        ptr, pars = _csr(child, parent, self.n)
        self.parents = WeightedRows(ptr, pars, np.ones(len(pars)))

        # Names: all lemmas flattened, the preferred (first) one weighted up.
        lemmas = (
            concepts.select(pl.int_range(pl.len()).alias("concept"), "lemmas", "lemma_counts")
            .explode("lemmas", "lemma_counts")
            .with_columns(rank=pl.int_range(pl.len()).over("concept"))
        )
        self.lemma_text = lemmas["lemmas"].str.to_lowercase()
        weight = (lemmas["lemma_counts"].fill_null(0).to_numpy() + 1.0) * np.where(
            lemmas["rank"].to_numpy() == 0, 4.0, 1.0
        )
        ptr, members = _csr(lemmas["concept"].to_numpy(), np.arange(lemmas.height), self.n)
        self.lemmas = WeightedRows(ptr, members, weight[members])

        self.topic_cum = {}
        for style, weights in (("aol", TOPIC_CATEGORY_WEIGHT), ("prompt", PROMPT_CATEGORY_WEIGHT)):
            category = np.array([weights.get(lex, 0.0) for lex in self.lexname])
            prior = np.where(self.depth >= MIN_TOPIC_DEPTH, category * (counts + 0.1) ** 0.7, 0.0)
            if prior.sum() == 0:  # a hierarchy without WordNet's categories
                prior = np.where(self.depth >= MIN_TOPIC_DEPTH, counts + 0.1, 0.0) + 1e-12
            self.topic_cum[style] = np.cumsum(prior / prior.sum())

    def topics(self, u: np.ndarray, style: str = "aol") -> np.ndarray:
        """Topic concepts for a log style, common ones likelier; u uniform in [0, 1)."""
        return np.minimum(np.searchsorted(self.topic_cum[style], u, side="right"), self.n - 1)

    def child(self, c: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A hyponym of each concept, and whether there was one (else c)."""
        ok = self.children.count(c) > 0
        out = c.copy()
        out[ok] = self.children.draw(c[ok], u[ok])
        return out, ok

    def parent(self, c: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A hypernym of each concept not above MIN_QUERY_DEPTH, and whether there was one."""
        ok = (self.parents.count(c) > 0) & (self.depth[c] > MIN_QUERY_DEPTH)
        out = c.copy()
        out[ok] = self.parents.draw(c[ok], u[ok])
        return out, ok

    def sibling(self, c: np.ndarray, u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Another hyponym of one of each concept's hypernyms, and whether one was found."""
        has_parent = self.parents.count(c) > 0
        out = c.copy()
        p = self.parents.draw(c[has_parent], u1[has_parent])
        out[has_parent] = self.children.draw(p, u2[has_parent])
        ok = has_parent & (out != c)
        out[~ok] = c[~ok]
        return out, ok

    def lemma(self, c: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Index into `lemma_text` of a name for each concept."""
        return self.lemmas.draw(c, u)
