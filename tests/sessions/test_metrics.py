"""Pair-counting and boundary scores, checked against counts done by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import combinations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from sessions.metrics import boundary_scores, compare, compare_by_user_size, pair_counting


def frame(users: list[str], pred: list[str], gold: list[str]) -> pl.DataFrame:
    t0 = datetime(2006, 3, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "row_id": range(len(users)), "user_id": users, "ts": [t0 + timedelta(minutes=i) for i in range(len(users))],
            "pred": pred, "gold": gold,
        }
    )  # fmt: skip


def test_pair_counting_by_hand():
    # user a: gold {0,1,2} {3}; pred {0,1} {2,3} -> gold pairs 3, pred pairs 2, both 1
    # user b: gold {4,5}; pred {4,5} -> 1, 1, 1. Pairs in all: 6 + 1 = 7.
    df = frame(["a"] * 4 + ["b"] * 2, ["p", "p", "q", "q", "r", "r"], ["x", "x", "x", "y", "z", "z"])
    s = pair_counting(df, "pred", "gold")
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # agreement: 7 pairs; pred-pos 3, gold-pos 4, both 2 -> TN = 7 - 3 - 4 + 2 = 2; RI = (2 + 2) / 7
    assert s["rand"] == pytest.approx(4 / 7)
    # ARI: expected both = 3 * 4 / 7; best = (3 + 4) / 2
    assert s["ari"] == pytest.approx((2 - 12 / 7) / (3.5 - 12 / 7))


def test_pair_counts_of_a_user_past_65536_queries_do_not_overflow():
    """Group sizes come as u32; C(70,000, 2) needs 64 bits (AOL has such bot users)."""
    n = 70_000
    df = frame(["bot"] * n, ["p"] * n, ["a"] * (n // 2) + ["b"] * (n // 2))
    s = pair_counting(df, "pred", "gold")
    both = 2 * (n // 2) * (n // 2 - 1) // 2
    assert s["recall"] == 1.0 and s["precision"] == pytest.approx(both / (n * (n - 1) // 2))
    assert 0.0 <= s["rand"] <= 1.0 and s["ari"] == pytest.approx(0.0, abs=1e-9)  # one group: no better than chance


def test_boundaries_by_hand():
    # gold starts at rows 3 (a); pred at rows 2 (a); users' first rows are not scored
    df = frame(["a"] * 4 + ["b"] * 2, ["p", "p", "q", "q", "r", "r"], ["x", "x", "x", "y", "z", "z"])
    s = boundary_scores(df, "pred", "gold")
    assert (s["boundary_precision"], s["boundary_recall"], s["boundary_f1"]) == (0.0, 0.0, 0.0)
    # adjacent pairs: (0,1) same/same, (1,2) break/same, (2,3) same/break, (4,5) same/same
    assert s["adjacent_accuracy"] == pytest.approx(2 / 4)
    same = boundary_scores(df, "gold", "gold")
    assert same["boundary_f1"] == 1.0


labels = st.lists(
    st.tuples(st.sampled_from("uv"), st.sampled_from("abc"), st.sampled_from("xyz")), min_size=2, max_size=14
)


@settings(max_examples=60, deadline=None)
@given(labels)
def test_pair_counting_equals_enumerating_pairs(rows):
    users, pred, gold = map(list, zip(*rows, strict=True))
    s = pair_counting(frame(users, pred, gold), "pred", "gold")
    tp = fp = fn = tn = 0
    for i, j in combinations(range(len(rows)), 2):
        if users[i] != users[j]:
            continue
        same_p, same_g = pred[i] == pred[j], gold[i] == gold[j]
        tp += same_p and same_g
        fp += same_p and not same_g
        fn += same_g and not same_p
        tn += not same_p and not same_g
    if tp + fp:
        assert s["precision"] == pytest.approx(tp / (tp + fp))
    if tp + fn:
        assert s["recall"] == pytest.approx(tp / (tp + fn))
    if tp + fp + fn + tn:
        assert s["rand"] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
    if len(set(users)) == 1 and len(set(pred)) + len(set(gold)) > 2:  # one user: the usual ARI of its queries
        assert s["ari"] == pytest.approx(adjusted_rand_score(gold, pred))


def test_compare_scores_each_level_against_the_gold_present():
    gold = (
        frame(["a"] * 4, ["-"] * 4, ["-"] * 4)
        .select("row_id", "user_id", "ts")
        .with_columns(gold_mission=pl.Series(["m1", "m2", "m1", "m1"]))
    )
    system = pl.DataFrame(
        {"row_id": range(4), "session_id": ["s0", "s1", "s2", "s2"], "mission_id": ["m", "n", "m", "m"]}
    )
    baseline = pl.DataFrame({"row_id": range(4), "session_id": ["s0", "s0", "s1", "s1"]})
    table = compare(gold, {"sys": system, "base": baseline})
    assert table.select("system", "level", "gold").rows() == [
        ("sys", "sessions", "missions"), ("sys", "missions", "missions"), ("base", "sessions", "missions"),
    ]  # fmt: skip
    assert table.filter(level="missions")["f1"][0] == 1.0
    # the API user's find: a system that lost rows was scored on those it kept (1.0 here)
    with pytest.raises(ValueError, match=r"system lost has no row for 2 of the 4 gold rows \(the first: row_id 1\)"):
        compare(gold, {"lost": system.filter(pl.col("row_id").is_in([0, 3]))})
    more = pl.concat([system, pl.DataFrame({"row_id": [9], "session_id": ["s9"], "mission_id": ["z"]})])
    assert compare(gold, {"sys": more}).equals(compare(gold, {"sys": system}))  # rows beyond gold's are no matter


def test_scores_by_user_history_length_keep_heavy_users_apart():
    """A light user grouped right and a heavy one (60 queries) chained into one mission:
    the whole log's F1 mixes them; the buckets tell them apart."""
    start = datetime(2023, 1, 1, tzinfo=UTC)
    users = ["light"] * 4 + ["heavy"] * 60
    gold = pl.DataFrame({
        "row_id": range(64), "user_id": users, "ts": [start + timedelta(minutes=i) for i in range(64)],
        "gold_mission": ["a", "a", "b", "b"] + [f"h{i // 3}" for i in range(60)],
    })  # fmt: skip
    system = pl.DataFrame({"row_id": range(64), "session_id": [str(i) for i in range(64)],
                           "mission_id": ["a", "a", "b", "b"] + ["chain"] * 60})  # fmt: skip
    table = compare_by_user_size(gold, {"sys": system}).filter(level="missions")
    assert table.select("users", "n_users", "rows").rows() == [("1-50 queries", 1, 4), ("51-200 queries", 1, 60)]
    precision = 20 * 3 / (60 * 59 / 2)  # 20 x C(3,2) of C(60,2)
    assert table["f1"].to_list() == [1.0, pytest.approx(2 * precision / (1 + precision))]
    whole = compare(gold, {"sys": system}).filter(level="missions")["f1"][0]
    assert table["f1"][1] < whole < 1.0
