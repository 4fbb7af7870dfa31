"""Normalisation, terms and character 3-grams, against plain-Python references."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.lexicon import Closeness, Lexicon, distinct_pairs, encode
from sessions.text import normalize, set_jaccard, term_overlap, terms, trigrams


def norm(*queries: str) -> list[str]:
    return pl.select(normalize(pl.lit(pl.Series(queries)))).to_series().to_list()


def test_normalize_drops_case_punctuation_and_boilerplate():
    assert norm("Cute  CATS!", "www.kbb.com", "the lyrics to the waiting", "C'est la vie") == [
        "cute cats", "kbb", "lyrics waiting", "c est la vie",
    ]  # fmt: skip


def reference_grams(text: str) -> list[int]:
    if not text:
        return []
    padded = f" {text} "
    return [(ord(a) << 42) | (ord(b) << 21) | ord(c) for a, b, c in zip(padded, padded[1:], padded[2:], strict=False)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=8))
def test_trigrams_are_character_trigrams_for_any_unicode(texts):
    got = trigrams(pl.Series(texts)).to_list()
    assert got == [reference_grams(t) for t in texts]


def test_set_measures_treat_lists_as_sets():
    df = pl.DataFrame({"a": [["girl", "girl", "tgp"], ["x"], []], "b": [["tgp", "models"], ["y"], ["z"]]})
    assert df.select(term_overlap(pl.col("a"), pl.col("b"))).to_series().to_list() == [0.5, 0.0, 0.0]
    assert df.select(set_jaccard(pl.col("a"), pl.col("b"))).to_series().to_list() == [1 / 3, 0.0, 0.0]


def test_encode_and_distinct_pairs_round_trip():
    values = pl.Series(["b", "a", "b", "c", "a"])
    codes, distinct = encode(values)
    assert codes.tolist() == [0, 1, 0, 2, 1] and distinct.gather(codes).to_list() == values.to_list()
    a, b = np.array([3, 1, 3, 0]), np.array([1, 2, 1, 0])
    ua, ub, inverse = distinct_pairs(a, b)
    assert len(ua) == 3 and (ua[inverse] == a).all() and (ub[inverse] == b).all()


def reference_close(a: str, b: str, rule: Closeness) -> bool:
    if a == b:
        return True
    ta, tb = set(a.split()), set(b.split())
    if ta and tb and len(ta & tb) / min(len(ta), len(tb)) >= rule.min_overlap:
        return True
    ga, gb = set(reference_grams(a)), set(reference_grams(b))
    return bool(ga | gb) and len(ga & gb) / len(ga | gb) >= rule.min_jaccard


words = st.sampled_from(["cute", "cats", "catd", "cat", "new", "york", "the", "lyrics", "lyric", "dogs", "é"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(words, max_size=4), st.lists(words, max_size=4)), min_size=1, max_size=20))
def test_lexicon_closeness_matches_the_definition(pairs):
    queries = pl.Series([" ".join(q) for pair in pairs for q in pair])
    lexicon = Lexicon(queries)
    rule = Closeness(min_overlap=0.5, min_jaccard=0.1)
    a, b = lexicon.text_id[0::2], lexicon.text_id[1::2]
    normalized = norm(*queries.to_list())
    expected = [reference_close(normalized[2 * i], normalized[2 * i + 1], rule) for i in range(len(pairs))]
    assert lexicon.close(a, b, rule).tolist() == expected
    assert pl.select(terms(pl.lit(pl.Series(["", "a b"])))).to_series().to_list() == [[], ["a", "b"]]


def test_closeness_is_the_same_a_slice_of_pairs_at_a_time(monkeypatch):
    """`Lexicon.close` works through pairs a slice at a time (memory stays bounded with long
    prompts): the answers are those of all pairs at once."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    queries = pl.Series([" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(200)])
    lexicon = Lexicon(queries)
    a, b = rng.integers(0, 200, 3000), rng.integers(0, 200, 3000)
    rule = Closeness(min_overlap=0.5, min_jaccard=0.3)
    whole = lexicon.close(lexicon.text_id[a], lexicon.text_id[b], rule)
    monkeypatch.setattr(Lexicon, "PAIRS_AT_ONCE", 7)
    assert (
        (lexicon.close(lexicon.text_id[a], lexicon.text_id[b], rule) == whole).all() and whole.any() and not whole.all()
    )
