"""Lexical comparison of many query pairs, each distinct text processed once.

Logs repeat themselves: the same queries come back from user to user and day to
day. A `Lexicon` encodes the queries of a log once (a categorical code per row),
normalises each distinct text once, and answers questions about pairs of rows by
working on the distinct pairs of normalised texts only, so the cost follows the
log's vocabulary rather than its length.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import polars as pl

from sessions.text import normalize, set_containment, set_jaccard, term_overlap, terms, trigrams


def encode(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Dense codes of a string column (first occurrence = 0, 1, ...) and the distinct
    values in code order: values == distinct.gather(codes)."""
    categorical = values.cast(pl.Categorical(pl.Categories.random()))  # a fresh mapping: codes from 0
    codes = categorical.to_physical()
    distinct = categorical.unique()
    by_code = pl.DataFrame({"code": distinct.to_physical(), "value": distinct.cast(pl.String)}).sort("code")
    return codes.to_numpy().astype(np.int64), by_code["value"].rename(values.name)


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array, sorted (as np.unique, which numpy 2.4
    makes far slower than a sort and a mask on large arrays)."""
    ordered = np.sort(keys)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered


def pack(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Two non-negative int arrays below 2**32 as one uint64 key each (high first)."""
    return (high.astype(np.uint64) << np.uint64(32)) | low.astype(np.uint64)


def unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `pack`."""
    return (keys >> np.uint64(32)).astype(np.int64), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


def distinct_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (a, b) pairs of two int arrays below 2**32, and for each input pair
    the index of its distinct pair."""
    keys = pack(a, b)
    unique = sorted_unique(keys)
    return (*unpack(unique), np.searchsorted(unique, keys))


@dataclass(frozen=True)
class Closeness:
    """When two queries count as lexically close."""

    min_overlap: float  # term overlap |A ∩ B| / min(|A|, |B|)
    min_jaccard: float  # character 3-gram Jaccard


class Lexicon:
    """The normalised texts, terms and 3-grams of a column of queries.

    `text_id[i]` is the id of row i's normalised text; the questions take arrays of
    text ids, so that callers can pair any rows they like.
    """

    def __init__(self, queries: pl.Series) -> None:
        codes, distinct = encode(queries)
        norm_codes, self.texts = encode(pl.select(normalize(pl.lit(distinct))).to_series())
        self.text_id = norm_codes[codes]
        self._terms: pl.Series | None = None
        self._trigrams: pl.Series | None = None
        self._term_csr: tuple[np.ndarray, np.ndarray] | None = None
        self._term_vocab: pl.Series | None = None

    def rows(self, offset: int, length: int) -> Lexicon:
        """The same lexicon for a slice of the rows (sharing every per-text table, which
        are computed first so that views used from several threads only read them)."""
        _ = self.term_lists, self.trigram_lists, self.term_vocab
        view = copy.copy(self)
        view.text_id = self.text_id[offset : offset + length]
        return view

    @property
    def term_lists(self) -> pl.Series:
        if self._terms is None:
            self._terms = pl.select(terms(pl.lit(self.texts))).to_series()
        return self._terms

    @property
    def term_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct terms of every text as integer codes, compressed by rows: the terms
        of text t are codes[offsets[t]:offsets[t + 1]]."""
        if self._term_csr is None:
            lists = self.term_lists.list.unique(maintain_order=True)
            counts = lists.list.len().to_numpy().astype(np.int64)
            codes, self._term_vocab = encode(lists.explode(empty_as_null=False).drop_nulls())
            self._term_csr = (np.concatenate(([0], np.cumsum(counts))), codes)
        return self._term_csr

    @property
    def term_vocab(self) -> pl.Series:
        """The distinct terms, by term code."""
        _ = self.term_codes
        assert self._term_vocab is not None
        return self._term_vocab

    @property
    def trigram_lists(self) -> pl.Series:
        if self._trigrams is None:
            self._trigrams = trigrams(self.texts)
        return self._trigrams

    PAIRS_AT_ONCE = 1 << 18

    def close(self, a: np.ndarray, b: np.ndarray, rule: Closeness) -> np.ndarray:
        """Whether texts a[i] and b[i] are lexically close: the same, or term overlap
        >= rule.min_overlap, or 3-gram Jaccard >= rule.min_jaccard."""
        same = a == b
        result = same.copy()
        todo = np.flatnonzero(~same)
        if not len(todo):
            return result
        ua, ub, inverse = distinct_pairs(a[todo], b[todo])
        hit = np.zeros(len(ua), dtype=bool)
        # Pairs a slice at a time: long texts (prompts of thirty terms and a few hundred
        # 3-grams) held as lists for millions of pairs at once would take gigabytes.
        for start in range(0, len(ua), self.PAIRS_AT_ONCE):
            pa_, pb = ua[start : start + self.PAIRS_AT_ONCE], ub[start : start + self.PAIRS_AT_ONCE]
            frame = pl.DataFrame({"ta": self.term_lists.gather(pa_), "tb": self.term_lists.gather(pb)})
            part = frame.select(term_overlap(pl.col("ta"), pl.col("tb")) >= rule.min_overlap).to_series().to_numpy()
            open_ = np.flatnonzero(~part)
            if len(open_):
                grams = self.trigram_lists
                frame = pl.DataFrame({"ga": grams.gather(pa_[open_]), "gb": grams.gather(pb[open_])})
                jaccard = frame.select(set_jaccard(pl.col("ga"), pl.col("gb"))).to_series().to_numpy()
                part[open_] = jaccard >= rule.min_jaccard
            hit[start : start + len(part)] = part
        result[todo] = hit[inverse]
        return result

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n, 3) float64: term overlap, 3-gram Jaccard and the share of text a[i]'s
        3-grams found in text b[i] (`sessions.text`), for texts a[i] and b[i]."""
        out = np.zeros((len(a), 3))
        if not len(a):
            return out
        ua, ub, inverse = distinct_pairs(a, b)
        for start in range(0, len(ua), self.PAIRS_AT_ONCE):
            pa_, pb = ua[start : start + self.PAIRS_AT_ONCE], ub[start : start + self.PAIRS_AT_ONCE]
            terms_a, terms_b = self.term_lists.gather(pa_), self.term_lists.gather(pb)
            grams_a, grams_b = self.trigram_lists.gather(pa_), self.trigram_lists.gather(pb)
            part = pl.DataFrame({"ta": terms_a, "tb": terms_b, "ga": grams_a, "gb": grams_b}).select(
                term_overlap(pl.col("ta"), pl.col("tb")).alias("overlap"),
                set_jaccard(pl.col("ga"), pl.col("gb")).alias("jaccard"),
                set_containment(pl.col("ga"), pl.col("gb")).alias("containment"),
            )
            rows = np.flatnonzero((inverse >= start) & (inverse < start + len(pa_)))
            out[rows] = part.to_numpy()[inverse[rows] - start]
        return out

    def contained(self, a: np.ndarray, b: np.ndarray, min_share: float) -> np.ndarray:
        """Whether at least `min_share` of text a[i]'s 3-grams occur in text b[i]."""
        result = np.zeros(len(a), dtype=bool)
        if not len(a):
            return result
        ua, ub, inverse = distinct_pairs(a, b)
        grams = self.trigram_lists
        frame = pl.DataFrame({"ga": grams.gather(ua), "gb": grams.gather(ub)})
        share = frame.select(set_containment(pl.col("ga"), pl.col("gb"))).to_series().to_numpy()
        return (share >= min_share)[inverse]
