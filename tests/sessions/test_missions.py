"""Missions grow by links with a bound (issue 16, kind 9): a session joins a mission of
more than one session only through one of its core terms or a repeated query, so a
heavy user's history does not chain into one mission."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.lexicon import Lexicon
from sessions.missions import CORE_SHARE, MissionConfig, first_of_component, grow_missions, link_missions, term_users
from sessions.pipeline import sessions_with_missions
from sessions.segment import SegmentConfig
from sessions.text import NO_TERMS, normalize


def csr(sessions: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Term codes per session as `grow_missions` takes them (texts: negative codes)."""
    return np.cumsum([0, *map(len, sessions)]), np.array([c for s in sessions for c in s], dtype=np.int64)


def grow(n: int, links: list[tuple[int, int]], terms: list[list[int]]) -> list[int]:
    a, b = (np.array(x, dtype=np.int64) for x in zip(*links, strict=True)) if links else (np.zeros(0, int),) * 2
    return grow_missions(n, a, b, csr(terms)).tolist()


def test_the_linking_window_counts_only_queries_in_other_sessions():
    """The code reader's find: a term's later queries in the query's own session used up
    the window, so with `window` 1 the same query in the next session was never compared
    with it. The window is the next queries sharing a term that sit in other sessions."""
    from datetime import datetime, timedelta

    texts = ["foo bar zed", "foo apple berry", "bar egret fjord", "zed iris jade", "foo bar zed"]
    t = datetime(2020, 1, 1)
    rows = pl.DataFrame({"row_id": range(5), "user_id": ["u"] * 5, "ts": [t + timedelta(minutes=i) for i in range(5)],
                         "query": texts, "session_id": ["u/0"] * 4 + ["u/1"]})  # fmt: skip
    for window in (1, 2, 10):
        assert link_missions(rows, MissionConfig(window=window))["mission_id"].to_list() == ["u/m0"] * 5


def test_repeats_of_a_query_without_terms_are_one_mission_as_repeats_of_terms_are():
    """The tester's find: a query of emoji or punctuation alone repeated on three days
    stayed three missions where `dragon castle` and `龍と城` became one, and A, B, A
    (😀🔥💯, 🐱, 😀🔥💯, two minutes apart: three sessions) three missions where `red
    dragon`, `blue castle`, `red dragon` gave two. Such a query had no term to propose a
    link; its key is now its one term, so it meets its repeats (case and spacing
    variants too), and only them."""
    from datetime import datetime, timedelta

    days = {"emoji": ["🐉🏰"] * 3, "text": ["dragon castle"] * 3, "cjk": ["龍と城"] * 3, "punct": ["?!?!"] * 3,
            "variants": ["The", "🍕", "the ", "🎉", "🍕"]}  # fmt: skip
    minutes = {"aba": ["😀🔥💯", "🐱", "😀🔥💯"], "words": ["red dragon", "blue castle", "red dragon"]}
    t = datetime(2023, 3, 1, 10)
    rows = [(user, t + timedelta(days=i), q) for user, qs in days.items() for i, q in enumerate(qs)]
    rows += [(user, t + timedelta(minutes=2 * i), q) for user, qs in minutes.items() for i, q in enumerate(qs)]
    events = pl.DataFrame(rows, schema=["user_id", "ts", "query"], orient="row").with_row_index("row_id")
    got = sessions_with_missions(events.with_columns(pl.col("row_id").cast(pl.Int64)), SegmentConfig(), MissionConfig())
    by_user = got.sort("row_id").group_by("user_id", maintain_order=True).agg("session_id", "mission_id")
    sessions = {u: len(set(s)) for u, s, _ in by_user.iter_rows()}
    missions = {u: [m.split("/")[1] for m in ms] for u, _, ms in by_user.iter_rows()}
    assert sessions == {"emoji": 3, "text": 3, "cjk": 3, "punct": 3, "variants": 5, "aba": 3, "words": 3}
    assert missions == {"emoji": ["m0"] * 3, "text": ["m0"] * 3, "cjk": ["m0"] * 3, "punct": ["m0"] * 3,
                        "variants": ["m0", "m1", "m0", "m2", "m1"],  # `the` is `The`, 🍕 is not 🎉
                        "aba": ["m0", "m1", "m0"], "words": ["m0", "m1", "m0"]}  # fmt: skip


