"""Normalisation, terms and character 3-grams, against plain-Python references."""

from __future__ import annotations

import itertools
import unicodedata

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from invisible import IGNORABLES, SELECTORS, SPACES

from sessions import lexicon as lexicon_module
from sessions.fields import is_blank, strip_spaces
from sessions.lexicon import Closeness, Lexicon, Sets, encode, trigram_jaccard
from sessions.text import MIDJOURNEY_PARAMETERS, normalize, per_text, terms, trigram_codes


def norm(*queries: str) -> list[str]:
    return pl.select(normalize(pl.lit(pl.Series(queries)))).to_series().to_list()


def test_normalize_drops_case_punctuation_and_boilerplate():
    assert norm("Cute  CATS!", "www.kbb.com", "the lyrics to the waiting", "C'est la vie") == [
        "cute cats", "kbb", "lyrics waiting", "c est la vie",
    ]  # fmt: skip


def test_normalize_keeps_combining_marks_inside_their_words():
    """Scripts that write vowels as combining marks (Devanagari, Thai, Bengali...) and
    decomposed accents: a word stays one term (the marks were once turned into spaces)."""
    assert norm("हिन्दी किताब", "หนังสือ ดี", "cafe\u0301 au lait", "İstanbul") == [
        "हिन्दी किताब", "หนังสือ ดี", "caf\u00e9 au lait", "i\u0307stanbul",
    ]  # fmt: skip


def test_normalize_gives_one_spelling_of_one_text():
    """NFKC: precomposed and decomposed accents, full-width forms and ligatures read alike."""
    assert norm("Caf\u00e9 Z\u00fcrich", "cafe\u0301 zu\u0308rich", "ＣＡＦÉ ＺÜＲＩＣＨ") == ["café zürich"] * 3
    assert norm("ﬁle ①") == ["file 1"]
    assert pl.select(terms(normalize(pl.lit("किताब कुताब")))).item().to_list() == ["किताब", "कुताब"]


def test_a_prompts_trailing_parameters_are_no_terms():
    """A new user's find: Midjourney's `--ar 16:9 --v 5`, at the end of every prompt of a
    user, made unrelated prompts hours apart lexically close (one session, one mission)."""
    assert norm(
        "a castle, at dusk --ar 16:9 --v 5", "a castle --no text, logo, watermark, blurry --ar 16:9 --v 5",
        "--ar 2:3", "cat \u2014ar 3:2 \u2014v 6", "A cat --AR 16:9 --style raw", "anime girl --niji 5",
        "x --style raw --tile --niji", "x --sref https://s.mj.run/AbC1 --sw 100 --v 6.1", "cat \u2013ar 3:2 \u2013v 6",
        "cat \u2212\u2212ar 3:2",
    ) == ["castle dusk", "castle", "", "cat", "cat", "anime girl", "x", "x", "cat", "cat"]  # fmt: skip
    # other `--word`s are text (the change breaker's finds: web queries lost their words), and so is one
    # parameter without a number: AOL's `pci --video driver`, in a session about video drivers
    assert norm(
        "pip install --upgrade pip 3", "ffmpeg --crf 23 video", "star wars \u2014episode 4",
        "beethoven \u2014symphony no. 9", "pci --video driver", "teenage girls --should be allowed to wear thongs",
        "cat --v 5 and more words after", "a--b test", "anime girl --niji", "movies --stop loss 2008",
        "george --w bush 2004", "\u2014R Kelly 2004",
    ) == [
        "pip install upgrade pip 3", "ffmpeg crf 23 video", "star wars episode 4", "beethoven symphony no 9",
        "pci video driver", "teenage girls should be allowed wear thongs", "cat v 5 more words after", "b test",
        "anime girl niji", "movies stop loss 2008", "george w bush 2004", "r kelly 2004",
    ]  # fmt: skip


words = st.text(alphabet="abcdefghij ,", min_size=1, max_size=25).filter(lambda t: t.strip(" ,"))
values = st.lists(st.sampled_from(["16:9", "5", "750", "raw", "0.5", "text,", "logo"]), max_size=3)
cased = st.sampled_from(MIDJOURNEY_PARAMETERS).flatmap(lambda n: st.sampled_from([n, n.upper(), n.title()]))


