"""Reformulation types from changed terms and a geometry: exact labels on hand-made
sessions, the changed terms and the direction test against their definitions (any
texts, any scale), the accuracy against gold labels, and the ratio chosen on a grid."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.lexicon import Lexicon
from sessions.reformulation import (
    TermCount,
    accuracy,
    annotate,
    best_ratio,
    changed_terms,
    check_ratio,
    direction,
    per_distinct,
    reformulation_types,
    session_starts,
)
from sessions.text import normalize

# a plane where norm is specificity: children further out along their parent's ray, siblings sideways
POINTS = {
    "animal": (1.0, 0.0), "dog": (2.0, 0.2), "toy poodle": (3.0, 0.3), "cat": (2.0, -0.5),
}  # fmt: skip


class Plane:
    """A Euclidean geometry of a few known texts; records what it is asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def point(self, text: str) -> np.ndarray:
        return np.array(POINTS[text])

    def specificity(self, texts: pl.Series) -> np.ndarray:
        return np.array([np.linalg.norm(self.point(t)) if t in POINTS else 0.0 for t in texts.to_list()])

    def relate(self, earlier: pl.Series, later: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.asked += list(zip(earlier.to_list(), later.to_list(), strict=True))
        a = np.array([self.point(t) for t in earlier.to_list()]).reshape(-1, 2)
        b = np.array([self.point(t) for t in later.to_list()]).reshape(-1, 2)
        return np.linalg.norm(a - b, axis=1), np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)


SESSIONS = pl.DataFrame(
    {
        "session_id": ["u1/0"] * 7 + ["u1/1"] * 2 + ["u2/0"] * 2,
        "query": ["animal", "dog", "Toy Poodle!", "the toy poodle", "dog", "cat", "cat pictures",
                  "cat", "animal", "animal pictures", "dog pictures"],
        "gold_reformulation": ["start", "specialisation", "specialisation", "repeat", "generalisation", "lateral",
                               "specialisation", "start", "generalisation", "start", "lateral"],  # the last: wrong
    }
)  # fmt: skip


def test_each_pair_is_typed_from_its_changed_terms_against_the_query_before_it_in_its_session():
    plane = Plane()
    got = annotate(SESSIONS, plane, ratio=0.5)
    assert got["reformulation"].to_list() == [
        None, "specialisation", "specialisation", "repeat", "generalisation", "lateral", "specialisation",
        None, "generalisation",
        None, "specialisation",  # only the changed terms are asked about: animal -> dog
    ]  # fmt: skip
    # asked about replacements inside sessions only (not dog pictures -> cat), each distinct one once
    assert plane.asked == [("animal", "dog"), ("dog", "toy poodle"), ("toy poodle", "dog"), ("dog", "cat"),
                           ("cat", "animal")]  # fmt: skip
    assert got["specificity"][0] == pytest.approx(1.0)


def test_added_terms_narrow_and_removed_terms_broaden_without_asking_the_model():
    frame = pl.DataFrame({"session_id": ["s"] * 4, "query": ["cats", "persian cats", "persian cats", "cats"]})
    plane = Plane()
    assert reformulation_types(frame, plane).to_list() == [None, "specialisation", "repeat", "generalisation"]
    assert plane.asked == []


def test_repeat_needs_the_same_terms_as_the_previous_query():
    frame = pl.DataFrame({"session_id": ["s"] * 5, "query": ["dog", "Dog!", "the dog", "dog the dog", "ＤＯＧ"]})
    got = reformulation_types(frame, TermCount())
    assert got.to_list() == [None, "repeat", "repeat", "repeat", "repeat"]  # case, punctuation, stop words, NFKC
    accents = pl.DataFrame({"session_id": ["s"] * 2, "query": ["caf\u00e9", "cafe\u0301"]})
    assert reformulation_types(accents, TermCount()).to_list() == [None, "repeat"]


def test_queries_without_terms_repeat_only_their_own_text_as_segmentation_tells_it():
    # stop words, symbols or emoji alone normalise to nothing, yet `the` is not `a`
    queries = ["the", "a", "A", "🍕", "🎉", "🎉 ", None, None, "", "pizza", "the"]
    frame = pl.DataFrame({"session_id": ["s"] * len(queries), "query": queries})
    assert reformulation_types(frame, TermCount()).to_list() == [
        None, "lateral", "repeat", "lateral", "lateral", "repeat", "lateral", "lateral", "lateral",
        "specialisation", "generalisation",
    ]  # fmt: skip


QUERIES = st.sampled_from(["the", "The ", "a", "🍕", "🎉", "", "  ", "cat", "Cats", "cats dog", "dog cats", "é", "!"])


@settings(max_examples=200, deadline=None)
@given(st.lists(QUERIES | st.none(), min_size=2, max_size=10))
def test_a_repeat_is_the_same_query_to_segmentation_or_the_same_terms(queries):
    frame = pl.DataFrame(
        {"session_id": ["s"] * len(queries), "query": queries}, schema={"session_id": pl.String, "query": pl.String}
    )
    got = reformulation_types(frame, TermCount()).to_list()
    text_id = Lexicon(frame["query"]).text_id
    norm = [pl.select(normalize(pl.lit(q, dtype=pl.String))).item() or "" for q in queries]
    for i in range(1, len(queries)):
        same_terms = norm[i] != "" and set(norm[i].split()) == set(norm[i - 1].split())
        assert (got[i] == "repeat") == (text_id[i] == text_id[i - 1] or same_terms), (queries[i - 1], queries[i])