def test_missing_or_blank_queries_link_nothing():
    from datetime import datetime, timedelta

    queries = [None, "", "  ", None, "", "🍕", "🍕"]
    rows = pl.DataFrame({"user_id": ["u"] * 7, "ts": [datetime(2023, 1, 1) + timedelta(days=i) for i in range(7)],
                         "query": queries, "session_id": [str(i) for i in range(7)]})  # fmt: skip
    assert link_missions(rows, MissionConfig())["mission_id"].to_list() == [f"u/m{i}" for i in range(6)] + ["u/m5"]


def test_a_query_without_terms_that_many_users_type_links_nothing_as_a_common_term():
    """The key of a text without terms is its term to every mission rule: typed by at
    least `common_term_min_users` users (and the share), it proposes no pair, as `free`
    does; one that fewer users type still links."""
    from datetime import datetime, timedelta

    t = datetime(2023, 3, 1, 10)
    rows = [(f"u{u}", t + timedelta(days=d), "?" if u < 20 else "¿") for u in range(25) for d in range(2)]
    events = pl.DataFrame(rows, schema=["user_id", "ts", "query"], orient="row").with_row_index("row_id")
    got = sessions_with_missions(events.with_columns(pl.col("row_id").cast(pl.Int64)), SegmentConfig(), MissionConfig())
    missions = got.group_by("user_id").agg(pl.col("session_id").n_unique(), pl.col("mission_id").n_unique())
    assert missions.filter(pl.col("session_id") != 2).height == 0
    expected = {f"u{u}": 2 if u < 20 else 1 for u in range(25)}
    assert dict(missions.select("user_id", "mission_id").iter_rows()) == expected


TERMLESS = ["🍕", "🎉", "?!?!", "...", "the", "The", " the  ", "of the", "🐉🏰", "🐉🏰 "]
BLANK = [None, "", "   "]
WITH_TERMS = ["red dragon", "blue castle", "dragon", "the castle"]
QUERIES = TERMLESS + BLANK + WITH_TERMS


def variant_key(query: str) -> str:
    """What a query without terms is the same as: its case-and-spacing form."""
    return " ".join(query.lower().split())


@settings(max_examples=150, deadline=None)
@given(
    sessions=st.lists(
        st.tuples(st.sampled_from("uv"), st.lists(st.sampled_from(QUERIES), min_size=1, max_size=3)), max_size=14
    ),
    window=st.sampled_from([1, 10]),
)
def test_a_query_without_terms_shares_the_mission_of_its_first_occurrence(sessions, window):
    """Every later session of a user that repeats a query without terms (or a case and
    spacing variant of it) is in the mission of the session of its first occurrence,
    whatever else the sessions hold: it is linked to the one before (the same key is its
    one term) and, repeating its query, joins that mission. A session of missing or
    blank queries alone is a mission alone, and a user's sessions of one query without
    terms each are missions exactly by the query's key (🍕 is not 🎉)."""
    from datetime import datetime, timedelta

    rows = [(user, datetime(2023, 1, 1) + timedelta(hours=i), q, f"{user}/{i}")
            for i, (user, queries) in enumerate(sessions) for q in queries]  # fmt: skip
    frame = pl.DataFrame(rows, schema=["user_id", "ts", "query", "session_id"], orient="row")
    frame = frame.sort("user_id", "ts", maintain_order=True)
    linked = link_missions(frame, MissionConfig(window=window))
    first: dict[tuple[str, str], str] = {}  # (user, key) -> the mission of its first occurrence
    for user, query, mission in linked.select("user_id", "query", "mission_id").iter_rows():
        if query in TERMLESS:
            assert first.setdefault((user, variant_key(query)), mission) == mission
    for user in ("u", "v"):
        mine = [(i, queries) for i, (u, queries) in enumerate(sessions) if u == user]
        mission_of = dict(linked.filter(pl.col("user_id") == user).select("session_id", "mission_id").iter_rows())
        missions = [mission_of[f"{user}/{i}"] for i, _ in mine]
        for (_, queries), mission in zip(mine, missions, strict=True):
            if all(q in BLANK for q in queries):
                assert missions.count(mission) == 1
        if all(len(queries) == 1 and queries[0] in TERMLESS for _, queries in mine):
            pairs = list(zip(missions, [variant_key(queries[0]) for _, queries in mine], strict=True))
            assert all((m == n) == (k == j) for m, k in pairs for n, j in pairs)