DASHES = ["--", "\u2014", "\u2013", "\u2212\u2212"]  # two hyphens, an em dash, an en dash, two minus signs


def spaced(tail: str) -> str:
    """`tail` with its dashes as spaces: its words as text."""
    for dash in DASHES:
        tail = tail.replace(dash, " ")
    return tail


def _tail(parameters: list[tuple[str, str, list[str]]], space: str) -> str:
    return "".join(f"{space}{dash}{name}" + "".join(f" {v}" for v in vals) for dash, name, vals in parameters)


@settings(max_examples=150, deadline=None)
@given(prompt=words, parameters=st.lists(st.tuples(st.sampled_from(DASHES), cased, values), min_size=1,
       max_size=4), space=st.sampled_from([" ", "  ", "\t"]))  # fmt: skip
def test_a_prompt_with_parameters_has_the_terms_of_the_prompt(prompt, parameters, space):
    """The kind: any prompt, any of Midjourney's parameters after it (each with up to three
    values), any dash, any case and spacing: two or more, or one whose first value is a
    number, leave the prompt's terms alone; one followed by a word is text."""
    tail = _tail(parameters, space)
    numbered = any(vals and vals[0][0].isdigit() for _, _, vals in parameters)
    if numbered or len(parameters) > 1:
        assert norm(prompt + tail) == norm(prompt)
    else:
        assert norm(prompt + tail) == norm(prompt + spaced(tail))


@settings(max_examples=80, deadline=None)
@given(prompt=words, parameters=st.lists(st.tuples(st.sampled_from(DASHES), st.sampled_from(
       ["upgrade", "episode", "crf", "oneline", "recursive"]), values), min_size=1, max_size=4))  # fmt: skip
def test_a_dash_before_any_other_word_is_text(prompt, parameters):
    tail = _tail(parameters, " ")
    assert norm(prompt + tail) == norm(prompt + spaced(tail))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cn")), max_size=30))
def test_normalize_splits_only_between_words(text):
    """Every term is a run of letters, combining marks and digits of the text in NFKC, lower-cased
    (characters this Python's Unicode tables do not know are left out: polars' are newer)."""
    for term in norm(text)[0].split():
        assert all(unicodedata.category(ch)[0] in "LMN" for ch in term)
        assert term in unicodedata.normalize("NFKC", text).lower()


def reference_grams(text: str) -> list[int]:
    if not text:
        return []
    padded = f" {text} "
    return [(ord(a) << 42) | (ord(b) << 21) | ord(c) for a, b, c in zip(padded, padded[1:], padded[2:], strict=False)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=8))
