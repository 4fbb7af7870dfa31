"""Errors of a segmentation on adjacent queries, by kind (sessions.error_kinds)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.error_kinds import ERROR_KINDS, FALSE_BREAKS, FALSE_JOINS, adjacent_errors

T0 = datetime(2006, 3, 1, 10)


def log(rows: list[tuple[str, float, str, str, str]]) -> pl.DataFrame:
    """(user, minutes, query, gold group, predicted group) -> the frame adjacent_errors takes."""
    schema = {"row_id": pl.Int64, "user_id": pl.String, "ts": pl.Datetime("us"), "query": pl.String,
              "gold": pl.String, "pred": pl.String}  # fmt: skip
    return pl.DataFrame(
        [{"row_id": i, "user_id": u, "ts": T0 + timedelta(minutes=m), "query": q, "gold": g, "pred": p}
         for i, (u, m, q, g, p) in enumerate(rows)], schema=schema,
    )  # fmt: skip


def test_each_kind_is_told_apart_by_the_cascades_evidence():
    frame = log([
        ("a", 0, "jaguar price", "g1", "p1"),
        ("a", 1, "weather boston", "g1", "p2"),  # interruption: the next query returns to the topic
        ("a", 2, "jaguar price uk", "g1", "p3"),  # interruption: the one before the last is close
        ("a", 500, "jaguar price uk", "g1", "p4"),  # a repeat eight hours later
        ("a", 501, "porsche", "g1", "p5"),  # the same topic in other words
        ("a", 502, "porsche 911", "g2", "p5"),  # a new task that shares a word: joined
        ("a", 502, "cats", "g3", "p5"),  # the same time stamp: joined
        ("b", 0, "tax forms", "h1", "q1"),  # another user: no pair with a's last query
        ("b", 1000, "tax forms 2005", "h1", "q1"),  # right: no error
        ("b", 1001, "x", None, "q1"),  # no gold: left out, its neighbours adjacent
        ("b", 1002, "dogs", "h2", "q1"),  # joined on no evidence
        ("b", 1003, "cats", "h2", "q2"),  # other words, nothing resumes around it
        ("b", 1004, "cats food", "h2", "q3"),  # broken though close
        ("c", 0, "new york hotels", "k1", "r1"),
        ("c", 500, "flights", "k1", "r2"),  # hours later, other words
    ])  # fmt: skip
    assert adjacent_errors(frame, "pred", "gold") == {
        "pairs": 11, "false breaks": 7, "false joins": 3,
        "false break: repeat across a long gap": 1, "false break: new words across a long gap": 1,
        "false break: interruption": 2, "false break: same topic, no shared word": 2,
        "false break: lexically close": 1,
        "false join: same time stamp": 1, "false join: lexically close": 1, "false join: neither": 1,
    }  # fmt: skip


def test_a_missing_column_is_named():
    with pytest.raises(ValueError, match="no column pred"):
        adjacent_errors(log([("a", 0, "x", "g", "p")]).drop("pred"), "pred", "gold")


groups = st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 600), st.sampled_from(["cats", "cute cats", "tax",
                  "tax forms", "dogs"]), st.integers(0, 2), st.integers(0, 2)), max_size=30)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(groups)
def test_the_kinds_add_up_and_a_perfect_grouping_has_no_error(rows):
    frame = log([(u, m, q, f"g{g}", f"p{p}") for u, m, q, g, p in rows])
    counts = adjacent_errors(frame, "pred", "gold")
    assert set(counts) == {"pairs", "false breaks", "false joins", *ERROR_KINDS}
    assert counts["false breaks"] == sum(counts[f"false break: {k}"] for k in FALSE_BREAKS)
    assert counts["false joins"] == sum(counts[f"false join: {k}"] for k in FALSE_JOINS)
    users = {r[0] for r in rows}
    assert counts["false breaks"] + counts["false joins"] <= counts["pairs"] == len(rows) - len(users)
    perfect = adjacent_errors(frame, "gold", "gold")
    assert perfect["false breaks"] == perfect["false joins"] == 0
    swapped = adjacent_errors(frame, "gold", "pred")  # the truth and the system exchanged: breaks become joins
    assert (swapped["false breaks"], swapped["false joins"]) == (counts["false joins"], counts["false breaks"])