def test_a_chain_through_different_terms_stops_where_no_core_term_is_shared():
    # 0 {a b} - 1 {b c} - 2 {c d} - 3 {d e}: each linked to the one before only.
    terms = [[0, 1], [1, 2], [2, 3], [3, 4]]
    # 1 joins a lone session; 2 joins {0, 1} (c is in 1 of 2 sessions: half); 3 would
    # join {0, 1, 2} through d, held by 1 of 3: refused, it opens a mission.
    assert grow(4, [(0, 1), (1, 2), (2, 3)], terms) == [0, 0, 0, 3]
    # single linkage, before: one mission
    assert first_of_component(4, np.array([0, 1, 2]), np.array([1, 2, 3])).tolist() == [0, 0, 0, 0]


def test_a_core_term_or_a_repeated_query_joins_and_joins_missions_together():
    terms = [[0, 1, -1], [0, 2], [0, 3], [5, 6, -1], [9, -7]]
    # 3 holds none of {0, 1, 2}'s terms in half its sessions but repeats query -1 of session 0
    assert grow(4, [(0, 1), (1, 2), (2, 3)], terms[:4]) == [0, 0, 0, 0]
    # a session linked to two missions and holding a core term of each makes them one
    terms = [[0, 1], [0, 2], [5, 6], [5, 7], [0, 5]]
    assert grow(5, [(0, 1), (2, 3), (1, 4), (3, 4)], terms) == [0, 0, 0, 0, 0]
    assert grow(5, [(0, 1), (2, 3), (1, 4), (3, 4)], [*terms[:4], [0]]) == [0, 0, 2, 2, 0]


class TwoWords:
    """A session model's vectors: `cats` at right angles to every other text (`dogs`,
    `puppies`), p_same the dot product."""

    def embed(self, texts: pl.Series) -> np.ndarray:
        return np.array([[1.0, 0.0] if t == "cats" else [0.0, 1.0] for t in texts.to_list()]).reshape(-1, 2)

    def p_same(self, scores: np.ndarray) -> np.ndarray:
        return scores


def test_a_sessions_vector_counts_each_of_its_queries_once():
    """Missions with a session model compare sessions' centroids: the mean of every row's
    vector, so that a query's rows repeated (a row per click, per image) pulled its
    session's centroid towards it and cut a link to a session of its other query's kind.
    The centroid is that of the session's distinct queries: `cats` and `dogs` (0.71 from
    `puppies`, a link at 0.5; nothing lexical in common), however many rows repeat `cats`
    (4 rows: 0.24)."""
    for cats in (1, 4):
        sessions = pl.DataFrame({
            "user_id": ["u"] * (cats + 2),
            "session_id": ["u/0"] * (cats + 1) + ["u/1"],
            "query": ["cats"] * cats + ["dogs", "puppies"],
        })  # fmt: skip
        linked = link_missions(sessions, MissionConfig(), embedder=TwoWords())
        assert linked["mission_id"].to_list() == ["u/m0"] * (cats + 2), cats


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 14),
    data=st.data(),
)
def test_missions_refine_the_linked_components_and_equal_them_where_no_bound_applies(n, data):
    links = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    terms = data.draw(st.lists(st.lists(st.integers(-3, 5), max_size=3, unique=True), min_size=n, max_size=n))
    a, b = (np.array(x, dtype=np.int64) for x in zip(*links, strict=True)) if links else (np.zeros(0, int),) * 2
    grown, components = grow_missions(n, a, b, csr(terms)), first_of_component(n, a, b)
    for s in range(n):
        assert grown[s] <= s and grown[grown[s]] == grown[s]  # labelled by its first session
        assert components[grown[s]] == components[s]  # never across components
    sizes = np.bincount(components, minlength=n)
    small = sizes[components] <= 2
    assert (grown[small] == components[small]).all()
    if all(set(t) & {0} for t in terms):  # every session holds term 0: nothing is refused
        assert (grown == components).all()