def test_trigrams_are_character_trigrams_for_any_unicode(texts):
    offsets, codes = trigram_codes(pl.Series(texts))
    got = [codes[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]
    assert got == [reference_grams(t) for t in texts]


def test_bad_pairs_are_a_clear_error_and_missing_queries_are_empty():
    """The compiled kernels read no bounds of their own: the arrays are checked first."""
    lexicon = Lexicon(pl.Series(["cats", None, "dogs"]))
    assert lexicon.similarity(lexicon.text_id[[0]], lexicon.text_id[[1]]).tolist() == [[0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="one length"):
        lexicon.close(np.array([0, 1]), np.array([0]), Closeness(0.5, 0.1))
    with pytest.raises(ValueError, match=r"text ids must be in \[0, 4\)"):
        lexicon.similarity(np.array([0]), np.array([7]))
    with pytest.raises(ValueError, match="rows must be in"):
        lexicon.contained_before(np.array([5]), np.array([0]), 2, 0.6)
    with pytest.raises(ValueError, match="one length"):
        trigram_jaccard(pl.Series(["a"]), pl.Series(["a", "b"]))
    assert trigram_jaccard(pl.Series(["cats", None]), pl.Series([None, None])).to_list() == [0.0, 0.0]


def test_set_measures_treat_texts_as_sets():
    """Repeated terms count once; an empty text has overlap, Jaccard and containment 0."""
    lexicon = Lexicon(pl.Series(["girl girl tgp", "tgp models", "x", "y", "", "z"]))
    ids = lexicon.text_id
    sim = lexicon.similarity(ids[[0, 2, 4]], ids[[1, 3, 5]])
    assert sim[:, 0].tolist() == [0.5, 0.0, 0.0]
    assert sim[2].tolist() == [0.0, 0.0, 0.0]
    assert trigram_jaccard(pl.Series(["cute cats"]), pl.Series(["cute cats"])).to_list() == [1.0]
    assert trigram_jaccard(pl.Series([""]), pl.Series([""])).to_list() == [0.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-3, 40), max_size=45), min_size=1, max_size=12),
    st.data(),
    st.sampled_from([1, 7, 1 << 40]),
)
def test_sets_intersect_as_python_sets(rows, data, sort_part):
    """Sorted in one piece, or in parts side by side (`SORT_PART` codes a part at least)."""
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in rows])))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lexicon_module, "SORT_PART", sort_part)
        sets = Sets.of(offsets, np.array([x for r in rows for x in r], dtype=np.int64))
    assert sets.sizes.tolist() == [len(set(r)) for r in rows]
    assert [sets.codes[a:b].tolist() for a, b in itertools.pairwise(sets.offsets)] == [sorted(set(r)) for r in rows]
    a = np.array(data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=1, max_size=20)))
    b = np.array(data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=len(a), max_size=len(a))))
    assert sets.intersections(a, b).tolist() == [len(set(rows[i]) & set(rows[j])) for i, j in zip(a, b, strict=True)]


def test_encode_round_trips():
    values = pl.Series(["b", "a", "b", "c", "a"])
    codes, distinct = encode(values)
    assert codes.tolist() == [0, 1, 0, 2, 1] and distinct.gather(codes).to_list() == values.to_list()
    with pytest.raises(ValueError, match="1 nulls"):
        encode(pl.Series("query", ["a", None]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(st.characters(codec="utf-8"), max_size=4), max_size=12), min_size=1, max_size=4))
def test_encode_numbers_values_in_order_of_first_occurrence(chunks):
    """Any strings (empty, any script), a series in several chunks: codes 0, 1, ... by
    first occurrence, int64, and the distinct values in code order."""
    values = pl.concat([pl.Series("q", chunk, dtype=pl.String) for chunk in chunks], rechunk=False)
    codes, distinct = encode(values)
    flat = [v for chunk in chunks for v in chunk]
    first_seen = list(dict.fromkeys(flat))
    assert codes.dtype == np.int64 and codes.tolist() == [first_seen.index(v) for v in flat]
    assert distinct.to_list() == first_seen and distinct.dtype == pl.String and distinct.name == "q"


def reference_close(a: str, b: str, rule: Closeness, raw_a: str, raw_b: str) -> bool:
    """Close by the definition, of normalised texts a and b of queries raw_a and raw_b: a
    text without terms is the same only as its case and spacing variants, never blank."""
    key_a, key_b = " ".join(raw_a.lower().split()), " ".join(raw_b.lower().split())
    if a == b and (a or key_a == key_b != ""):
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
    raw = queries.to_list()
    expected = [reference_close(normalized[2 * i], normalized[2 * i + 1], rule, raw[2 * i], raw[2 * i + 1])
                for i in range(len(pairs))]  # fmt: skip
    assert lexicon.close(a, b, rule).tolist() == expected
    assert pl.select(terms(pl.lit(pl.Series(["", "a b"])))).to_series().to_list() == [[], ["a", "b"]]


def reference_similarity(a: str, b: str) -> tuple[float, float, float]:
    ta, tb = set(a.split()), set(b.split())
    ga, gb = set(reference_grams(a)), set(reference_grams(b))
    overlap = len(ta & tb) / min(len(ta), len(tb)) if ta and tb else 0.0
    jaccard = len(ga & gb) / len(ga | gb) if ga | gb else 0.0
    return overlap, jaccard, len(ga & gb) / len(ga) if ga else 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(words, max_size=5), st.lists(words, max_size=5)), min_size=1, max_size=20))
