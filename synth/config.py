"""The knobs of the synthetic log generator, with the real figures they were set from.

Measured on the development data (`../shared/data`, after folding click rows):
- Gayo-Avello sessions: 2.0 queries on average, always contiguous;
- Webis-SMC-12 missions: 4.6 queries on average, 23% not contiguous (interleaved
  or resumed after another mission), 25% spanning more than a day;
- AOL sample: 1.28 rows per query (one row per click), 3.05 words per query,
  30-minute sessions of 2.1 queries, 48% of gaps above 30 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sessions.seeds import check_seed

Style = Literal["aol", "prompt"]


MAX_SIGMA = 5.0  # a log-normal spread: e^(5 x 4 sd) is already 5e8 times the median
MAX_USERS = 100_000_000
MAX_ROWS_PER_USER = 10_000_000


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

    users: int = field(metadata={"help": "number of users"})
    rows: int | None = field(default=None, metadata={"help": "total rows (none: each user's activity drawn alone)"})
    style: Style = field(
        default="aol", metadata={"help": "aol (an AOL TSV with clicks) or prompt (DiffusionDB metadata.parquet)"}
    )
    seed: int = field(default=0, metadata={"help": "random seed; the same settings give the same log"})
    # Activity per user: log-normal (heavy tail), median and spread in log space.
    user_rows_median: float = field(default=20.0, metadata={"help": "rows per user: median of the log-normal"})
    user_rows_sigma: float = field(
        default=1.4, metadata={"help": "rows per user: spread of the log-normal (log space)"}
    )
    # Bursts, missions, sessions.
    p_burst_end: float = field(
        default=0.42, metadata={"help": "probability that a burst of activity ends after a query"}
    )
    p_switch: float = field(
        default=0.10, metadata={"help": "probability of switching to the other mission of a burst, per query"}
    )
    p_nav: float = field(default=0.12, metadata={"help": "probability that a burst starts with a navigational mission"})
    p_continue: float = field(
        default=0.38, metadata={"help": "probability that a burst continues the user's latest mission"}
    )
    p_resume: float = field(default=0.10, metadata={"help": "probability that a burst resumes an older mission"})
    # Gaps: within a burst seconds to minutes (a slow minority: reading, comparing);
    # between bursts hours to days, never under `min_break_s`.
    within_gap_median_s: float = field(default=75.0, metadata={"help": "gap within a burst: median, seconds"})
    within_gap_sigma: float = field(default=1.1, metadata={"help": "gap within a burst: spread of the log-normal"})
    p_slow_gap: float = field(
        default=0.06, metadata={"help": "probability of a slow gap within a burst (reading, comparing)"}
    )
    slow_gap_median_s: float = field(default=420.0, metadata={"help": "slow gap: median, seconds"})
    between_gap_median_s: float = field(default=8 * 3600.0, metadata={"help": "gap between bursts: median, seconds"})
    between_gap_sigma: float = field(default=1.6, metadata={"help": "gap between bursts: spread of the log-normal"})
    min_break_s: float = field(default=20 * 60.0, metadata={"help": "gap between bursts: at least this many seconds"})
    start: datetime | None = field(
        default=None,
        metadata={"help": "first day of the log, ISO 8601 UTC (none: 2006-03-01 for aol, 2022-08-01 for prompt)"},
    )
    days: int | None = field(default=None, metadata={"help": "days the log spans (none: 92 for aol, 30 for prompt)"})
    # Rows per query: AOL has one row per click; a prompt log one row per image.
    click_probs: tuple[float, ...] = field(
        default=(0.48, 0.42, 0.07, 0.02, 0.01),
        metadata={"help": "aol: probabilities of 0, 1, 2, 3, 4 clicks on a query"},
    )
    image_probs: tuple[float, ...] = field(
        default=(0.0, 0.55, 0.2, 0.1, 0.15), metadata={"help": "prompt: probabilities of 0..4 images of a prompt"}
    )
    chunk_rows: int = field(
        default=1_000_000,
        metadata={"help": "rows generated (and held in memory) at a time; a heavier user is refused, never split"},
    )

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
            raise ValueError(f"--rows ({self.rows}) must be at least --users ({self.users}): every user has a row")
        if self.style not in ("aol", "prompt"):
            raise ValueError(f"style must be aol or prompt, not {self.style!r}")
        for name in ("p_burst_end", "p_switch", "p_nav", "p_continue", "p_resume", "p_slow_gap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if self.p_nav + self.p_continue + self.p_resume > 1.0:
            raise ValueError("p_nav + p_continue + p_resume must not exceed 1")
        check_seed(self.seed)
        for name in ("chunk_rows", "days"):
            if (value := getattr(self, name)) is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (when given), not {value}")
        for name in ("user_rows_median", "within_gap_median_s", "slow_gap_median_s", "between_gap_median_s"):
            if not 0.0 < getattr(self, name) < 1e9:
                raise ValueError(f"{name} must be positive (and under 1e9), not {getattr(self, name)}")
        for name in ("user_rows_sigma", "within_gap_sigma", "between_gap_sigma"):  # log-space spreads
            if not 0.0 <= getattr(self, name) <= MAX_SIGMA:
                raise ValueError(f"{name} must be between 0 and {MAX_SIGMA}, not {getattr(self, name)}")
        if not 0.0 <= self.min_break_s <= 30 * 86400:
            raise ValueError(f"min_break_s must be between 0 and 30 days (2,592,000 s), not {self.min_break_s}")
        if self.users > MAX_USERS or (self.rows or 0) > MAX_ROWS_PER_USER * self.users:
            raise ValueError(
                f"--users at most {MAX_USERS:,} and --rows at most {MAX_ROWS_PER_USER:,} a user on "
                "average (the generator holds each user's rows and every user's plan in memory)"
            )
        first, days = self.window
        # times a log's readers take (years up to 9999), with room for gaps
        if first.year > 9000:
            raise ValueError(f"start must be in year 9000 or before, not {first:%Y-%m-%d}")
        if days > 36_500:
            raise ValueError(f"days must be at most 36,500, not {days}")
        for name in ("click_probs", "image_probs"):
            probs = getattr(self, name)
            if not probs or min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
                raise ValueError(f"{name} must be probabilities of 0, 1, 2, ... rows adding up to 1, not {probs}")
