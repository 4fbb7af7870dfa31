"""Threads of one process and the native thread pools they share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from threadpoolctl import threadpool_info

from sessions.learned import LearnedConfig, SameSessionClassifier, pair_features
from sessions.segment import SegmentConfig, segment, user_time_order


def native_threads() -> list[tuple[str, int]]:
    """(library, threads) of each native thread pool, as the calling thread sees it."""
    return sorted((pool["internal_api"], pool["num_threads"]) for pool in threadpool_info())


def test_the_learned_method_on_threads_leaves_the_native_threads_as_they_were():
    """A breaking helper's find: `segment(method="learned")` with a segmenter model, its
    chunks of users on two threads, left numpy's BLAS on one thread for the rest of the
    process (each thread set and restored the process-wide limit of every library)."""
    rng = np.random.default_rng(0)
    t0 = datetime(2006, 3, 1, tzinfo=UTC)
    n = 20_000
    events = pl.DataFrame(
        {
            "row_id": range(n),
            "user_id": [f"u{i % 500}" for i in range(n)],
            "ts": [t0 + timedelta(seconds=int(s)) for s in np.cumsum(rng.integers(1, 4000, n))],
            "query": [f"topic {k} word {w}" for k, w in rng.integers(0, 50, (n, 2)).tolist()],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    ordered = user_time_order(events)
    labels = (rng.random(n) < 0.5).astype(np.int64)
    classifier = SameSessionClassifier.fit(pair_features(ordered), labels, LearnedConfig())
    before = native_threads()
    for _ in range(5):
        segment(events, SegmentConfig(method="learned"), classifier)
        assert native_threads() == before
