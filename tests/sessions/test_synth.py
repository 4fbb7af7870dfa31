"""The synthetic log: exact sizes, determinism, and ground truth that means what it says."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.formats.aol import AOL_COLUMNS
from sessions.formats.prompts import DIFFUSIONDB_COLUMNS
from sessions.ingest import ingest
from sessions.io import read_table
from synth import SynthConfig, write_log
from synth.generate import chunk_bounds, user_budgets


def _events(tmp_path, cfg, taxonomy, name="log") -> pl.DataFrame:
    suffix = ".tsv.gz" if cfg.style == "aol" else ".parquet"
    path = tmp_path / f"{name}{suffix}"
    summary = write_log(cfg, taxonomy, path)
    assert summary.rows == (cfg.rows or summary.rows)
    report = ingest([path], "aol" if cfg.style == "aol" else "diffusiondb", tmp_path / f"{name}-events")
    assert report.rows_rejected == 0, report.rejected_by_reason
    return read_table(tmp_path / f"{name}-events" / "events.parquet")


@pytest.fixture(scope="module")
def aol(tmp_path_factory, tiny_taxonomy) -> pl.DataFrame:
    cfg = SynthConfig(users=300, rows=30_000, style="aol", seed=7, chunk_rows=8_000)
    return _events(tmp_path_factory.mktemp("aol"), cfg, tiny_taxonomy)


def test_budgets_are_exact_and_heavy_tailed():
    budget = user_budgets(SynthConfig(users=10_000, rows=1_000_000))
    assert budget.sum() == 1_000_000 and budget.min() >= 1
    assert budget.max() > 20 * float(pl.Series(budget).median())  # a heavy tail, as in AOL
    bounds = chunk_bounds(budget, 100_000)
    assert bounds[0][0] == 0 and bounds[-1][1] == 10_000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_same_arguments_same_log_other_seed_other_log(tmp_path, tiny_taxonomy):
    cfg = SynthConfig(users=50, rows=2_000, seed=3, chunk_rows=700)
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    write_log(cfg, tiny_taxonomy, a)
    write_log(cfg, tiny_taxonomy, b)
    assert a.read_bytes() == b.read_bytes()
    write_log(SynthConfig(users=50, rows=2_000, seed=4), tiny_taxonomy, b)
    assert a.read_bytes() != b.read_bytes()


def test_aol_layout_and_order(tmp_path, tiny_taxonomy):
    path = tmp_path / "s.tsv"
    write_log(SynthConfig(users=20, rows=500), tiny_taxonomy, path)
    header = path.read_text().splitlines()[0].split("\t")
    assert tuple(header[:5]) == AOL_COLUMNS
    assert header[5:] == ["gold_session", "gold_mission", "gold_depth", "gold_reformulation"]


def test_rows_are_in_user_then_time_order(aol):
    assert aol.height == 30_000 and aol["user_id"].n_unique() == 300
    assert aol.select(pl.col("ts").diff().over("user_id").min()).item().total_seconds() >= 0
    assert aol["user_id"].cast(pl.Int64).is_sorted()


def test_sessions_are_contiguous_and_missions_are_not_always(aol):
    runs = aol.with_columns(
        s_run=(pl.col("gold_session") != pl.col("gold_session").shift()).cum_sum(),
        m_run=(pl.col("gold_mission") != pl.col("gold_mission").shift()).cum_sum(),
    )
    per_session = runs.group_by("gold_session").agg(pl.col("s_run").n_unique(), pl.col("gold_mission").n_unique())
    assert per_session["s_run"].max() == 1  # one contiguous run each
    assert per_session["gold_mission"].max() == 1  # one mission each
    missions = runs.group_by("gold_mission").agg(
        runs=pl.col("m_run").n_unique(),
        sessions=pl.col("gold_session").n_unique(),
        hours=(pl.col("ts").max() - pl.col("ts").min()).dt.total_hours(),
    )
    assert (missions["sessions"] > 1).mean() > 0.2  # missions resumed later
    assert 0.05 < (missions["runs"] > 1).mean() < 0.6  # some interleaved with others
    assert (missions["hours"] > 24).mean() > 0.05  # some span days


def test_gaps_inside_sessions_are_short_and_between_are_long(aol):
    gaps = aol.with_columns(
        gap=pl.col("ts").diff().over("user_id").dt.total_seconds(),
        same=pl.col("gold_session") == pl.col("gold_session").shift().over("user_id"),
    )
    inside = gaps.filter(pl.col("same") & (pl.col("gold_reformulation") != "duplicate"))["gap"]
    between = gaps.filter(~pl.col("same") & (pl.col("gold_mission") == pl.col("gold_mission").shift().over("user_id")))[
        "gap"
    ]
    assert inside.median() < 300 and (inside > 1800).mean() < 0.02
    assert between.median() > 3600


def test_reformulation_labels_match_the_hierarchy(aol):
    prev = aol.with_columns(
        prev_query=pl.col("query").shift().over("gold_session"),
        prev_depth=pl.col("gold_depth").shift().over("gold_session"),
        prev_ts=pl.col("ts").shift().over("gold_session"),
        words=pl.col("query").str.split(" ").list.len(),
        prev_words=pl.col("query").str.split(" ").list.len().shift().over("gold_session"),
    )
    by = {k: prev.filter(pl.col("gold_reformulation") == k) for k in prev["gold_reformulation"].unique()}
    assert set(by) >= {
        "start",
        "specialisation",
        "generalisation",
        "lateral",
        "add_term",
        "drop_term",
        "typo",
        "repeat",
        "duplicate",
    }
    assert by["start"]["prev_query"].null_count() == by["start"].height  # first of its session
    dup = by["duplicate"]
    assert (dup["query"] == dup["prev_query"]).all() and (dup["ts"] == dup["prev_ts"]).all()
    assert (by["repeat"]["query"] == by["repeat"]["prev_query"]).all()
    assert (by["typo"]["query"] != by["typo"]["prev_query"]).mean() > 0.9
    concept = by["specialisation"].drop_nulls("gold_depth")  # the tiny hierarchy is a tree:
    assert (concept["gold_depth"] == concept["prev_depth"] + 1).all()
    assert (by["generalisation"]["gold_depth"] == by["generalisation"]["prev_depth"] - 1).all()
    assert (by["lateral"]["gold_depth"] == by["lateral"]["prev_depth"]).all()
    # Terms come and go (a misspelt previous query may have lost a space: "parrotdrescue").
    assert (by["add_term"]["words"] > by["add_term"]["prev_words"]).mean() > 0.98
    assert (by["drop_term"]["words"] < by["drop_term"]["prev_words"]).mean() > 0.98


def test_navigational_queries_repeat_within_one_mission(aol):
    nav = aol.filter(pl.col("gold_mission").str.contains("/nav-"))
    assert 0.03 < nav.height / aol.height < 0.5
    assert nav["gold_depth"].null_count() == nav.height
    per = nav.group_by("gold_mission").agg(pl.col("gold_session").n_unique())
    assert per["gold_session"].max() > 3  # the same site, session after session


def test_prompt_style_is_diffusiondb_with_style_modifier_edits(tmp_path, tiny_taxonomy):
    cfg = SynthConfig(users=40, rows=3_000, style="prompt", seed=1)
    path = tmp_path / "metadata.parquet"
    write_log(cfg, tiny_taxonomy, path)
    raw = pl.read_parquet(path)
    assert tuple(raw.columns[:13]) == DIFFUSIONDB_COLUMNS
    events = _events(tmp_path, cfg, tiny_taxonomy, "p")
    assert events.height == 3_000 and events["ts"].dt.second().max() == 0  # to the minute
    edits = events.with_columns(
        n=pl.col("query").str.split(", ").list.len(),
        prev=pl.col("query").str.split(", ").list.len().shift().over("gold_session"),
    )
    added = edits.filter(pl.col("gold_reformulation") == "add_term")
    dropped = edits.filter(pl.col("gold_reformulation") == "drop_term")
    assert added.height > 50 and (added["n"] == added["prev"] + 1).all()
    assert dropped.height > 20 and (dropped["n"] == dropped["prev"] - 1).all()
    assert events["query"].str.len_chars().mean() > 40  # long prompts


def test_bad_configs_fail_early():
    with pytest.raises(ValueError, match=r"--rows \(5\) must be at least --users"):
        SynthConfig(users=10, rows=5)
    for given_settings, message in (  # each of these ended in a traceback, or in times no reader takes
        ({"min_break_s": 1e15}, "min_break_s must be between 0 and 30 days"),
        ({"users": 10**10}, "users at most 100,000,000"),
        ({"rows": 10**11}, "rows at most 10,000,000 a user on average"),
        ({"user_rows_sigma": 50.0}, "user_rows_sigma must be between 0 and 5.0"),
        ({"user_rows_median": -5.0}, "user_rows_median must be positive"),
        ({"start": datetime(9999, 12, 31, tzinfo=UTC)}, "start must be in year 9000 or before"),
    ):
        with pytest.raises(ValueError, match=message):
            SynthConfig(**{"users": 3, **given_settings})
    with pytest.raises(ValueError, match="style"):
        SynthConfig(users=10, style="bing")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    users=st.integers(1, 50),
    median=st.floats(1.0, 1e8),
    sigma=st.floats(0.0, 5.0),
    chunk_rows=st.integers(1, 10**6),
    seed=st.integers(0, 2**16),
)
def test_a_log_the_generator_cannot_hold_is_refused_before_anything_is_written(
    tmp_path_factory, tiny_taxonomy, users, median, sigma, chunk_rows, seed
):
    """A chunk is whole users, so a user drawn more rows than --chunk-rows held them all in
    memory (a median of 1e8 rows a user ran out of memory and left its temporary file):
    such settings are refused in one line before the output is opened; any other draw
    keeps every chunk within --chunk-rows but for a user alone."""
    cfg = SynthConfig(users=users, user_rows_median=median, user_rows_sigma=sigma, chunk_rows=chunk_rows, seed=seed)
    tmp = tmp_path_factory.mktemp("held")
    try:
        budget = user_budgets(cfg)
    except ValueError as refused:
        assert "\n" not in str(refused)
        with pytest.raises(ValueError, match=r"^(the heaviest user draws|--user-rows-median)"):
            write_log(cfg, tiny_taxonomy, tmp / "log.tsv")
        assert not list(tmp.iterdir())  # no output, no temporary file
        return
    assert budget.max() <= chunk_rows and budget.sum() <= 10_000_000 * users
    for lo, hi in chunk_bounds(budget, chunk_rows):
        assert hi - lo == 1 or budget[lo:hi].sum() <= 2 * chunk_rows


def test_a_user_heavier_than_a_chunk_is_named_with_what_to_change():
    with pytest.raises(ValueError) as refused:
        user_budgets(SynthConfig(users=1, rows=2_000_000))
    assert str(refused.value) == (
        "the heaviest user draws 2,000,000 rows, more than --chunk-rows 1,000,000 (the rows held in memory at a "
        "time; a user is never split): raise --chunk-rows, or lower --user-rows-median, --user-rows-sigma or --rows"
    )