def test_lexicon_similarity_matches_the_definitions(pairs):
    """Term overlap, 3-gram Jaccard and containment of any pair of queries (repeats,
    empty texts, non-ASCII) are those of Python sets of the normalised texts."""
    queries = pl.Series([" ".join(q) for pair in pairs for q in pair])
    lexicon = Lexicon(queries)
    normalized = norm(*queries.to_list())
    got = lexicon.similarity(lexicon.text_id[0::2], lexicon.text_id[1::2])
    expected = [reference_similarity(normalized[2 * i], normalized[2 * i + 1]) for i in range(len(pairs))]
    np.testing.assert_allclose(got, np.array(expected).reshape(-1, 3), rtol=0, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(words, max_size=4), min_size=1, max_size=8), st.integers(1, 4), st.data())
def test_containment_in_earlier_rows_matches_the_definition(pool, back, data):
    """A row is contained before when at least the share of its 3-grams occurs in one of
    the `back` distinct texts nearest before it, none before its earliest row: a text
    repeated (rows drawn from a small pool of queries, so they repeat often) takes one
    place, and a text without 3-grams (`the`, a blank query) none."""
    texts = [" ".join(pool[i]) for i in data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=2, max_size=25))]
    lexicon = Lexicon(pl.Series(texts))
    rows = np.array(sorted(data.draw(st.sets(st.integers(1, len(texts) - 1), min_size=1))))
    earliest = np.array([data.draw(st.integers(0, r)) for r in rows])
    normalized = norm(*texts)

    def nearest(r: int, e: int) -> list[str]:  # the `back` distinct texts with 3-grams before row r
        found: list[str] = []
        for m in range(r - 1, e - 1, -1):
            if normalized[m] and normalized[m] not in found and len(found) < back:
                found.append(normalized[m])
        return found

    expected = [
        any(reference_similarity(normalized[r], m)[2] >= 0.6 for m in nearest(r, e))
        for r, e in zip(rows, earliest, strict=True)
    ]
    assert lexicon.contained_before(rows, earliest, back, 0.6).tolist() == expected


def test_a_repeated_text_takes_one_place_in_the_look_back():
    """The tester's find, at the lexicon: rows of one text (a prompt logged once per image,
    a query once per click) filled the look-back, so that a query contained in the text
    just past `back` rows was no longer found; a text's case and spacing variants, and a
    query without 3-grams, take no place either."""
    texts = ["cute cats pictures", "tax forms", "Tax  Forms", "tax forms", "the", "", "tax forms", "cats pictures"]
    lexicon = Lexicon(pl.Series(texts))
    assert lexicon.contained_before(np.array([7]), np.array([0]), 2, 0.6).tolist() == [True]
    assert lexicon.contained_before(np.array([7]), np.array([0]), 1, 0.6).tolist() == [False]
    with pytest.raises(ValueError, match="back must be at least 1"):
        lexicon.contained_before(np.array([7]), np.array([0]), 0, 0.6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30))
def test_per_text_is_the_expression_row_for_row(texts):
    s = pl.Series("query", texts, dtype=pl.String)
    for expr in (normalize, terms):
        assert per_text(expr, s).equals(pl.select(expr(pl.lit(s))).to_series())


def test_per_text_keeps_the_order_of_a_column_cut_into_morsels():
    """300,000 texts: more than one of the streaming engine's morsels, worked on side by side."""
    s = pl.Series("query", [f"The {i} Query of {i % 7}" for i in range(300_000)])
    out = per_text(normalize, s)
    assert out.name == "query" and out[0] == "0 query 0" and out[-1] == "299999 query 0"
    assert out.equals(pl.select(normalize(pl.lit(s))).to_series())


NO_TERMS = st.lists(st.sampled_from(["the", "of", "www", ".", "!", "?", " ", "\t", "🍕", "🎉", "\u0301", "T", "HE"]),
                    max_size=8).map("".join)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(NO_TERMS, st.none(), st.sampled_from(["cats", "Cats!", "cute cats"])), min_size=2,
                max_size=8))  # fmt: skip
