"""Lexical comparison of many query pairs, each distinct text processed once.

Logs repeat themselves: the same queries come back from user to user and day to
day. A `Lexicon` encodes the queries of a log once (a categorical code per row),
normalises each distinct text once and holds its terms and character 3-grams as
integer `Sets`; questions about pairs of rows are answered by intersecting those
sets in a compiled merge (numba), with no per-pair Python and no per-pair lists, so
a pair costs a few dozen integer comparisons whatever the log's length.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl
import pyarrow.compute as pc

from sessions.parallel import default_workers, ordered_map
from sessions.text import normalize, per_text, query_keys, terms, trigram_codes

SORT_PART = 1 << 20  # codes a thread sorts at least, in `Sets.of`


def encode(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Dense codes of a string column (first occurrence = 0, 1, ...) and the distinct
    values in code order: values == distinct.gather(codes); (n,) int64 and a String
    series. Arrow's hash-based dictionary encoding (`pyarrow.compute.dictionary_encode`).
    ValueError for a column with nulls."""
    if values.null_count():
        raise ValueError(f"column {values.name!r}: {values.null_count()} nulls to encode (fill them first)")
    encoded = pc.dictionary_encode(values.cast(pl.String).to_arrow())
    codes = pl.from_arrow(encoded.indices).to_numpy().astype(np.int64)  # not np.asarray: it imports pandas
    return codes, pl.Series(values.name, encoded.dictionary, dtype=pl.String)