def test_the_term_count_replaces_by_more_terms_as_a_specialisation():
    frame = pl.DataFrame({"session_id": ["s"] * 4, "query": ["red car", "blue sports car", "green car", "green"]})
    assert reformulation_types(frame, TermCount()).to_list() == [None, "specialisation", "generalisation",
                                                                 "generalisation"]  # fmt: skip
    same = pl.DataFrame({"session_id": ["s"] * 2, "query": ["red car", "blue car"]})
    assert reformulation_types(same, TermCount()).to_list() == [None, "lateral"]


def test_accuracy_judges_only_the_hierarchy_types_and_counts_the_rest():
    got = accuracy(annotate(SESSIONS, Plane(), ratio=0.5))
    assert got["pairs"] == 7 and got["accuracy"] == pytest.approx(6 / 7, abs=1e-4)  # the repeat is not judged
    assert got["recall"] == {"specialisation": 1.0, "generalisation": 1.0, "lateral": 0.5}
    assert got["confusion"]["lateral"] == {"lateral": 1, "specialisation": 1}
    assert got["confusion"]["repeat"] == {"repeat": 1}


def test_the_best_ratio_tells_a_child_from_a_sibling():
    # dog -> cat rises by 0.05 over a distance of 0.7: a specialisation only below a ratio of 0.07
    low = accuracy(annotate(SESSIONS, Plane(), ratio=0.05))
    assert low["confusion"]["lateral"] == {"specialisation": 2}
    assert best_ratio(SESSIONS, Plane(), grid=(0.05, 0.5, 0.99)) == 0.5


def test_a_ratio_outside_0_to_1_is_refused_in_one_line():
    for bad in (0.0, -0.1, float("nan"), 1.5, float("inf")):
        with pytest.raises(ValueError, match=r"--ratio must be in \(0, 1\]"):
            check_ratio(bad)
        with pytest.raises(ValueError, match=r"--ratio must be in \(0, 1\]"):
            reformulation_types(SESSIONS, Plane(), bad)
    check_ratio(1.0)


WORDS = st.lists(st.sampled_from(["cat", "Cats", "the", "persian", "dog", "new", "york", "é", "2006", "!"]),
                 max_size=5).map(" ".join)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORDS | st.none(), WORDS | st.none()), max_size=8))
def test_changed_terms_are_the_distinct_terms_one_query_lacks_of_the_other_in_order(pairs):
    earlier, later = (pl.Series(side, dtype=pl.String) for side in zip(*pairs, strict=True)) if pairs else (
        pl.Series([], dtype=pl.String), pl.Series([], dtype=pl.String))  # fmt: skip
    got = changed_terms(earlier, later)

    def distinct_terms(query: str | None) -> list[str]:
        norm = pl.select(normalize(pl.lit(query, dtype=pl.String))).item() or ""
        return list(dict.fromkeys(norm.split()))

    assert got.height == len(pairs)
    for i, (a, b) in enumerate(pairs):
        before, now = distinct_terms(a), distinct_terms(b)
        assert got["removed"][i] == " ".join(t for t in before if t not in now)
        assert got["added"][i] == " ".join(t for t in now if t not in before)


def test_changed_terms_refuse_pairs_of_unequal_length():
    with pytest.raises(ValueError, match="2 earlier queries for 1 later ones"):
        changed_terms(pl.Series(["a", "b"]), pl.Series(["c"]))


def test_repeated_terms_change_nothing():
    frame = pl.DataFrame({"session_id": ["s"] * 4, "query": ["red car", "blue blue car", "red red car", "car car red"]})
    assert reformulation_types(frame, TermCount()).to_list() == [None, "lateral", "lateral", "repeat"]


def triangle() -> st.SearchStrategy:
    """Two points' norms and a distance that the triangle inequality allows."""
    norm = st.floats(0.0, 50.0).map(lambda x: 0.0 if x < 1e-6 else x)  # no subnormals: scaling must be exact
    return st.tuples(norm, norm, norm).map(lambda t: (t[0], t[1], abs(t[0] - t[1]) + t[2]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(triangle(), min_size=1, max_size=20),
    st.floats(0.01, 1.0),
    st.sampled_from([2.0**k for k in range(-9, 10)]),
)
def test_the_direction_is_antisymmetric_and_free_of_the_models_scale(pairs, ratio, scale):
    a, b, d = (np.array(x) for x in zip(*pairs, strict=True))
    got = direction(d, a, b, ratio)
    assert np.array_equal(direction(d, b, a, ratio), -got)
    assert np.array_equal(direction(d * scale, a * scale, b * scale, ratio), got)
    beneath = (b > a) & (b - a >= ratio * d)
    assert np.array_equal(got == 1, beneath)
    assert not direction(d, a, b, 1.0)[np.abs(b - a) < d].any()  # at 1, only a move along a ray counts


def test_specificity_is_computed_once_per_distinct_text():
    seen: list[list[str]] = []

    def lengths(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return np.array([len(t) for t in texts])

    texts = pl.Series(["dog", "cat", "dog", "toy poodle", "cat"])
    assert per_distinct(texts, lengths).tolist() == [3, 3, 3, 10, 3]
    assert len(seen) == 1 and sorted(seen[0]) == ["cat", "dog", "toy poodle"]
    assert TermCount().specificity(pl.Series(["the toy poodle", "Dog!", ""])).tolist() == [2.0, 1.0, 0.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2)), min_size=1, max_size=30))
def test_a_session_starts_at_a_new_user_whatever_its_id(rows):
    """A session is its user's: ids numbered per user (0, 1, ...) start a session at every
    new user, as a loop over the rows, comparing (user, session) with the row before, says
    (two users' session 0 were one session: the change breaker's find)."""
    ordered = sorted(rows)
    frame = pl.DataFrame({"user_id": [u for u, _ in ordered], "session_id": [s for _, s in ordered]})
    expected = [i == 0 or ordered[i] != ordered[i - 1] for i in range(len(ordered))]
    assert session_starts(frame).to_list() == expected