def test_queries_without_terms_are_the_same_only_as_their_case_and_spacing_variants(queries):
    """Of two queries without terms (normalised to nothing), the lexicon judges them the
    same, and close, only when they are case and spacing variants of one query, never a
    missing or blank one; queries with terms are the same as their normalised texts are."""
    lexicon = Lexicon(pl.Series(queries, dtype=pl.String))
    ids = lexicon.text_id
    norm = pl.select(normalize(pl.lit(pl.Series(queries, dtype=pl.String)).fill_null(""))).to_series().to_list()
    key = [" ".join(q.lower().split()) if q is not None else "" for q in queries]
    for i in range(len(queries)):
        for j in range(i + 1, len(queries)):
            same = norm[i] == norm[j] if norm[i] or norm[j] else key[i] == key[j] != ""
            assert (ids[i] == ids[j]) == same, (queries[i], queries[j])
            close = lexicon.close(ids[[i]], ids[[j]], Closeness(0.5, 0.1))[0]
            assert close == same or (norm[i] and norm[j]), (queries[i], queries[j])


# letters, marks, symbols (the Braille blank is one: not ignorable), a format character that shows (the Arabic
# number sign), white space, and any of Unicode's Default_Ignorable code points (the new user's: U+200D, U+1D173,
# U+FE0F, U+034F, U+115F, U+3164; the last four were a text)
SHOWN_OR_NOT = st.one_of(
    st.sampled_from(["a", "é", "7", "🍕", "\u0301", "\u2800", "\u0600", "\t", "\n", "\r", *SPACES]),
    st.sampled_from(["\u200d", "\U0001d173", "\ufe0f", "\u034f", "\u115f", "\u3164", *IGNORABLES]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SHOWN_OR_NOT, max_size=6).map("".join))
@example("\ufe0f")
@example("\u3164")
@example("\u0600")
@example("👨\u200d👩\u200d👧")
@example("❤\ufe0f")
def test_a_text_is_blank_exactly_when_it_shows_nothing(text):
    """Blank: white space and Default_Ignorable code points alone (DerivedCoreProperties.txt),
    not Unicode's format characters (category Cf): a variation selector, the combining
    grapheme joiner and the Hangul fillers are no Cf and show nothing; the Arabic number
    sign is Cf and shows."""
    shows_nothing = set(text) <= {*IGNORABLES, *SPACES, "\t", "\n", "\r"}
    assert pl.select(is_blank(pl.lit(text, dtype=pl.String))).item() == shows_nothing


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(SHOWN_OR_NOT, st.sampled_from(SELECTORS)), max_size=8).map("".join))
@example("\ufeff123")
@example("123\u200b")
@example("❤\ufe0f\u200b")
@example("\u200b🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f\u200b")
def test_a_text_loses_what_shows_nothing_around_it_but_its_last_characters_selectors(text):
    """`strip_spaces` (a user id's rule) cuts from each end of a text only what shows
    nothing (white space, Default_Ignorable code points), all of it but the selectors
    right after the last visible character (a variation selector, a flag's tags): what
    is left is empty exactly when the text is blank, and begins with a visible character."""
    nothing = {*IGNORABLES, *SPACES, "\t", "\n", "\r"}
    kept = pl.select(strip_spaces(pl.lit(text, dtype=pl.String))).item()
    assert (kept == "") == pl.select(is_blank(pl.lit(text, dtype=pl.String))).item()
    start = len(text) - len(text.lstrip("".join(nothing)))
    assert text[start:].startswith(kept), (text, kept)
    end = start + len(kept)
    assert set(text[:start] + text[end:]) <= nothing
    if kept:
        body = kept.rstrip("".join(SELECTORS))
        assert body and body[-1] not in nothing and body[0] not in nothing, (text, kept)
        assert text[end : end + 1] not in SELECTORS, (text, kept)  # (a selector after it: kept)
