"""The one rule for a random seed: every setting called `seed` (mining, segmentation's
classifier, cross-validation, synthetic logs, both trainings) is checked by it."""

from __future__ import annotations

# What every consumer of a seed takes, with room for the small offsets the jobs add
# (a draw's, a worker's rank): numpy's legacy RandomState and scikit-learn's
# random_state take 0 to 2**32 - 1, polars' hash seeds 0 to 2**64 - 1, torch any int64.
MAX_SEED = 2**31 - 1


def check_seed(seed: int, name: str = "seed") -> None:
    """ValueError in one line, naming the setting `name`, unless 0 <= `seed` <= `MAX_SEED`.

    A negative seed was taken and then failed deep in the work (`train session --seed
    -1`: polars' `hash(seed=-1)` raised OverflowError, a traceback), as a seed above
    2**32 did in scikit-learn's classifier."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_SEED:,}, not {seed}")
