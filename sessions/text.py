"""Lexical evidence between queries: normalised text, terms, character 3-grams.

Queries are compared after `normalize`: Unicode NFKC, lower case, every run of
characters other than letters, their combining marks and digits a single space, and
function words and URL parts (`www`, `com`, `the`, `for`, ...) dropped, so that
`www.kbb.com` and `www.boattrader.com` do not look alike for their boilerplate. On
the development data this lifts cascade's session F1 from 0.883 to 0.894 and
boundary F1 from 0.900 to 0.912 (Gayo-Avello).

- term overlap: |A ∩ B| / min(|A|, |B|) over the sets of terms, so that adding a
  term to a query keeps full overlap (`cute cats` -> `cute cats pictures`);
- 3-gram Jaccard: |A ∩ B| / |A ∪ B| over the sets of character 3-grams of the
  normalised text padded with one space each side (` cute cats ` -> ` cu`, `cut`, ...),
  which catches typos and morphology (`cute catd`, `lyric`/`lyrics`).

3-grams are built in numpy from the Arrow buffers (code points packed three to a
non-negative int64). Pairs are compared on integer sets (`sessions.lexicon.Sets`: each text's
sorted distinct codes, intersected by a compiled merge); nothing loops per row in
Python.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

# Function words and URL parts: shared by unrelated queries, so no evidence.
STOPWORDS = (
    "a", "an", "and", "at", "by", "com", "de", "edu", "for", "from", "gov", "how", "htm", "html", "http", "https",
    "i", "in", "is", "my", "net", "of", "on", "or", "org", "the", "to", "what", "with", "www", "you",
)  # fmt: skip
_STOP_RE = r"\b(?:" + "|".join(STOPWORDS) + r")\b"


def normalize(query: pl.Expr) -> pl.Expr:
    """Unicode NFKC (one spelling for `café` and `cafe` + U+0301, `ＡＢＣ` and `ABC`, `ﬁ`
    and `fi`; ASCII text, which it leaves as is, skips it), lower case, runs of letters
    (with their combining marks: Devanagari's vowel signs) and digits separated by
    single spaces, stop words dropped."""
    canonical = pl.when(query.str.contains(r"[^\x00-\x7F]")).then(query.str.normalize("NFKC")).otherwise(query)
    return (
        canonical.str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{M}\p{N}]+", " ")
        .str.replace_all(_STOP_RE, " ")
        .str.replace_all(r" {2,}", " ")
        .str.strip_chars()
    )


def near_duplicate_key(query: pl.Expr) -> pl.Expr:
    """Queries that differ only by case or spaces share this key."""
    return query.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def terms(norm: pl.Expr) -> pl.Expr:
    """The terms of a normalised query, as a list (empty for an empty query)."""
    return pl.when(norm == "").then(pl.lit([], dtype=pl.List(pl.String))).otherwise(norm.str.split(" "))


def trigram_codes(norm: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Character 3-grams of each normalised query padded with spaces (` cute cats ` ->
    ` cu`, `cut`, ...) as int64 codes (three 21-bit code points in the low 63 bits, so
    never negative, and ordered as the code points are), compressed by rows:
    (offsets (n + 1,) int64, codes (offsets[-1],) int64), the 3-grams of query i
    being codes[offsets[i]:offsets[i + 1]] in text order. An empty query has none."""
    padded = pl.select(pl.when(norm == "").then(pl.lit("")).otherwise(" " + norm + " ")).to_series()
    arr = padded.to_arrow().cast(pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    cp, cp_offsets = _code_points(data, offsets - offsets[0])
    count = np.maximum(np.diff(cp_offsets) - 2, 0)
    out_offsets = np.concatenate(([0], np.cumsum(count)))
    start = np.repeat(cp_offsets[:-1] - out_offsets[:-1], count) + np.arange(out_offsets[-1])
    cp64 = cp.astype(np.int64)  # one dtype for every integer set: each compiled kernel has one signature
    every = (cp64[:-2] << 42) | (cp64[1:-1] << 21) | cp64[2:]  # 3-grams at every position
    return out_offsets.astype(np.int64), every[start]


def _code_points(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode UTF-8 bytes to code points; offsets in bytes -> offsets in code points.

    Bytes below 0x80 are their own code point; only the (usually rare) multi-byte
    characters are assembled from their lead and continuation bytes."""
    cp = data.astype(np.uint32)
    multi = np.flatnonzero(data >= 0xC0)  # lead bytes of multi-byte characters
    if not len(multi) and not (data >= 0x80).any():
        return cp, offsets
    first = cp[multi]
    extra = (first >= 0xE0).astype(np.int64) + (first >= 0xF0) + 1  # continuation bytes
    value = first & (0x3F >> extra)
    padded = np.concatenate((cp, np.zeros(3, dtype=np.uint32)))
    for k in (1, 2, 3):
        more = extra >= k
        value = np.where(more, (value << 6) | (padded[multi + k] & 0x3F), value)
    cp[multi] = value
    keep = (data & 0xC0) != 0x80  # drop continuation bytes
    before = np.concatenate(([0], np.cumsum(keep)))
    return cp[keep], before[offsets]
