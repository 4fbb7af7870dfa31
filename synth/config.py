"""The knobs of the synthetic log generator, with the real figures they were set from.

Measured on the development data (`../shared/data`, after folding click rows):
- Gayo-Avello sessions: 2.0 queries on average, always contiguous;
- Webis-SMC-12 missions: 4.6 queries on average, 23% not contiguous (interleaved
  or resumed after another mission), 25% spanning more than a day;
- AOL sample: 1.28 rows per query (one row per click), 3.05 words per query,
  30-minute sessions of 2.1 queries, 48% of gaps above 30 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Style = Literal["aol", "prompt"]


@dataclass(frozen=True)
class SynthConfig:
    """What to generate and how it behaves.

    Structure: a user's queries come in bursts of activity (a geometric number of
    queries, ended with probability `p_burst_end` after each); within a burst the
    user may switch between two missions (A A B B A), with probability `p_switch`
    per query. A gold session is a contiguous run of one mission inside a burst
    (topical and temporal, as Gayo-Avello's); a gold mission is one information
    need across bursts and days (as Webis-SMC-12's). A burst starts with a
    navigational mission (`p_nav`), the user's latest mission (`p_continue`), an
    older one (`p_resume`), or a new topic.
    """

    users: int
    rows: int | None = None  # total rows; None draws each user's activity alone
    style: Style = "aol"
    seed: int = 0
    # Activity per user: log-normal (heavy tail), median and spread in log space.
    user_rows_median: float = 20.0
    user_rows_sigma: float = 1.4
    # Bursts, missions, sessions.
    p_burst_end: float = 0.42
    p_switch: float = 0.10
    p_nav: float = 0.12
    p_continue: float = 0.38
    p_resume: float = 0.10
    # Gaps: within a burst seconds to minutes (a slow minority: reading, comparing);
    # between bursts hours to days, never under `min_break_s`.
    within_gap_median_s: float = 75.0
    within_gap_sigma: float = 1.1
    p_slow_gap: float = 0.06
    slow_gap_median_s: float = 420.0
    between_gap_median_s: float = 8 * 3600.0
    between_gap_sigma: float = 1.6
    min_break_s: float = 20 * 60.0
    start: datetime | None = None  # None: 2006-03-01 (AOL) or 2022-08-01 (DiffusionDB)
    days: int | None = None  # None: 92 (AOL, March to May 2006) or 30 (prompts)
    # Rows per query: AOL has one row per click; a prompt log one row per image.
    click_probs: tuple[float, ...] = (0.48, 0.42, 0.07, 0.02, 0.01)  # 0, 1, 2, 3, 4 clicks
    image_probs: tuple[float, ...] = (0.0, 0.55, 0.2, 0.1, 0.15)  # 0..4 images
    chunk_rows: int = 1_000_000  # rows generated (and held) at a time

    @property
    def window(self) -> tuple[datetime, int]:
        """First day and length in days of the log's time span."""
        if self.style == "prompt":
            return self.start or datetime(2022, 8, 1, tzinfo=UTC), self.days or 30
        return self.start or datetime(2006, 3, 1, tzinfo=UTC), self.days or 92

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be at least 1")
        if self.rows is not None and self.rows < self.users:
            raise ValueError(f"rows ({self.rows}) must be at least users ({self.users}): every user has a row")
        if self.style not in ("aol", "prompt"):
            raise ValueError(f"style must be aol or prompt, not {self.style!r}")
        for name in ("p_burst_end", "p_switch", "p_nav", "p_continue", "p_resume", "p_slow_gap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if self.p_nav + self.p_continue + self.p_resume > 1.0:
            raise ValueError("p_nav + p_continue + p_resume must not exceed 1")