@dataclass(frozen=True)
class Sets:
    """One set of integer codes per text, compressed by rows: text t's set is
    codes[offsets[t]:offsets[t + 1]], sorted and without repeats.

    offsets: (n + 1,) int64; codes: (offsets[-1],) int64.
    """

    offsets: np.ndarray
    codes: np.ndarray

    @classmethod
    def of(cls, offsets: np.ndarray, codes: np.ndarray) -> Sets:
        """The sets of rows given in any order and with repeats (same layout). Rows are
        sorted in parts of at least `SORT_PART` codes side by side (`parallel.ordered_map`:
        the compiled sort releases the GIL)."""
        offsets, codes = offsets.astype(np.int64, copy=False), codes.astype(np.int64, copy=False)
        parts = min(default_workers(), len(codes) // SORT_PART)
        if parts < 2:
            return cls(*_sorted_sets(offsets, codes))
        rows = len(offsets) - 1
        cuts = np.searchsorted(offsets, np.linspace(0, offsets[-1], parts + 1)).clip(0, rows)
        edges = np.unique(np.concatenate(([0], cuts, [rows]))).tolist()

        def sort(edge: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            first, last = offsets[edge[0]], offsets[edge[1]]
            return _sorted_sets(offsets[edge[0] : edge[1] + 1] - first, codes[first:last])

        done = list(ordered_map(sort, itertools.pairwise(edges)))
        shifts = np.cumsum([0] + [len(part_codes) for _, part_codes in done[:-1]])
        stitched = [part_offsets[1:] + shift for (part_offsets, _), shift in zip(done, shifts, strict=True)]
        return cls(np.concatenate([[0], *stitched]), np.concatenate([part_codes for _, part_codes in done]))

    @property
    def sizes(self) -> np.ndarray:
        """(n,) int64: the size of each text's set."""
        return np.diff(self.offsets)

    def intersections(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a),) int64: |set(a[i]) ∩ set(b[i])| for text ids a[i], b[i]. ValueError
        for arrays of other lengths or ids out of range."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        if a.shape != b.shape:
            raise ValueError(f"two arrays of one length, not {a.shape} and {b.shape}")
        _check_ids(np.concatenate((a, b)), len(self.offsets) - 1, "text ids")
        return _intersections(self.offsets, self.codes, a, b)


@numba.njit(cache=True, nogil=True)
def _sorted_sets(offsets: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`Sets.of`, compiled: each row's codes sorted, repeats dropped."""
    out = np.empty_like(codes)
    out_offsets = np.empty_like(offsets)
    out_offsets[0] = 0
    k = 0
    for row in range(len(offsets) - 1):
        lo, hi, start = offsets[row], offsets[row + 1], k
        if hi - lo > 32:  # a long prompt
            for value in np.sort(codes[lo:hi]):
                if k == start or value != out[k - 1]:
                    out[k] = value
                    k += 1
        else:  # a query's few terms or 3-grams: insertion into place, no allocation
            for j in range(lo, hi):
                value, at = codes[j], k
                while at > start and out[at - 1] > value:
                    at -= 1
                if at > start and out[at - 1] == value:
                    continue  # a repeat
                for q in range(k, at, -1):
                    out[q] = out[q - 1]
                out[at] = value
                k += 1
        out_offsets[row + 1] = k
    return out_offsets, out[:k].copy()


@numba.njit(cache=True, nogil=True)
def _shared(offsets: np.ndarray, codes: np.ndarray, x: int, y: int) -> int:
    """|set(x) ∩ set(y)|: a merge of the two sorted runs, without branches on the
    values (which of two codes is smaller is a coin toss the CPU would mispredict half
    the time; a 3-gram merge takes about 20% less this way)."""
    i, i_end, j, j_end = offsets[x], offsets[x + 1], offsets[y], offsets[y + 1]
    shared = 0
    while i < i_end and j < j_end:
        u, v = codes[i], codes[j]
        shared += u == v
        i += u <= v
        j += v <= u
    return shared


@numba.njit(cache=True, nogil=True)
def _intersections(offsets: np.ndarray, codes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`Sets.intersections`, compiled."""
    out = np.zeros(len(a), dtype=np.int64)
    for i in range(len(a)):
        out[i] = _shared(offsets, codes, a[i], b[i])
    return out


@numba.njit(cache=True, nogil=True)
def _overlap(shared: int, size_a: int, size_b: int) -> float:
    """Term overlap |A ∩ B| / min(|A|, |B|), 0 when either is empty."""
    smaller = min(size_a, size_b)
    return shared / smaller if smaller > 0 else 0.0


@numba.njit(cache=True, nogil=True)
def _jaccard(shared: int, size_a: int, size_b: int) -> float:
    """Jaccard |A ∩ B| / |A ∪ B|, 0 when both are empty."""
    union = size_a + size_b - shared
    return shared / union if union > 0 else 0.0


@numba.njit(cache=True, nogil=True)
def _similarity(
    term_offsets: np.ndarray, term_codes: np.ndarray, gram_offsets: np.ndarray, gram_codes: np.ndarray,
    a: np.ndarray, b: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """`Lexicon.similarity`, compiled."""
    out = np.zeros((len(a), 3))
    for i in range(len(a)):
        x, y = a[i], b[i]
        terms_x, terms_y = term_offsets[x + 1] - term_offsets[x], term_offsets[y + 1] - term_offsets[y]
        out[i, 0] = _overlap(_shared(term_offsets, term_codes, x, y), terms_x, terms_y)
        grams_x, grams_y = gram_offsets[x + 1] - gram_offsets[x], gram_offsets[y + 1] - gram_offsets[y]
        shared = _shared(gram_offsets, gram_codes, x, y)
        out[i, 1] = _jaccard(shared, grams_x, grams_y)
        out[i, 2] = _containment(shared, grams_x)
    return out


@numba.njit(cache=True, nogil=True)
def _containment(shared: int, size_a: int) -> float:
    """Containment |A ∩ B| / |A|, 0 when A is empty."""
    return shared / size_a if size_a > 0 else 0.0


@numba.njit(cache=True, nogil=True)
def _contained_before(
    offsets: np.ndarray, codes: np.ndarray, text: np.ndarray, rows: np.ndarray, earliest: np.ndarray, back: int,
    min_share: float,
) -> np.ndarray:  # fmt: skip
    """`Lexicon.contained_before`, compiled: each row against the texts of its earlier
    rows, nearest first, each distinct text once, until one holds enough of its 3-grams
    or `back` distinct texts with 3-grams have been read."""
    out = np.zeros(len(rows), dtype=np.bool_)
    reach = 1
    for i in range(len(rows)):
        reach = max(reach, rows[i] - earliest[i])
    seen = np.empty(min(back, reach), dtype=np.int64)  # the distinct texts with 3-grams read so far
    for i in range(len(rows)):
        x, read = text[rows[i]], 0
        if offsets[x + 1] == offsets[x] and min_share > 0.0:
            continue  # no 3-grams to find
        for member in range(rows[i] - 1, earliest[i] - 1, -1):
            t = text[member]
            if offsets[t + 1] == offsets[t]:  # no 3-grams (a blank query's text is its row's): no slot
                if min_share <= 0.0:  # ... but a share of 0 is held by any text
                    out[i] = True
                    break
                continue
            repeat = False
            for k in range(read):
                if seen[k] == t:
                    repeat = True
                    break
            if repeat:
                continue  # a repeated text holds what it held the first time
            if _containment(_shared(offsets, codes, x, t), offsets[x + 1] - offsets[x]) >= min_share:
                out[i] = True
                break
            seen[read] = t
            read += 1
            if read == back:
                break
    return out


@numba.njit(cache=True, nogil=True)
def is_close(
    term_offsets: np.ndarray, term_codes: np.ndarray, gram_offsets: np.ndarray, gram_codes: np.ndarray,
    x: int, y: int, min_overlap: float, min_jaccard: float,
) -> bool:  # fmt: skip
    """`Lexicon.close` of one pair of texts, for compiled callers (numba): the tables are
    `Lexicon.tables`; each measure is computed only while the pair is still open."""
    if x == y:
        return True
    terms_x, terms_y = term_offsets[x + 1] - term_offsets[x], term_offsets[y + 1] - term_offsets[y]
    if _overlap(_shared(term_offsets, term_codes, x, y), terms_x, terms_y) >= min_overlap:
        return True
    grams_x, grams_y = gram_offsets[x + 1] - gram_offsets[x], gram_offsets[y + 1] - gram_offsets[y]
    return _jaccard(_shared(gram_offsets, gram_codes, x, y), grams_x, grams_y) >= min_jaccard


@numba.njit(cache=True, nogil=True)
def _close(
    term_offsets: np.ndarray, term_codes: np.ndarray, gram_offsets: np.ndarray, gram_codes: np.ndarray,
    a: np.ndarray, b: np.ndarray, min_overlap: float, min_jaccard: float,
) -> np.ndarray:  # fmt: skip
    """`Lexicon.close`, compiled."""
    out = np.zeros(len(a), dtype=np.bool_)
    for i in range(len(a)):
        out[i] = is_close(term_offsets, term_codes, gram_offsets, gram_codes, a[i], b[i], min_overlap, min_jaccard)
    return out


@dataclass(frozen=True)
class Closeness:
    """When two queries count as lexically close."""

    min_overlap: float  # term overlap |A ∩ B| / min(|A|, |B|)
    min_jaccard: float  # character 3-gram Jaccard


class Lexicon:
    """The normalised texts, terms and 3-grams of a column of queries.

    `text_id[i]` is the id of row i's normalised text; the questions take arrays of
    text ids, so that callers can pair any rows they like. Two rows of one text id are
    the same query to every caller; a query without terms (normalised to nothing:
    stop words, punctuation, symbols, emoji) has a text of its own, shared only by its
    case and spacing variants (`sessions.text.near_duplicate_key`), and a missing or
    blank query one of its row's, so that no two such queries are judged the same
    for the nothing they share. `termless` holds the ids of the texts without terms
    (sorted; a blank query's are not among them) and `termless_keys` their keys
    (`sessions.text.query_keys`), which mission linking takes as such a text's one term.
    The measures (after
    `sessions.text`), each 0 when its denominator is:

    - term overlap |A ∩ B| / min(|A|, |B|) over the texts' sets of terms;
    - 3-gram Jaccard |A ∩ B| / |A ∪ B| over their sets of character 3-grams;
    - 3-gram containment |A ∩ B| / |A|: the share of a's 3-grams found in b.
    """

    def __init__(self, queries: pl.Series) -> None:
        codes, distinct = encode(queries.fill_null(""))
        norm = per_text(normalize, distinct)
        # A query with no terms (stop words, punctuation, symbols, emoji: normalised to
        # nothing) holds no lexical evidence: its text is its own, shared only by its case
        # and spacing variants (`🍕` is not `🎉`, nor `the` `what is html`), and a missing
        # or blank query's is its row's.
        keyed = query_keys(distinct, norm)
        is_blank = keyed.is_null().to_numpy()
        key_codes, keys = encode(keyed.fill_null(""))
        text_id = key_codes[codes]
        blank = np.flatnonzero(is_blank[codes])
        text_id[blank] = len(keys) + np.arange(len(blank))
        # the texts without terms but a blank's, and their keys (before `scatter` empties them in `keys`)
        self.termless = np.unique(key_codes[(norm == "").to_numpy() & ~is_blank])
        self.termless_keys = keys.gather(self.termless)
        bare = key_codes[(norm == "").to_numpy()]  # the keys of texts without terms
        self.texts = pl.concat([keys.scatter(bare, ""), pl.Series([""] * len(blank), dtype=pl.String)])
        self.text_id = text_id
        self._terms: pl.Series | None = None
        self._term_sets: Sets | None = None
        self._term_vocab: pl.Series | None = None
        self._trigram_sets: Sets | None = None

    def rows(self, offset: int, length: int) -> Lexicon:
        """The same lexicon for a slice of the rows, sharing every per-text table (`tables`,
        built here when missing: a caller handing views to several threads builds them
        before, so that the threads only read them)."""
        _ = self.tables
        view = copy.copy(self)
        view.text_id = self.text_id[offset : offset + length]
        return view

    @property
    def term_lists(self) -> pl.Series:
        """Each text's terms as a list, in text order, repeats kept."""
        if self._terms is None:
            self._terms = per_text(terms, self.texts)
        return self._terms

    @property
    def term_sets(self) -> Sets:
        """Each text's distinct terms as term codes (`term_vocab[code]` is the term)."""
        if self._term_sets is None:
            lists = self.term_lists
            counts = lists.list.len().to_numpy().astype(np.int64, copy=False)
            codes, self._term_vocab = encode(lists.explode(empty_as_null=False).drop_nulls())
            self._term_sets = Sets.of(np.concatenate(([0], np.cumsum(counts))), codes)
        return self._term_sets

    @property
    def term_vocab(self) -> pl.Series:
        """The distinct terms, by term code."""
        _ = self.term_sets
        assert self._term_vocab is not None
        return self._term_vocab

    @property
    def trigram_sets(self) -> Sets:
        """Each text's distinct character 3-grams (`sessions.text.trigram_codes`)."""
        if self._trigram_sets is None:
            self._trigram_sets = Sets.of(*trigram_codes(self.texts))
        return self._trigram_sets

    @property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(term offsets, term codes, 3-gram offsets, 3-gram codes): the `Sets` that
        compiled callers of `is_close` take. The two are built side by side when missing."""
        if self._term_sets is None and self._trigram_sets is None:  # independent: each thread sets its own fields
            list(ordered_map(lambda build: build(), [lambda: self.term_sets, lambda: self.trigram_sets]))
        terms_, grams = self.term_sets, self.trigram_sets
        return terms_.offsets, terms_.codes, grams.offsets, grams.codes

    def close(self, a: np.ndarray, b: np.ndarray, rule: Closeness) -> np.ndarray:
        """Whether texts a[i] and b[i] are lexically close: the same, or term overlap
        >= rule.min_overlap, or 3-gram Jaccard >= rule.min_jaccard. (n,) bool.
        ValueError for ids that are not text ids, or a and b of other lengths."""
        return _close(*self.tables, *self._text_pairs(a, b), rule.min_overlap, rule.min_jaccard)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n, 3) float64: term overlap, 3-gram Jaccard and 3-gram containment of text
        a[i] in text b[i] (see the class docstring), for texts a[i] and b[i].
        ValueError as for `close`."""
        return _similarity(*self.tables, *self._text_pairs(a, b))

    def _text_pairs(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """a and b as int64 text ids, checked (the compiled kernels do not check bounds)."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"pairs of texts need two 1-d arrays of one length, not {a.shape} and {b.shape}")
        _check_ids(np.concatenate((a, b)), len(self.texts), "text ids")
        return a, b

    def contained_before(self, rows: np.ndarray, earliest: np.ndarray, back: int, min_share: float) -> np.ndarray:
        """For each row r = rows[i]: whether at least `min_share` of its text's 3-grams
        occur in the text of one of the rows before it, back to row earliest[i], among
        the `back` distinct texts nearest to r: rows of one text id count once, at their
        latest row (a repeated query, a duplicated row, takes no second place), and texts
        without 3-grams (a query without terms, a blank one) take none, since they hold
        none of any query's 3-grams. (len(rows),) bool. ValueError for rows and earliest
        of other lengths, rows out of range, or `back` below 1."""
        rows, earliest = np.asarray(rows, dtype=np.int64), np.asarray(earliest, dtype=np.int64)
        if rows.shape != earliest.shape or rows.ndim != 1:
            raise ValueError(f"rows and earliest need one length, not {rows.shape} and {earliest.shape}")
        _check_ids(np.concatenate((rows, earliest)), len(self.text_id), "rows")
        if back < 1:
            raise ValueError(f"back must be at least 1, not {back}")
        grams = self.trigram_sets
        return _contained_before(grams.offsets, grams.codes, self.text_id.astype(np.int64, copy=False), rows,
                                 earliest, back, min_share)  # fmt: skip


def _check_ids(ids: np.ndarray, n: int, what: str) -> None:
    """ValueError unless every id is in [0, n)."""
    if len(ids) and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"{what} must be in [0, {n}): got {ids.min()} .. {ids.max()}")


def trigram_jaccard(a: pl.Series, b: pl.Series) -> pl.Series:
    """Character 3-gram Jaccard of the normalised queries a[i] and b[i] (0 when both
    are empty or missing), as a Float64 series named `jaccard`. ValueError for series
    of other lengths."""
    if len(a) != len(b):
        raise ValueError(f"trigram_jaccard needs two series of one length, not {len(a)} and {len(b)}")
    lexicon = Lexicon(pl.concat([a.cast(pl.String), b.cast(pl.String)]))
    ids = lexicon.text_id
    return pl.Series("jaccard", lexicon.similarity(ids[: len(a)], ids[len(a) :])[:, 1])
