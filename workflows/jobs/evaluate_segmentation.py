"""Segmentation methods scored against a log's ground truth, next to time-gap baselines.

One function serves `sessionflow evaluate segmentation` and the demo: every method
segments the labelled events (sessions, then missions), the time gaps of
`sessions.metrics.BASELINE_GAP_MINUTES` segment them alone, and
`sessions.metrics.compare` scores each against every gold level the log has.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from sessions.metrics import BASELINE_GAP_MINUTES, compare, gold_levels
from sessions.missions import MissionConfig
from sessions.pipeline import sessions_with_missions
from sessions.segment import SegmentConfig, segment

MODEL_METHODS = ("cascade", "learned")  # the methods a session model takes part in


def has_gold(events: pl.DataFrame) -> bool:
    """Whether `events` carry gold sessions or missions to score against."""
    return bool(gold_levels(events))


def evaluate_methods(
    gold: pl.DataFrame,
    methods: Mapping[str, tuple[SegmentConfig, MissionConfig]],
    scorer=None,
    systems: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """`compare`'s rows for every method (its name -> its configs), for groupings made
    elsewhere (`systems`: name -> frame with row_id, session_id[, mission_id]) and for
    the time-gap baselines. With `scorer` (a session model) the methods it takes part
    in are also scored with it, as `<name> + model`; `learned` only so."""
    if not has_gold(gold):
        raise ValueError("the log has no gold sessions or missions to score against")
    systems = dict(systems or {})
    for name, (seg, missions) in methods.items():
        if seg.method != "learned":
            systems[name] = sessions_with_missions(gold, seg, missions)
        if scorer is not None and seg.method in MODEL_METHODS:
            systems[f"{name} + model"] = sessions_with_missions(gold, seg, missions, scorer, scorer)
    for minutes in BASELINE_GAP_MINUTES:
        systems[f"time-gap {minutes} min"] = segment(gold, SegmentConfig(method="time", gap_minutes=minutes))
    return compare(gold, systems)