def grow_reference(n: int, a: np.ndarray, b: np.ndarray, terms: tuple[np.ndarray, np.ndarray]) -> list[int]:
    """The rule of `grow_missions` in plain Python, session by session (the oracle of its
    compiled loop): each session joins every mission of an earlier linked session that
    is one session, holds one of its queries (code < 0), or of whose sessions at least
    `CORE_SHARE` hold one of its terms."""
    offsets, codes = terms
    mission = list(range(n))  # session -> the sessions of its mission, by first session
    members: dict[int, list[int]] = {s: [s] for s in range(n)}
    for s in range(n):
        mine = set(codes[offsets[s] : offsets[s + 1]].tolist())
        earlier = sorted({min(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True) if max(x, y) == s and x != y})
        for e in earlier:
            group, joined = mission[e], mission[s]
            if group == joined:
                continue
            held = [set(codes[offsets[m] : offsets[m + 1]].tolist()) for m in members[group]]
            if len(held) > 1 and not any(sum(c in h for h in held) >= (1 if c < 0 else CORE_SHARE * len(held))
                                         for c in mine):  # fmt: skip
                continue
            first, other = min(group, joined), max(group, joined)
            for m in members.pop(other):
                mission[m] = first
                members[first].append(m)
    return mission


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 16), data=st.data())
def test_the_compiled_growth_is_the_rule_session_by_session(n, data):
    links = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    terms = data.draw(st.lists(st.lists(st.integers(-4, 6), max_size=4, unique=True), min_size=n, max_size=n))
    a, b = (np.array(x, dtype=np.int64) for x in zip(*links, strict=True)) if links else (np.zeros(0, int),) * 2
    assert grow_missions(n, a, b, csr(terms)).tolist() == grow_reference(n, a, b, csr(terms))


def test_a_heavy_users_history_does_not_chain_into_one_mission():
    """The issue's example: one user, 10,000 queries of 2,000 topics (5 queries each,
    WordNet nouns drawn by frequency, gaps 1 s to 7 min). Single linkage made one
    mission of 9,690 queries (1,938 topics); the same queries spread over 1,000 users
    give one mission per topic, nearly."""
    from synth.heavy import topic_stream

    for users, fewest_missions, largest_at_most in ((1, 300, 600), (1_000, 1_950, 10)):
        events = topic_stream(10_000, users=users)
        missions = sessions_with_missions(events, SegmentConfig(), MissionConfig())
        sizes = missions.group_by("mission_id").len()
        assert sizes.height >= fewest_missions and sizes["len"].max() <= largest_at_most
        assert missions.height == 10_000 and missions["row_id"].sort().to_list() == list(range(10_000))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("uvwxyz"), st.lists(st.sampled_from(["cats", "dogs", "the", "nyc", "é"]),
                                                              max_size=3)), min_size=1, max_size=30))  # fmt: skip
def test_term_users_count_each_user_once_in_any_row_order(rows):
    """Rows grouped by user or not, a term counts the distinct users who typed it (a
    query without terms, `the`, its key); two parts that split no user add up to the
    whole."""
    queries = pl.Series([" ".join(words) for _, words in rows])
    users = pl.Series([u for u, _ in rows])
    expected: dict[str, set[str]] = {}
    for user, words in rows:
        found = normalize_terms(" ".join(words))
        own = [NO_TERMS + " ".join(words)] if words and not found else []  # a text without terms: its key
        for word in {*found, *own}:
            expected.setdefault(word, set()).add(user)
    got = term_users(Lexicon(queries), users)
    assert dict(zip(got["term"], got["users"], strict=True)) == {t: len(u) for t, u in expected.items()}
    part = users.is_in(["u", "v"])
    halves = pl.concat([term_users(Lexicon(queries.filter(p)), users.filter(p)) for p in (part, ~part)])
    added = halves.group_by("term").agg(pl.col("users").sum())
    assert dict(zip(added["term"], added["users"], strict=True)) == {t: len(u) for t, u in expected.items()}


def normalize_terms(query: str) -> list[str]:
    return pl.select(normalize(pl.lit(query))).item().split()


