"""Reformulation types from specificity: exact labels on hand-made sessions, the
accuracy against gold labels, and the threshold chosen on a grid."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessions.reformulation import accuracy, annotate, best_threshold, per_distinct, term_count

DEPTH = {"animal": 0.0, "dog": 1.0, "Dog!": 1.0, "toy poodle": 2.0, "cat": 1.1, "persian cat": 2.0}


def by_depth(texts: pl.Series) -> np.ndarray:
    return np.array([DEPTH[t] for t in texts.to_list()])


SESSIONS = pl.DataFrame(
    {
        "session_id": ["u1/0"] * 6 + ["u1/1"] * 2 + ["u2/0"] * 2,
        "query": ["animal", "dog", "toy poodle", "Dog!", "cat", "cat", "persian cat", "cat", "animal", "dog"],
        "gold_reformulation": ["start", "specialisation", "specialisation", "generalisation", "lateral", "repeat",
                               "start", "generalisation", "start", "lateral"],  # the last one: a wrong gold label
    }
)  # fmt: skip


def test_each_pair_is_typed_against_the_query_before_it_in_its_session():
    got = annotate(SESSIONS, by_depth, threshold=0.5)
    assert got["specificity"].to_list() == [0.0, 1.0, 2.0, 1.0, 1.1, 1.1, 2.0, 1.1, 0.0, 1.0]
    assert got["reformulation"].to_list() == [
        None, "specialisation", "specialisation", "generalisation", "lateral", "repeat",
        None, "generalisation",
        None, "specialisation",
    ]  # fmt: skip


def test_repeat_needs_the_same_normalised_text_as_the_previous_query():
    frame = pl.DataFrame({"session_id": ["s"] * 3, "query": ["dog", "Dog!", "the dog"]})
    got = annotate(frame, lambda t: np.zeros(len(t)), threshold=0.5)
    assert got["reformulation"].to_list() == [None, "repeat", "repeat"]  # case, punctuation, stop words aside


def test_accuracy_judges_only_the_hierarchy_types_and_counts_the_rest():
    got = accuracy(annotate(SESSIONS, by_depth, threshold=0.5))
    assert got["pairs"] == 6 and got["accuracy"] == pytest.approx(5 / 6, abs=1e-4)  # the repeat is not judged
    assert got["recall"] == {"specialisation": 1.0, "generalisation": 1.0, "lateral": 0.5}
    assert got["confusion"]["lateral"] == {"lateral": 1, "specialisation": 1}
    assert got["confusion"]["repeat"] == {"repeat": 1}


def test_the_best_threshold_separates_a_level_from_noise():
    annotated = annotate(SESSIONS, by_depth, threshold=0.0)
    assert accuracy(annotated)["recall"]["lateral"] == 0.0  # Dog! -> cat (+0.1) reads as a specialisation
    assert 0.1 <= best_threshold(annotated, np.arange(0.0, 1.5, 0.05)) < 1.0


def test_specificity_is_computed_once_per_distinct_text():
    seen: list[list[str]] = []

    def lengths(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return np.array([len(t) for t in texts])

    texts = pl.Series(["dog", "cat", "dog", "toy poodle", "cat"])
    assert per_distinct(texts, lengths).tolist() == [3, 3, 3, 10, 3]
    assert len(seen) == 1 and sorted(seen[0]) == ["cat", "dog", "toy poodle"]
    assert term_count(pl.Series(["the toy poodle", "Dog!", ""])).tolist() == [2.0, 1.0, 0.0]
