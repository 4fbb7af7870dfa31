"""Labelled query pairs mined from sessions, for training a same-session model.

From `sessions.parquet` (`row_id, user_id, ts, query, session_id, session_seq,
mission_id`):

- positives (`kind` = `positive`, label 1): two distinct queries of one session;
  queries that differ only by case or spaces count as one, and a session gives at
  most `max_pairs_per_session` pairs (chosen at random, seeded);
- negatives (label 0), `negatives_per_positive` of them per positive, of kinds
  - `random`: a query of another user (in the same split);
  - `same_user`: the same user, another mission;
  - `lexical_hard`: a query that shares a term with it (character 3-gram Jaccard
    at least `min_hard_jaccard`) but is in another session, of the same or another user,
    and never a text pair that one user's mission holds both of (one need).
  A text pair (its two queries' near-duplicate keys, in either order) is in a
  split of a bucket (below) once: drawn from two sessions or users, or by two kinds,
  one copy stays, and a negative that equals a positive pair of its bucket is dropped.
  Across buckets one text pair can come twice, or carry both labels (on the AOL
  sample, segmented by the default cascade, 205 and 7 of 157,102 pairs).

Splits are by user (a seeded hash of `user_id`), so no user is in two splits, and a
pair's two queries come from users of the same split. Users are mined in
`partitions` buckets (`sessions.buckets`): the cross-user kinds (`random`,
`lexical_hard`) pair users of one bucket, quotas hold per bucket, and every engine
cuts the same buckets, so the same sessions and seed give the same pairs, locally or
on Ray. Everything random is a seeded hash.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import polars as pl

from sessions.buckets import user_bucket
from sessions.fields import is_blank
from sessions.lexicon import trigram_jaccard
from sessions.parallel import ordered_map
from sessions.seeds import check_seed
from sessions.storage import first_line
from sessions.text import near_duplicate_key, normalize, per_text, terms

KINDS = ("positive", "random", "same_user", "lexical_hard")
PAIR_SCHEMA: dict[str, pl.DataType] = {
    "query_a": pl.String(),
    "query_b": pl.String(),
    "label": pl.Int8(),
    "kind": pl.String(),
    "user_id": pl.String(),
    "split": pl.String(),
}


@dataclass(frozen=True)
class MiningConfig:
    """How many pairs of which kinds; see the module docstring.

    ValueError when the negative kinds' shares do not add up to 1, for a negative
    `negatives_per_positive`, a negative `train_share` or `val_share` or the two over 1
    together, `partitions` or `max_pairs_per_session` below 1, `max_queries_per_session`
    below 2, `min_hard_jaccard` outside [0, 1], or a seed outside 0..`sessions.seeds.MAX_SEED`.
    """

    negatives_per_positive: float = field(default=1.0, metadata={"help": "negatives per positive pair (1.0: 50:50)"})
    random_share: float = field(default=0.4, metadata={"help": "share of negatives from another user"})
    same_user_share: float = field(
        default=0.3,
        metadata={
            "help": "share of negatives from the same user's other missions (never two texts that one mission of "
            "their bucket holds)"
        },
    )
    lexical_hard_share: float = field(
        default=0.3, metadata={"help": "share of negatives sharing a term, from another session"}
    )
    max_pairs_per_session: int = field(default=10, metadata={"help": "positive pairs a session gives at most"})
    max_queries_per_session: int = field(
        default=50, metadata={"help": "distinct queries of a session considered at most"}
    )
    min_hard_jaccard: float = field(
        default=0.2, metadata={"help": "lexical_hard negatives: 3-gram Jaccard at least this"}
    )
    train_share: float = field(
        default=0.8, metadata={"help": "share of users in the train split (by a hash of user_id)"}
    )
    val_share: float = field(default=0.1, metadata={"help": "share of users in the val split; the rest is test"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice"})
    partitions: int = field(
        default=8, metadata={"help": "buckets of users mined one at a time (the same pairs with either engine)"}
    )

    def __post_init__(self) -> None:
        shares = self.random_share + self.same_user_share + self.lexical_hard_share
        if abs(shares - 1.0) > 1e-9:
            raise ValueError(
                f"the negative kinds' shares random_share + same_user_share + lexical_hard_share "
                f"must add up to 1, not {shares:g}"
            )
        if self.negatives_per_positive < 0:
            raise ValueError("negatives_per_positive must not be negative")
        if min(self.train_share, self.val_share) < 0 or self.train_share + self.val_share > 1:
            raise ValueError("train_share and val_share must be shares adding up to at most 1")
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        if self.max_pairs_per_session < 1 or self.max_queries_per_session < 2:
            raise ValueError("max_pairs_per_session must be at least 1 and max_queries_per_session at least 2")
        if not 0.0 <= self.min_hard_jaccard <= 1.0:
            raise ValueError("min_hard_jaccard must be in [0, 1]")
        check_seed(self.seed)

    def to_dict(self) -> dict:
        """The config as JSON-ready values."""
        return asdict(self)


def split_of(user: pl.Expr, cfg: MiningConfig) -> pl.Expr:
    """train / val / test by a seeded hash of the user id."""
    bucket = (user.hash(seed=cfg.seed) % 10_000) / 10_000
    return (
        pl.when(bucket < cfg.train_share)
        .then(pl.lit("train"))
        .when(bucket < cfg.train_share + cfg.val_share)
        .then(pl.lit("val"))
        .otherwise(pl.lit("test"))
    )


def _rand(*cols: str, seed: int) -> pl.Expr:
    return pl.struct(*cols).hash(seed=seed)


SESSION = ("user_id", "session_id")  # a session: its user's (ids numbered per user, 0, 1, ..., as many tools write)


def session_start(columns: tuple[str, ...] = SESSION) -> pl.Expr:
    """True at the first row of each session, of rows in session order: where any of
    `columns` (a session's key, `SESSION`) differs from the row before, a missing value
    from a present one too; the first row is one."""
    return pl.any_horizontal(pl.col(column).ne_missing(pl.col(column).shift(1)) for column in columns)


def distinct_queries(sessions: pl.DataFrame, cfg: MiningConfig) -> pl.DataFrame:
    """One row per distinct query (by near-duplicate key) of each session (`SESSION`), in
    time order."""
    return (
        sessions.lazy()
        .sort("user_id", "ts", "row_id")
        .with_columns(key=near_duplicate_key(pl.col("query")))
        .unique([*SESSION, "key"], keep="first", maintain_order=True)
        .with_columns(pos=pl.int_range(pl.len()).over(SESSION), split=split_of(pl.col("user_id"), cfg))
        .filter(pl.col("pos") < cfg.max_queries_per_session)
        .collect()
    )


# the columns `segment` writes and mining reads
MINING_INPUT = ("row_id", "user_id", "ts", "query", "session_id", "mission_id")


def check_sessions(sessions: pl.LazyFrame, where: str, reader: str = "mining") -> None:
    """Check a sessions table before mining it (`MINING_INPUT`, as `segment` writes them),
    or before `reader` (annotate) reads it:
    ValueError in one line, naming `where`, for a column missing or of another kind, a table
    whose parts cannot be read as one, or rows without a row_id, user, time, query, session
    or mission, with a blank one of these texts (the ingest rule, `is_blank`), or with a
    row_id another row has. Mining such rows went on quietly (null texts in positives,
    every user-less row one user) or ended in polars' traceback; `segment` writes none,
    so a table that holds them was written by something else. One pass over the columns."""
    schema = sessions.collect_schema()
    missing = [name for name in MINING_INPUT if name not in schema]
    if missing:
        raise ValueError(f"{where}: no column {', '.join(missing)}: {reader} reads the sessions `segment` writes "
                         f"({', '.join(MINING_INPUT)})")  # fmt: skip
    texts = ("user_id", "query", "session_id", "mission_id")
    # integers (AOL's AnonIDs; `0, 1, ...` per user, as pandas writes them) are read as their text, and so are
    # categories (pandas' `category`, a dictionary column: a breaker's user_id was refused as Categorical)
    numbered = ("user_id", "session_id", "mission_id")
    wrong = [f"{name} is {schema[name]}" for name in texts
             if not isinstance(schema[name], pl.String | pl.Categorical | pl.Enum)
             and not (name in numbered and schema[name].is_integer())]  # fmt: skip
    wrong += [f"ts is {schema['ts']}"] if not isinstance(schema["ts"], pl.Datetime) else []
    wrong += [f"row_id is {schema['row_id']}"] if not schema["row_id"].is_integer() else []
    if wrong:
        raise ValueError(f"{where}: {', '.join(wrong)}: {reader} reads the sessions `segment` writes (texts, a time; "
                         "integer ids are read as their text)")  # fmt: skip
    try:
        counts = sessions.select(
            *[pl.col(name).null_count().alias(f"without {name}") for name in ("row_id", "ts", *texts)],
            *[(is_blank(pl.col(name).cast(pl.String)) & pl.col(name).is_not_null()).sum().alias(f"with a blank {name}")
              for name in texts],
            # annotate's rows are joined back by it (a table of every row_id 0 was annotated without a word)
            (pl.col("row_id").is_duplicated() & pl.col("row_id").is_not_null()).sum().alias("with a shared row_id"),
        ).collect().row(0, named=True)  # fmt: skip
    except pl.exceptions.PolarsError as err:  # a part of the table unlike the others, or damaged
        raise ValueError(f"{where}: cannot be read as one table ({first_line(err)}); segment the log again") from None
    bad = [f"{n:,} rows {what}" for what, n in counts.items() if n]
    if bad:
        raise ValueError(f"{where}: {', '.join(bad)}: `segment` writes none; segment the log again")


def mine_pairs(sessions: pl.DataFrame, cfg: MiningConfig) -> pl.DataFrame:
    """Positive and negative pairs (`PAIR_SCHEMA`), ordered by split, kind, user, texts."""
    bucketed = sessions.with_columns(_bucket=user_bucket(pl.col("user_id"), cfg.partitions))
    buckets = bucketed["_bucket"].unique().sort().to_list() or [0]  # those holding users: there may be fewer
    parts = ordered_map(lambda b: mine_bucket(bucketed.filter(pl.col("_bucket") == b), cfg), buckets)
    return order_pairs(pl.concat(list(parts)))


def mined_kind(kind: pl.Expr) -> pl.Expr:
    """A pair's kind (text) as `mine` names it: spaces around it dropped, and a kind that
    reads as one of `KINDS` but for case, spaces, hyphens or underscores (`"Same User"`,
    `"lexical-hard"`, `"same__user"`) written as that one, so that a table of one's own draws its hard
    negatives as `mine`'s (before, `"Same User"` was drawn as a random one without a
    word); any other kind stays as written. Null stays null."""
    kind = kind.str.strip_chars()
    folded = kind.str.to_lowercase().str.replace_all(r"[\s\-_]+", "_")
    return pl.when(folded.is_in(KINDS)).then(folded).otherwise(kind)


def order_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """The canonical order of a pairs table: split, kind (`KINDS`' order, then any other
    kind a table of one's own names, by its text: `"weird"` was polars' traceback in `train
    session`, the training breaker's find), user, texts."""
    kind = pl.col("kind").replace_strict({k: i for i, k in enumerate(KINDS)}, default=len(KINDS), return_dtype=pl.Int8)
    return pairs.sort("split", kind, "kind", "user_id", "query_a", "query_b")


def mine_bucket(sessions: pl.DataFrame, cfg: MiningConfig) -> pl.DataFrame:
    """The pairs of one bucket of users (`PAIR_SCHEMA`, unordered); user, session and
    mission ids written as integers, and categories, are read as their text."""
    sessions = sessions.with_columns(pl.col("user_id", "session_id", "mission_id", "query").cast(pl.String))
    q = distinct_queries(sessions, cfg)
    positives = _once(_positives(q, cfg))
    positive_texts = positives.select("_x", "_y").unique()
    held = sessions.select("user_id", "mission_id", key=near_duplicate_key(pl.col("query"))).unique()
    drawn = [pl.DataFrame(schema={"split": pl.String, "_x": pl.String, "_y": pl.String})]

    def usable(candidates: pl.DataFrame, of_one_user: bool = True) -> pl.DataFrame:
        """Once each, never a text pair positive in the bucket, nor (a pair of one user's
        texts, or of one term) one that a mission of the bucket holds both of
        (`one_need`), nor one drawn already in its split."""
        once = _once(candidates).join(positive_texts, on=["_x", "_y"], how="anti")
        once = once.join(one_need(once, held), on=["_x", "_y"], how="anti") if of_one_user else once
        return once.join(pl.concat(drawn), on=["split", "_x", "_y"], how="anti")

    quota = positives.group_by("split").len().select("split", n=_quota(pl.col("len"), cfg))
    negatives = []
    for share, kind, candidates in (
        (cfg.same_user_share, "same_user", _same_user),
        (cfg.lexical_hard_share, "lexical_hard", _lexical_hard),
    ):
        negatives.append(_take(usable(candidates(q, cfg)), quota, share, kind, cfg))
        drawn.append(negatives[-1].select("split", *_unordered("ka", "kb")))
    taken = pl.concat(negatives).group_by("split").len()
    remaining = quota.join(taken, on="split", how="left").select("split", n=pl.col("n") - pl.col("len").fill_null(0))
    # random fills what others lack; two users' texts, whose pairs a mission seldom holds: not searched (`one_need`)
    negatives.append(_take(usable(_random(q, cfg), of_one_user=False), remaining, 1.0, "random", cfg))
    pairs = pl.concat([positives.with_columns(kind=pl.lit("positive"), label=pl.lit(1)), *negatives], how="diagonal")
    return pairs.select([pl.col(c).cast(t) for c, t in PAIR_SCHEMA.items()])


def _once(candidates: pl.DataFrame) -> pl.DataFrame:
    """Each text pair of `candidates` once per split, whatever its order (`_x`, `_y`: its
    two near-duplicate keys, ordered): one from two sessions or users of a bucket, or
    drawn both ways round, would weigh twice in training and evaluation. Which copy
    stays (its user) does not depend on the order the rows came in."""
    return (
        candidates.with_columns(_unordered("ka", "kb"))
        .sort("split", "_x", "_y", "user_id", "query_a", "query_b")
        .unique(["split", "_x", "_y"], keep="first", maintain_order=True)
    )


def one_need(candidates: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """The text pairs of `candidates` (`_x`, `_y`: near-duplicate keys) that one mission
    holds both of, whoever drew them: `held` (user_id, mission_id, key), the distinct
    texts of each mission. Such a pair is one need, no negative of any kind: a text is
    often searched in several missions, so a same-user pair drawn from two missions may
    be held together by a third (18 of about 8,150 same_user negatives of a 150k-row AOL
    slice, one of them two texts of one session: the new user's find), and the
    positives, at most `max_pairs_per_session` a session, need not hold it. Searched
    from the candidates, so a large mission's texts are never paired all with all; not
    for random negatives, two users' texts, the most numerous candidates (the search
    cost more than the rest of mining the AOL sample before the missions holding one
    candidate text alone were left out), none of whose 31,417 drawn there is held by
    one mission of its user."""
    pairs = candidates.select("_x", "_y").unique()
    texts = pl.concat([pairs["_x"], pairs["_y"]]).unique()
    held = held.filter(pl.col("key").is_in(texts.implode()))
    held = held.filter(pl.len().over("user_id", "mission_id") > 1)  # a mission holding one of them holds no pair
    return (
        pairs.join(held, left_on="_x", right_on="key")
        .join(held, left_on=["_y", "user_id", "mission_id"], right_on=["key", "user_id", "mission_id"], how="semi")
        .select("_x", "_y")
        .unique()
    )


def _quota(positives: pl.Expr, cfg: MiningConfig) -> pl.Expr:
    """The negatives a bucket's split asks for, given its positives."""
    return (positives * cfg.negatives_per_positive).round()


def negatives_short(pairs: pl.DataFrame, cfg: MiningConfig) -> dict[str, int]:
    """Split -> the negatives `pairs` (`mine_pairs`' table, mined with `cfg`) holds
    fewer than `negatives_per_positive` asks, summed over the buckets of users; splits
    with none short are left out. Quotas hold per bucket, and the cross-user kinds pair
    users of one bucket: in a small log a bucket may hold one user of a split, who has
    no other user to draw a random negative from, and what the other kinds lack then
    stays short."""
    per_bucket = pairs.group_by(user_bucket(pl.col("user_id"), cfg.partitions).alias("bucket"), "split").agg(
        asked=_quota(pl.col("label").sum(), cfg), drawn=(pl.col("label") == 0).sum()
    )
    short = per_bucket.group_by("split").agg((pl.col("asked") - pl.col("drawn")).clip(0).sum().cast(pl.Int64))
    return {split: n for split, n in short.sort("split").iter_rows() if n}


def empty_splits(pairs: pl.DataFrame, cfg: MiningConfig) -> list[str]:
    """The splits `cfg` gives a share of the users (train, val, test) that hold no pair of
    `pairs` (`mine_pairs`' table, mined with `cfg`): in a small log the hash of a few user
    ids may deal none to a split, which `train session` (val) or `evaluate pairs` (test)
    then finds empty."""
    shares = {"train": cfg.train_share, "val": cfg.val_share, "test": 1 - cfg.train_share - cfg.val_share}
    held = set(pairs["split"].unique().to_list())
    return [split for split, share in shares.items() if share > 1e-9 and split not in held]


def _unordered(a: str, b: str) -> list[pl.Expr]:
    return [pl.min_horizontal(a, b).alias("_x"), pl.max_horizontal(a, b).alias("_y")]


def _positives(q: pl.DataFrame, cfg: MiningConfig) -> pl.DataFrame:
    a = q.select("session_id", "user_id", "split", "pos", query_a="query", ka="key")
    b = q.select("session_id", "user_id", "pos", query_b="query", kb="key")
    pairs = a.join(b, on=SESSION).filter(pl.col("pos") < pl.col("pos_right"))
    return (
        pairs.with_columns(r=_rand("ka", "kb", "session_id", seed=cfg.seed))
        .filter(pl.col("r").rank("ordinal").over(SESSION) <= cfg.max_pairs_per_session)
        .select("query_a", "query_b", "ka", "kb", "user_id", "split")
    )


def _same_user(q: pl.DataFrame, cfg: MiningConfig) -> pl.DataFrame:
    """Each query with the next one, in a seeded shuffle of its user's queries, that is
    from another mission (and `mine_bucket` leaves out two texts that a third mission
    holds both of, `one_need`)."""
    shuffled = q.sort("user_id", _rand("key", "session_id", seed=cfg.seed + 1))
    return shuffled.select(
        "user_id", "split", query_a="query", ka="key", ma="mission_id",
        query_b=pl.col("query").shift(-1).over("user_id"), kb=pl.col("key").shift(-1).over("user_id"),
        mb=pl.col("mission_id").shift(-1).over("user_id"),
    ).filter(pl.col("mb").is_not_null() & (pl.col("ma") != pl.col("mb")) & (pl.col("ka") != pl.col("kb")))  # fmt: skip


LEXICAL_HARD_MAX_BYTES = 4096


def _lexical_hard(q: pl.DataFrame, cfg: MiningConfig) -> pl.DataFrame:
    """Queries sharing a term, from different sessions, close in 3-grams (`mine_bucket`
    then leaves out two texts that one mission holds both of, `one_need`: on the AOL
    sample 8,181 of the 23,567 drawn were).

    A row per (query, term) carries the query's row number, not its text, and a query
    of more than `LEXICAL_HARD_MAX_BYTES` (a pasted document, not a query: its terms
    times its key would be the table's size, 4.5 TB for 3 MB of one repeated word)
    proposes none; it is still mined for positives and other negatives."""
    norm = per_text(normalize, q["query"])
    by_term = (
        q.select("user_id", "split", "session_id", "key")
        .with_row_index("i")
        .with_columns(term=per_text(terms, norm))
        .filter(pl.col("key").str.len_bytes() <= LEXICAL_HARD_MAX_BYTES)
        .explode("term")
        .drop_nulls("term")
        .sort("split", "term", _rand("key", "term", seed=cfg.seed + 2))
    )
    nxt = {c: pl.col(c).shift(-1).over("split", "term") for c in ("user_id", "session_id", "i", "key")}
    cand = by_term.select(
        "user_id", "split", ia="i", ka="key", ib=nxt["i"], kb=nxt["key"], sa="session_id", sb=nxt["session_id"],
        ub=nxt["user_id"],
    ).filter(pl.col("sb").is_not_null() & ((pl.col("sa") != pl.col("sb")) | (pl.col("user_id") != pl.col("ub")))
             & (pl.col("ka") != pl.col("kb"))).drop("ub")  # fmt: skip
    cand = cand.unique(["ka", "kb"], keep="first", maintain_order=True)
    texts = q["query"]
    cand = cand.with_columns(query_a=texts.gather(cand["ia"]), query_b=texts.gather(cand["ib"])).drop("ia", "ib")
    return cand.filter(trigram_jaccard(cand["query_a"], cand["query_b"]) >= cfg.min_hard_jaccard)


RANDOM_DRAWS = 3  # random negative candidates a query: the most that kind gives


def _random(q: pl.DataFrame, cfg: MiningConfig, draws: int = RANDOM_DRAWS) -> pl.DataFrame:
    """Each query with `draws` queries of other users, all in one split (seeded shuffles)."""
    a = q.sort("split", _rand("key", "session_id", seed=cfg.seed + 3)).select(
        "user_id", "split", query_a="query", ka="key", i=pl.int_range(pl.len()).over("split")
    )
    candidates = []
    for draw in range(draws):
        b = q.sort("split", _rand("key", "session_id", seed=cfg.seed + 4 + draw)).select(
            "split", ub="user_id", query_b="query", kb="key", i=pl.int_range(pl.len()).over("split")
        )
        candidates.append(a.join(b, on=["split", "i"]))
    pairs = pl.concat(candidates).unique(["ka", "kb"], keep="first", maintain_order=True)
    return pairs.filter((pl.col("user_id") != pl.col("ub")) & (pl.col("ka") != pl.col("kb")))


def _take(candidates: pl.DataFrame, quota: pl.DataFrame, share: float, kind: str, cfg: MiningConfig) -> pl.DataFrame:
    """A seeded sample of candidates: `share` of each split's quota."""
    limits = quota.select("split", limit=(pl.col("n") * share).round().cast(pl.Int64))
    return (
        candidates.join(limits, on="split")
        .with_columns(r=_rand("ka", "kb", seed=cfg.seed + 5))
        .filter(pl.col("r").rank("ordinal").over("split") <= pl.col("limit"))
        .select("query_a", "query_b", "ka", "kb", "user_id", "split")
        .with_columns(kind=pl.lit(kind), label=pl.lit(0))
    )


TRIPLET_SCHEMA: dict[str, pl.DataType] = {
    "anchor": pl.String(),
    "positive": pl.String(),
    "negative": pl.String(),
    "anchor_id": pl.Int64(),
    "positive_id": pl.Int64(),
    "negative_id": pl.Int64(),
    "user_id": pl.String(),
}
HARD_KINDS = ("same_user", "lexical_hard")


def text_id(query: pl.Expr) -> pl.Expr:
    """An integer id per text, equal for texts that differ only by case or spaces."""
    return near_duplicate_key(query).hash(seed=0).reinterpret(signed=True)


def triplets(pairs: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Training examples (anchor, positive, negative) from labelled pairs (`TRIPLET_SCHEMA`).

    Each positive pair gives one example, its two queries in a seeded random order.
    The negative is a hard one (`same_user` or `lexical_hard`) whose pair contains the
    anchor's text when there is one, else a seeded random negative pair's query of the
    same split; examples come in a seeded random order.
    """
    pos = pairs.filter(pl.col("label") == 1)
    swap = (_rand("query_a", "query_b", seed=seed) % 2) == 1
    pos = pos.select(
        anchor=pl.when(swap).then("query_b").otherwise("query_a"),
        positive=pl.when(swap).then("query_a").otherwise("query_b"),
        user_id="user_id",
        split="split",
    ).with_columns(key=near_duplicate_key(pl.col("anchor")))
    neg = pairs.filter((pl.col("label") == 0) & pl.col("kind").is_in(HARD_KINDS))
    hard = (
        pl.concat(
            [
                neg.select(key=near_duplicate_key(pl.col("query_a")), negative="query_b"),
                neg.select(key=near_duplicate_key(pl.col("query_b")), negative="query_a"),
            ]
        )
        .sort("key", _rand("key", "negative", seed=seed + 1))
        .unique("key", keep="first", maintain_order=True)
    )
    examples = pos.join(hard, on="key", how="left")
    pool = (
        pairs.filter(pl.col("label") == 0)
        .select("split", negative="query_b")
        .sort("split", _rand("negative", seed=seed + 2))
        .with_columns(i=pl.int_range(pl.len()).over("split"), n=pl.len().over("split"))
    )
    sizes = pool.group_by("split").agg(n=pl.first("n"))
    missing = (
        examples.filter(pl.col("negative").is_null())
        .drop("negative")
        .join(sizes, on="split", how="left")
        .with_columns(i=(_rand("anchor", "positive", seed=seed + 3) % pl.col("n").fill_null(1)).cast(pl.Int64))
        .join(pool.select("split", "i", "negative"), on=["split", "i"], how="left")
        .drop("i", "n")
    )
    examples = pl.concat([examples.filter(pl.col("negative").is_not_null()), missing], how="diagonal")
    examples = examples.drop_nulls("negative").sort(_rand("anchor", "positive", seed=seed + 4))
    return examples.select(
        "anchor", "positive", "negative",
        anchor_id=text_id(pl.col("anchor")), positive_id=text_id(pl.col("positive")),
        negative_id=text_id(pl.col("negative")), user_id="user_id",
    )  # fmt: skip


GOLD_LEVELS = ("session", "mission")


def gold_pairs(
    events: pl.DataFrame, level: str = "session", seed: int = 0, max_pairs_per_session: int = 10
) -> pl.DataFrame:
    """Evaluation pairs from ground-truth labels (`gold_session` or `gold_mission`), all in split `test`.

    Positives: distinct queries of one gold session (or mission); negatives, as many:
    half the same user's queries of other gold sessions (missions), half other users'.
    The mining rules of `mine_pairs`, with the gold labels as sessions and missions.
    ValueError for a `level` other than session or mission, or events without a
    `gold_<level>` value.
    """
    if level not in GOLD_LEVELS:
        raise ValueError(f"level {level!r}: choose session or mission")
    label = f"gold_{level}"
    if label not in events.columns or events[label].null_count() == events.height:
        raise ValueError(f"these events carry no {label} labels")
    group = pl.col("user_id") + "/" + pl.col(label)  # the draws' seed; a group is its user's (`SESSION`) all the same
    sessions = events.filter(pl.col(label).is_not_null()).with_columns(session_id=group, mission_id=group)
    cfg = gold_mining(seed, max_pairs_per_session)
    return mine_pairs(sessions.select("row_id", "user_id", "ts", "query", "session_id", "mission_id"), cfg)


def gold_mining(seed: int = 0, max_pairs_per_session: int = 10) -> MiningConfig:
    """The mining settings `gold_pairs` mines by: negatives half other users' queries, half
    the same user's other gold groups (no `lexical_hard`: a lexical rule would pick the
    pairs a lexical baseline gets right), every user in split `test`, one partition."""
    return MiningConfig(
        random_share=0.5, same_user_share=0.5, lexical_hard_share=0.0, train_share=0.0, val_share=0.0,
        seed=seed, max_pairs_per_session=max_pairs_per_session, partitions=1,
    )  # fmt: skip