def _segmented(seed: int) -> pl.DataFrame:
    """A small segmented log of three users, as `segment` returns it."""
    from datetime import datetime, timedelta

    from sessions.segment import segment

    rng = np.random.default_rng(seed)
    words = ["cheap", "flights", "paris", "hotel", "rome", "flu", "symptoms", "cats", "dogs", "tickets"]
    rows = [
        (f"u{u}", datetime(2020, 1, 1) + timedelta(minutes=int(m)), " ".join(rng.choice(words, 2)))
        for u in range(3)
        for m in np.sort(rng.integers(0, 3000, 12))
    ]
    events = pl.DataFrame(rows, schema=["user_id", "ts", "query"], orient="row").with_row_index("row_id")
    return segment(events.with_columns(pl.col("row_id").cast(pl.Int64)), SegmentConfig())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), shuffle=st.integers(0, 1000))
def test_rows_out_of_user_time_order_are_refused_and_in_order_link_as_before(seed, shuffle):
    """The API user's find: `link_missions` on segment's rows shuffled (a sort by another
    column, a join) linked by row position across sessions and users, 50 missions where
    the rows in order gave 294, with no word. The kind: any order but (user, time) is
    refused; the same rows put back in order give the same missions."""
    from sessions.segment import user_time_order

    rows = _segmented(seed)
    linked = link_missions(rows, MissionConfig())
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=shuffle)
    try:
        again = link_missions(shuffled, MissionConfig())
    except ValueError as err:
        assert "out of order" in str(err) and "user_time_order" in str(err)
        again = link_missions(user_time_order(shuffled), MissionConfig())
    else:  # only an order that keeps every user's rows and times in order is taken
        assert shuffled.equals(user_time_order(shuffled))
    assert again.sort("row_id")["mission_id"].to_list() == linked.sort("row_id")["mission_id"].to_list()


def test_each_kind_of_disorder_is_named():
    import pytest

    rows = _segmented(0)
    users_apart = pl.concat([rows[:3], rows[20:23], rows[3:20], rows[23:]])
    with pytest.raises(ValueError, match="a user's rows are out of order"):
        link_missions(users_apart, MissionConfig())
    first_user = rows.filter(pl.col("user_id") == "u0")
    sessions_apart = first_user.sort("session_id", "query")  # each session's rows kept together, times not
    backwards = first_user.reverse()
    with pytest.raises(ValueError, match="out of order"):
        link_missions(backwards, MissionConfig())
    assert sessions_apart["session_id"].n_unique() > 1
    with pytest.raises(ValueError, match="a user's times are out of order"):
        link_missions(sessions_apart, MissionConfig())
    with pytest.raises(ValueError, match="1 rows without a session_id"):
        link_missions(rows.with_columns(pl.when(pl.int_range(pl.len()) != 3).then("session_id")), MissionConfig())
    # times going back across a missing one were taken (the second change breaker's find)
    with pytest.raises(ValueError, match="1 rows without a ts"):
        link_missions(rows.with_columns(pl.when(pl.int_range(pl.len()) != 3).then("ts")), MissionConfig())


def test_session_ids_are_a_users_own():
    """The change breaker's finds: sessions numbered per user (0, 1 for each) were refused as
    out of order, and an id ending one user's rows and starting the next's linked as one
    session across the two. A session is a user's session_id."""
    from datetime import datetime, timedelta

    t = [datetime(2006, 3, 1) + timedelta(hours=h) for h in (0, 5, 0, 5)]
    queries = ["cute cats", "cute cats videos", "new york hotels", "new york map"]
    frame = pl.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "ts": t, "query": queries})
    per_user = link_missions(frame.with_columns(session_id=pl.Series([0, 1, 0, 1])), MissionConfig())
    unique = link_missions(frame.with_columns(session_id=pl.Series(["a", "b", "c", "d"])), MissionConfig())
    assert per_user["mission_id"].to_list() == unique["mission_id"].to_list() == ["u1/m0", "u1/m0", "u2/m0", "u2/m0"]
    shared = frame.with_columns(session_id=pl.Series(["x", "s", "s", "y"]), query=pl.Series(["cats", "ny"] * 2))
    assert link_missions(shared, MissionConfig())["mission_id"].to_list() == ["u1/m0", "u1/m1", "u2/m0", "u2/m1"]
