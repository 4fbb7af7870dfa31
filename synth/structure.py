"""Who searches when, in which session and for which mission: the skeleton of a
synthetic log, drawn for a chunk of users at once with numpy (no loop per query).

The unit is a query event (click rows and extra images are added later). Events are
ordered by user, then time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.config import SynthConfig

# Navigational missions are numbered from here, one per (user, site), so that a
# site a user keeps coming back to is one mission.
NAV_BASE = 1 << 20
_NEW, _NAV, _CONTINUE, _RESUME = 0, 1, 2, 3


@dataclass(frozen=True)
class Structure:
    """Query events of a chunk of users, in (user, time) order; one entry per event.

    Each field is (n,) for n events: ts float64 seconds since the Unix epoch (UTC),
    session_start bool, the others int indices (nav_site -1 where there is none).
    """

    user: np.ndarray  # local user index in the chunk
    ts: np.ndarray  # seconds since the Unix epoch (float)
    session: np.ndarray  # session number within the user (gold session)
    session_start: np.ndarray  # first event of its session
    mission_no: np.ndarray  # mission number within the user; NAV_BASE + site for navigation
    mission: np.ndarray  # dense mission index within the chunk
    step: np.ndarray  # position of the event in its mission (0 = the mission's first query)
    nav_site: np.ndarray  # site index of a navigational event, -1 otherwise

    @property
    def n_missions(self) -> int:
        """Distinct missions of the chunk (`mission` is dense from 0)."""
        return int(self.mission.max()) + 1 if len(self.mission) else 0


def zipf_cdf(n: int, s: float = 1.1) -> np.ndarray:
    """Cumulative probabilities of ranks 0..n-1 under p(r) ~ 1 / (r + 1)^s."""
    p = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(p / p.sum())


def _group_rank(sorted_keys: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal keys."""
    n = len(sorted_keys)
    idx = np.arange(n)
    start = np.ones(n, dtype=bool)
    start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return idx - np.maximum.accumulate(np.where(start, idx, 0))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def build_structure(queries: np.ndarray, cfg: SynthConfig, rng: np.random.Generator, n_sites: int) -> Structure:
    """Events for users with the given numbers of queries (each at least 1).

    queries: (n_users,) int; the events' `ts` are float64 seconds since the Unix epoch
    (UTC), each user's placed inside `cfg.window` as far as their gaps fit in it.
    """
    n_users, total = len(queries), int(queries.sum())
    user = np.repeat(np.arange(n_users), queries)
    user_start = np.cumsum(queries) - queries
    first = np.zeros(total, dtype=bool)
    first[user_start] = True

    # Bursts of activity, and runs of one mission (segments = gold sessions) inside them.
    burst_start = first | (rng.random(total) < cfg.p_burst_end)
    seg_start = burst_start | (rng.random(total) < cfg.p_switch)
    burst = np.cumsum(burst_start) - 1
    seg = np.cumsum(seg_start) - 1
    slot = (seg - seg[burst_start][burst]) % 2  # A B A B: two missions take turns in a burst

    # Mission slots: (burst, 0) is the burst's main mission, (burst, 1) a new one it interleaves.
    inst = burst * 2 + slot
    n_inst = 2 * (int(burst[-1]) + 1)
    exists = np.zeros(n_inst, dtype=bool)
    exists[inst] = True
    inst_user = np.zeros(n_inst, dtype=np.int64)
    inst_user[inst] = user
    r = rng.random(n_inst)
    kind = np.select(
        [r < cfg.p_nav, r < cfg.p_nav + cfg.p_continue, r < cfg.p_nav + cfg.p_continue + cfg.p_resume],
        [_NAV, _CONTINUE, _RESUME],
        _NEW,
    )
    kind[1::2] = _NEW
    nav = exists & (kind == _NAV)
    regular = np.flatnonzero(exists & ~nav)
    created = exists & (kind == _NEW)
    first_regular = np.ones(len(regular), dtype=bool)
    first_regular[1:] = inst_user[regular[1:]] != inst_user[regular[:-1]]
    created[regular[first_regular]] = True  # a user's first real mission is new
    before = np.cumsum(created) - created
    n_before = before - before[inst[user_start]][inst_user]  # missions the user made earlier

    mission_no = np.where(created, n_before, n_before - 1)  # continue: the latest
    resume = exists & ~created & (kind == _RESUME) & (n_before >= 2)
    mission_no[resume] = (rng.random(resume.sum()) * (n_before[resume] - 1)).astype(np.int64)
    # Each user has a favourite site and sometimes visits others.
    site_cdf = zipf_cdf(n_sites)
    favourite = np.searchsorted(site_cdf, rng.random(n_users), side="right")
    other = np.searchsorted(site_cdf, rng.random(n_inst), side="right")
    site = np.minimum(np.where(rng.random(n_inst) < 0.7, favourite[inst_user], other), n_sites - 1)
    mission_no[nav] = NAV_BASE + site[nav]

    ev_mission_no = mission_no[inst]
    key = user.astype(np.int64) * (2 * NAV_BASE) + ev_mission_no
    _, mission = np.unique(key, return_inverse=True)
    order = np.lexsort((np.arange(total), mission))
    step = np.empty(total, dtype=np.int64)
    step[order] = _group_rank(mission[order])

    session = seg - seg[user_start][user]
    ts = _times(cfg, rng, user, user_start, first, burst_start)
    nav_site = np.where(nav[inst], site[inst], -1)
    return Structure(user, ts, session, seg_start, ev_mission_no, mission, step, nav_site)


def _times(
    cfg: SynthConfig,
    rng: np.random.Generator,
    user: np.ndarray,
    user_start: np.ndarray,
    first: np.ndarray,
    burst_start: np.ndarray,
) -> np.ndarray:
    """Event times: short gaps inside bursts, long ones between, each user's activity
    squeezed into the log's time window when it would overflow it."""
    n = len(user)
    within = np.where(
        rng.random(n) < cfg.p_slow_gap,
        _lognormal(rng, cfg.slow_gap_median_s, 0.8, n),
        _lognormal(rng, cfg.within_gap_median_s, cfg.within_gap_sigma, n),
    )
    between = np.maximum(_lognormal(rng, cfg.between_gap_median_s, cfg.between_gap_sigma, n), cfg.min_break_s)
    is_break = burst_start & ~first
    within = np.where(burst_start, 0.0, within)
    between = np.where(is_break, between, 0.0)

    n_users = len(user_start)
    start, days = cfg.window
    window = days * 86400.0
    within_sum = np.bincount(user, within, minlength=n_users)
    between_sum = np.bincount(user, between, minlength=n_users)
    room = np.maximum(0.97 * window - within_sum, 0.0)
    scale = np.where(between_sum > room, room / np.maximum(between_sum, 1.0), 1.0)
    between = np.where(is_break, np.maximum(between * scale[user], cfg.min_break_s), 0.0)

    gaps = within + between
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[user_start][user]
    span = elapsed[np.r_[user_start[1:], n] - 1] if n else np.zeros(0)
    offset = rng.random(n_users) * np.maximum(window - span, 0.0)
    return start.timestamp() + offset[user] + elapsed
