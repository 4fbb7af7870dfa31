"""Users (or texts) into buckets: the unit of parallel work that never splits a user.

Every engine (threads here, Ray tasks in `workflows/`) cuts a log by these buckets,
so a job that depends on which users meet (pair mining) gives the same result
whichever engine runs it.
"""

from __future__ import annotations

import polars as pl

BUCKET_SEED = 0x5E55


def user_bucket(user_id: pl.Expr, buckets: int) -> pl.Expr:
    """0 .. buckets-1 for each user (or any string): polars' seeded hash of its text, the
    same in every process; an integer id buckets as its decimal text does (`123` as
    `"123"`: a sessions table of one's own may hold AOL's integer AnonIDs). `sessionflow
    score` also partitions distinct query texts by it."""
    return (user_id.cast(pl.String).hash(seed=BUCKET_SEED) % buckets).cast(pl.Int32)
