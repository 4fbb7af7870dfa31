"""Positives from co-clicked domains: does the session model learn only the cascade?

    .venv/bin/python benchmarks/click_positives.py --pairs out/aol-pairs \\
        --log ../shared/data/aol/aol-top1000-clicked.tsv.gz --output out/click-pairs

`sessionflow mine` labels a pair positive when the default cascade put both queries
in one session, so a session model trained on its pairs may learn the cascade's
lexical rules and nothing beyond them. Clicks are labels the cascade never saw: two
queries whose users clicked the same result domain ask for the same thing more
often than not, whatever their words (the click graph of Beeferman & Berger 2000 and
Craswell & Szummer 2007): `kysr-fm` / `kost-fm` / `100.3 kkbt fm`, or `20 amp dpdt
relay` / `25 amp dpdt contactor`.

This writes two pairs tables beside the `mine` output given (`--pairs`, the AOL
sample's pairs), each a Parquet file that `train session --pairs` reads:

- `mined+clicks.parquet`: every mined pair, and the click positives added to the
  train split;
- `clicks.parquet`: the train split's mined positives replaced by the click
  positives (its negatives, and the val and test splits, as mined).

Click positives come from the train split's users only (no validation or test user's
query is trained on): each pair of distinct queries (`sessions.text.near_duplicate_key`)
with a click on one domain, over domains clicked after 2 to `--max-queries` distinct
queries (hubs like wikipedia.org, clicked after 1,692 distinct queries, say little),
at most `--per-domain` pairs a domain, chosen by a seeded hash. The two queries may
be of different users. Then train and compare, as in docs/session-model.md:

    sessionflow train session --pairs out/click-pairs/clicks.parquet --model minilm-local \\
        --max-steps 200 --eval-every 100 --patience 2 --no-register --experiment clicks
    sessionflow evaluate pairs --model runs:/ID/model --pairs out/gold-gayo --split all
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from sessions.io import read_table
from sessions.pairs import PAIR_SCHEMA
from sessions.pipeline import load_events
from sessions.text import near_duplicate_key


def click_positives(events: pl.DataFrame, users: pl.Series, max_queries: int, per_domain: int) -> pl.DataFrame:
    """Positive pairs (`PAIR_SCHEMA`, kind `click`, split `train`) of distinct queries of
    `users` with a click on one domain (`click_url`), over domains clicked after 2 to
    `max_queries` distinct queries, at most `per_domain` pairs a domain (seeded)."""
    clicked = (
        events.filter(pl.col("user_id").is_in(users.implode()), pl.col("click_url").is_not_null())
        .with_columns(key=near_duplicate_key(pl.col("query")))
        .sort("row_id")
        .unique(["click_url", "key"], keep="first", maintain_order=True)
        .filter(pl.len().over("click_url").is_between(2, max_queries))
    )
    a = clicked.select("click_url", "user_id", query_a="query", ka="key")
    b = clicked.select("click_url", query_b="query", kb="key")
    pairs = a.join(b, on="click_url").filter(pl.col("ka") < pl.col("kb"))
    pairs = pairs.filter(pl.struct("ka", "kb").hash(seed=7).rank("ordinal").over("click_url") <= per_domain)
    return pairs.select(
        "query_a", "query_b", label=pl.lit(1, pl.Int8), kind=pl.lit("click"), user_id="user_id",
        split=pl.lit("train"),
    ).sort("query_a", "query_b")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="a `mine` output of the log (its pairs.parquet)")
    parser.add_argument("--log", required=True, help="the raw AOL log the pairs were mined from (its clicks)")
    parser.add_argument("--output", required=True, help="a directory for the two tables")
    parser.add_argument("--max-queries", type=int, default=30, help="domains clicked after at most this many queries")
    parser.add_argument("--per-domain", type=int, default=10, help="pairs a domain gives at most")
    args = parser.parse_args()
    mined = read_table(str(Path(args.pairs) / "pairs.parquet"))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    events, _ = load_events([args.log], "aol", str(out), columns=("row_id", "user_id", "query", "click_url"))
    train_users = mined.filter(pl.col("split") == "train")["user_id"].unique()
    clicks = click_positives(events, train_users, args.max_queries, args.per_domain).cast(PAIR_SCHEMA)
    mined_positives = (pl.col("split") == "train") & (pl.col("label") == 1)
    pl.concat([mined, clicks]).write_parquet(out / "mined+clicks.parquet")
    pl.concat([mined.filter(~mined_positives), clicks]).write_parquet(out / "clicks.parquet")
    print(f"{clicks.height:,} click positives from {clicks['user_id'].n_unique():,} train users; "
          f"{mined.filter(mined_positives).height:,} mined train positives")  # fmt: skip
    print(clicks.sample(10, seed=3).select("query_a", "query_b"))


if __name__ == "__main__":
    main()
