"""Sessions: where a user's stream of queries breaks.

Per user, events are ordered by (ts, row_id) and each consecutive pair is either the
same session or a break. The methods (`SegmentConfig.method`):

- `time`: a break when the gap exceeds `gap_minutes` (30 by default; 26 after
  Lucchese et al. 2011);
- `lexical`: a break unless the query is lexically close to the previous one (term
  overlap >= `min_overlap` or character 3-gram Jaccard >= `min_jaccard`, see
  `sessions.text`) or to the session so far (at least `min_containment` of its
  3-grams occur in the session's queries), whatever the gap;
- `cascade` (after Hagen et al. 2013): a gap up to `join_within_s` joins (the same
  time stamp: several clicks on one query), a gap over `break_after_minutes` breaks,
  and in between the lexical evidence decides; with a `PairScorer` (the learned
  session model), a pair that lexical evidence would break is joined when the
  scorer's same-session probability is at least `min_p_same` (a further stage of the
  cascade: the model sees only the cases the cheap evidence leaves open);
- `learned`: a model decides every consecutive pair, whatever the gap: a
  `SessionClassifier` (the same-session classifier of `sessions.learned`, trained
  on gold sessions: `sessionflow train segmenter`) with its own threshold, or a
  `PairScorer` (the session model) with a break below `min_p_same`.

"The session so far" is the session the pairwise decisions made up to the previous
query: a query those decisions separate is joined back when at least
`min_containment` of its 3-grams occur in one of that session's last
`so_far_queries` distinct queries (one refinement pass, vectorised). Distinct by the
lexicon's text id, so a query repeated, or a row duplicated (a log's row per click or
per image), takes one place however often it occurs; queries without 3-grams take none.

Defaults were chosen on the development users of Gayo-Avello 2009 (sessions), over
a grid, and checked by 5-fold cross-validation over users (`docs/segmentation.md`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, TypeVar, get_args, runtime_checkable

import numpy as np
import polars as pl

from sessions.fields import NOTHING, is_blank
from sessions.lexicon import Closeness, Lexicon, encode
from sessions.parallel import default_workers, ordered_map
from sessions.schema import TIMESTAMP

Method = Literal["time", "lexical", "cascade", "learned"]
"""How a user's consecutive queries are cut into sessions (the rules: `SegmentConfig`);
`learned` alone needs a model, the others are rules over time and text."""
METHODS: tuple[str, ...] = get_args(Method)
NEEDS_MODEL: tuple[str, ...] = ("learned",)
SESSION_COLUMNS = ("row_id", "user_id", "ts", "query", "session_id", "session_seq")
T = TypeVar("T")


class PairScorer(Protocol):
    """Same-session probability for pairs of queries (a[i], b[i]), as a float array:
    a, b (n,) String series -> (n,) p(same session) in [0, 1], or NaN for a pair it cannot
    judge (a query the model cannot read: `models.encoder.unread_texts`), which lexical
    evidence then decides. `segment` calls it from several threads at once."""

    def __call__(self, a: pl.Series, b: pl.Series) -> np.ndarray: ...


@runtime_checkable
class SessionClassifier(Protocol):
    """A model of consecutive pairs that decides where sessions start (`sessions.learned.
    SameSessionClassifier`): it sees the gap and the session so far, not the texts alone."""

    def session_breaks(self, ordered: pl.DataFrame, lexicon: Lexicon | None = None) -> np.ndarray:
        """(n,) bool for rows in `user_time_order` (row_id, user_id, ts, query): True
        where a session starts, every user's first row included."""
        ...


@dataclass(frozen=True)
class SegmentConfig:
    """How sessions are cut; see the module docstring for each method.

    ValueError for an unknown method, a NaN or negative gap (`gap_minutes`,
    `join_within_s`, `break_after_minutes`), `so_far_queries` below 1, `join_within_s`
    over `break_after_minutes` x 60 s, or a threshold (`min_*`) outside [0, 1].
    """

    method: Method = field(
        default="cascade",
        metadata={
            "help": "how sessions are cut",
            "choice_help": {
                "time": "a gap",
                "lexical": "lexical evidence alone",
                "cascade": "Hagen et al. 2013: time rules, then lexical evidence",
                "learned": "a model decides every pair",
            },
        },
    )
    gap_minutes: float = field(default=30.0, metadata={"help": "time: break after a gap of this many minutes"})
    join_within_s: float = field(default=0.0, metadata={"help": "cascade: gaps up to this many seconds join"})
    break_after_minutes: float = field(default=360.0, metadata={"help": "cascade: gaps over this many minutes break"})
    min_overlap: float = field(
        default=0.5, metadata={"help": "lexical evidence: term overlap with the previous query at least this"}
    )
    min_jaccard: float = field(
        default=0.1,
        metadata={"help": "lexical evidence: character 3-gram Jaccard with the previous query at least this"},
    )
    min_containment: float = field(
        default=0.6, metadata={"help": "lexical evidence: share of the query's 3-grams found in the session so far"}
    )
    so_far_queries: int = field(
        default=5, metadata={"help": "lexical evidence: the session so far is its last this many distinct queries"}
    )
    min_p_same: float = field(
        default=0.5,
        metadata={
            "help": "with a session model, learned and cascade: same session when p_same is at least this "
            "(a segmenter model has its own threshold)"
        },
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        for name in ("gap_minutes", "join_within_s", "break_after_minutes"):
            if math.isnan(getattr(self, name)):  # no gap compares with NaN: it would never break
                raise ValueError(f"{name} must be a number, not NaN")
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.so_far_queries < 1:
            raise ValueError("so_far_queries must be at least 1")
        if self.join_within_s > self.break_after_minutes * 60:
            raise ValueError("join_within_s must not exceed break_after_minutes")
        for name in ("min_overlap", "min_jaccard", "min_containment", "min_p_same"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")

    @property
    def closeness(self) -> Closeness:
        """The thresholds of lexical evidence against the previous query (`min_overlap`, `min_jaccard`)."""
        return Closeness(min_overlap=self.min_overlap, min_jaccard=self.min_jaccard)

    def to_dict(self) -> dict:
        """The config as JSON-ready values (a report's `config`)."""
        return asdict(self)


def segment(
    events: pl.DataFrame | pl.LazyFrame, cfg: SegmentConfig, scorer: PairScorer | SessionClassifier | None = None
) -> pl.DataFrame:
    """Sessions of canonical events (`segment_input`): `SESSION_COLUMNS`, each user's
    events together in time order (users in order of first appearance when the input
    needs sorting).

    `session_id` is `<user_id>/<n>` with n counting the user's sessions from 0, so it
    is unique over the whole output; `session_seq` is the position in the session.
    Chunks of whole users are segmented side by side on threads (`map_user_chunks`),
    so a `scorer` is called from several threads at once. ValueError as
    `segment_input` and `segment_ordered`.
    """
    check_model(cfg, scorer)
    ordered = user_time_order(segment_input(events))
    # the chunks' shared lexicon, where `_breaks` reads one (lexical evidence, a segmenter model's features)
    lexical = cfg.method in ("lexical", "cascade") or isinstance(scorer, SessionClassifier)
    lexicon = Lexicon(ordered["query"]) if lexical else None
    parts = list(map_user_chunks(lambda part, lex: segment_ordered(part, cfg, scorer, lex), ordered, lexicon))
    return pl.concat(parts) if parts else segment_ordered(ordered, cfg, scorer, lexicon)


SEGMENT_INPUT: dict[str, str] = {  # the columns segmentation reads, and what each must hold
    "row_id": "integers",
    "user_id": "text or integers",
    "ts": "datetimes, UTC",
    "query": "text",
}


def utc_times(ts: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """`ts`, a column of `dtype` (a Datetime, or nulls alone), as `TIMESTAMP` (microseconds,
    UTC), as `ingest` writes times: times without a zone are taken as UTC (the instants
    kept, the zone named), times in another zone converted to it."""
    if not isinstance(dtype, pl.Datetime):
        return ts.cast(TIMESTAMP)  # nulls only: no rows, or refused
    zoned = ts.dt.replace_time_zone("UTC") if dtype.time_zone is None else ts.dt.convert_time_zone("UTC")
    return zoned.cast(TIMESTAMP)


def segment_input(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The columns of `events` that segmentation reads (`SEGMENT_INPUT`: row_id Int64,
    user_id String, ts Datetime, query String), as the canonical events of `sessionflow
    ingest` hold them; user ids of integers, or a Categorical, are taken as their text,
    and times as UTC in microseconds (`utc_times`: a Datetime without a zone is taken
    as UTC, one in another zone converted), so that the sessions are those `segment`
    writes, whatever the frame's zone.

    ValueError in one line for anything else: not a polars frame (a pandas one:
    `pl.from_pandas`), a column missing or of another type (float user ids are refused:
    1.0 would be the user "1.0", where `ingest` reads "1"; text times: read them with
    `sessions.times.to_utc`; a column of nulls alone, of any type, is taken), or a row
    without a row_id, user_id or ts, or with a blank user (segmentation cannot place
    it; `ingest` rejects such records with their reason)."""
    if not isinstance(events, pl.DataFrame | pl.LazyFrame):
        kind = f"{type(events).__module__}.{type(events).__qualname__}"
        raise ValueError(f"events must be a polars DataFrame or LazyFrame, not {kind} (pl.from_pandas converts one)")
    schema = events.lazy().collect_schema()
    need = ", ".join(f"{name} ({kind})" for name, kind in SEGMENT_INPUT.items())
    missing = [name for name in SEGMENT_INPUT if name not in schema]
    if missing:
        raise ValueError(f"events lack {', '.join(missing)}: segmentation reads {need}")
    fits = {
        "row_id": schema["row_id"].is_integer(),
        "user_id": schema["user_id"].is_integer() or schema["user_id"] in (pl.String, pl.Categorical, pl.Enum),
        "ts": isinstance(schema["ts"], pl.Datetime),
        "query": schema["query"] in (pl.String, pl.Categorical, pl.Enum),
    }
    wrong = [f"{name} is {schema[name]}" for name, ok in fits.items() if not ok and schema[name] != pl.Null]
    if wrong:
        raise ValueError(f"events' {', '.join(wrong)}: segmentation reads {need}")
    try:
        frame = (
            events.lazy()
            .select(
                pl.col("row_id").cast(pl.Int64),
                pl.col("user_id").cast(pl.String),
                utc_times(pl.col("ts"), schema["ts"]),
                pl.col("query").cast(pl.String),
            )
            .collect()
        )
    except pl.exceptions.InvalidOperationError:  # the one cast that can fail: an unsigned id past 2**63 - 1
        raise ValueError(f"events' row_id holds values beyond Int64 ({schema['row_id']}): number the rows") from None
    unplaced = [f"{n:,} without {name}" for name in ("row_id", "user_id", "ts") if (n := frame[name].null_count())]
    user = pl.col("user_id")
    maybe = frame.filter(user.str.contains(f"^{NOTHING}") | (user.str.len_bytes() == 0))  # cheap: any blank one is here
    if blank := maybe.select(is_blank(user).sum()).item():
        unplaced.append(f"{blank:,} with a blank user_id")  # ingest rejects them as empty_user
    if unplaced:
        raise ValueError(f"events: {', '.join(unplaced)}; segmentation cannot place a row without them")
    return frame


def segment_ordered(
    df: pl.DataFrame,
    cfg: SegmentConfig,
    scorer: PairScorer | SessionClassifier | None = None,
    lexicon: Lexicon | None = None,
) -> pl.DataFrame:
    """`segment` of rows already in `user_time_order`, in one piece, in this thread
    (`lexicon`: of their queries, if the caller has one to share). ValueError as
    `check_model`."""
    check_model(cfg, scorer)
    df = df.with_columns(
        first=(pl.col("user_id") != pl.col("user_id").shift()).fill_null(True),
        gap_s=pl.col("ts").diff().dt.total_seconds(fractional=True),
    )
    breaks = _breaks(df, cfg, scorer, lexicon)
    return number_sessions(df.with_columns(_break=pl.Series(breaks))).select(SESSION_COLUMNS)


def check_model(cfg: SegmentConfig, scorer: PairScorer | SessionClassifier | None) -> None:
    """ValueError for method `learned` without a model, and for a `SessionClassifier`
    with another method (it decides every pair or none)."""
    if cfg.method == "learned" and scorer is None:
        raise ValueError("method 'learned' needs a model: a segmenter model or a session model")
    if cfg.method != "learned" and isinstance(scorer, SessionClassifier):
        raise ValueError(f"a segmenter model decides method 'learned' only, not {cfg.method!r}")


def chunk_rows(total: int, most: int = 2_000_000) -> int:
    """Rows per chunk of users: enough chunks to keep every core busy, none over `most`."""
    return max(1, min(most, -(-total // default_workers())))


def user_chunks(user_id: pl.Series, rows: int) -> list[tuple[int, int]]:
    """(offset, length) slices of about `rows` rows that never split a user (rows in
    user order): independent units of work for threads or Ray tasks. ValueError for
    `rows` below 1 (or not a whole number), which would cut no chunk and drop every row."""
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise ValueError(f"rows per chunk must be a whole number from 1, not {rows!r}")
    starts = np.flatnonzero((user_id != user_id.shift()).fill_null(True).to_numpy())
    cuts = np.unique(starts[np.minimum(np.searchsorted(starts, np.arange(0, len(user_id), rows)), len(starts) - 1)])
    edges = [*cuts.tolist(), len(user_id)] if len(user_id) else [0]
    return [(a, b - a) for a, b in itertools.pairwise(edges) if b > a]


def map_user_chunks(
    fn: Callable[[pl.DataFrame, Lexicon | None], T],
    ordered: pl.DataFrame,
    lexicon: Lexicon | None,
    rows: int | None = None,
    workers: int | None = None,
) -> Iterator[T]:
    """`fn(part, part_lexicon)` for chunks of whole users of `ordered` (rows in
    `user_time_order`), side by side on `workers` threads (`parallel.ordered_map`),
    results in user order. Chunks are of about `rows` rows (`chunk_rows` by default);
    `lexicon` (of all of `ordered`'s queries, or None) is shared by every chunk
    (`Lexicon.rows`), its tables built here, before the threads start. Users are
    independent, so the chunks are: segmentation does not depend on the cut."""
    if lexicon is not None:
        _ = lexicon.tables  # each thread would build the tables missing, every one of them

    def run(chunk: tuple[int, int]) -> T:
        return fn(ordered.slice(*chunk), lexicon.rows(*chunk) if lexicon is not None else None)

    return ordered_map(run, user_chunks(ordered["user_id"], rows or chunk_rows(ordered.height)), workers)


def user_time_order(df: pl.DataFrame) -> pl.DataFrame:
    """Rows with each user's events together, ordered by (ts, row_id): as they are when
    the log already is (AOL files are), else sorted by user code, ts, row_id."""
    same_user = pl.col("user_id") == pl.col("user_id").shift()
    backwards = same_user & (
        (pl.col("ts") < pl.col("ts").shift())
        | ((pl.col("ts") == pl.col("ts").shift()) & (pl.col("row_id") < pl.col("row_id").shift()))
    )
    check = df.select(
        runs=(~same_user.fill_null(False)).sum(), users=pl.col("user_id").n_unique(), back=backwards.any()
    )
    if check["runs"][0] == check["users"][0] and not check["back"][0]:
        return df
    user_code, _ = encode(df["user_id"])
    return df.with_columns(_u=pl.Series(user_code)).sort("_u", "ts", "row_id").drop("_u")


def number_sessions(df: pl.DataFrame) -> pl.DataFrame:
    """session_id and session_seq from `_break` flags (true on each session's first row;
    rows ordered by user and time, each user's first row a break)."""
    breaks, first = df["_break"].to_numpy(), df["first"].to_numpy()
    nth = np.cumsum(breaks) - 1  # global session number
    number = nth - nth[np.flatnonzero(first)][np.cumsum(first) - 1]  # within the user
    starts = np.flatnonzero(breaks)
    seq = np.arange(len(breaks)) - starts[nth]
    # each session's id written once, at its first row, then repeated down its rows
    ids = df.select(pl.format("{}/{}", pl.col("user_id").gather(starts), pl.Series(number[starts]))).to_series()
    return df.with_columns(session_id=ids.gather(nth), session_seq=pl.Series(seq, dtype=pl.Int32))


def _breaks(
    df: pl.DataFrame, cfg: SegmentConfig, scorer: PairScorer | SessionClassifier | None, lexicon: Lexicon | None
) -> np.ndarray:
    first = df["first"].to_numpy()
    gap = df["gap_s"].fill_null(0.0).to_numpy()
    if cfg.method == "time":
        return first | (gap > cfg.gap_minutes * 60)
    if isinstance(scorer, SessionClassifier):  # method learned (segment_ordered checked)
        breaks = np.asarray(scorer.session_breaks(df.select(SESSION_COLUMNS[:4]), lexicon))
        breaks = breaks.astype(bool) if breaks.size == 0 else breaks  # numpy reads an empty list as float64
        if breaks.shape != first.shape or breaks.dtype != np.bool_:
            raise ValueError(f"{type(scorer).__name__}.session_breaks gave {breaks.dtype} of shape {breaks.shape} "
                             f"for {len(first):,} rows: give one True or False a row")  # fmt: skip
        return first | breaks
    if cfg.method == "learned":
        assert scorer is not None
        p = _pair_scores(df, ~first, scorer)
        same = p >= cfg.min_p_same
        if (unjudged := np.flatnonzero(~first & np.isnan(p))).size:  # pairs the model cannot read: lexical evidence
            lexicon = lexicon or Lexicon(df["query"])
            ids = lexicon.text_id
            same[unjudged] = lexicon.close(ids[unjudged - 1], ids[unjudged], cfg.closeness)
        return first | ~same
    if cfg.method == "lexical":
        middle = ~first
        decided_break = first
    else:
        long_gap = gap > cfg.break_after_minutes * 60
        middle = ~first & ~long_gap & (gap > cfg.join_within_s)
        decided_break = first | long_gap
    lexicon = lexicon or Lexicon(df["query"])
    rows = np.flatnonzero(middle)
    close = np.zeros(len(df), dtype=bool)
    close[rows] = lexicon.close(lexicon.text_id[rows - 1], lexicon.text_id[rows], cfg.closeness)
    if cfg.method == "cascade" and scorer is not None:  # the model decides what lexical evidence would break
        close |= _scored_same(df, middle & ~close, scorer, cfg.min_p_same)
    breaks = decided_break | (middle & ~close)
    return breaks & ~_close_to_session_so_far(lexicon, breaks, np.flatnonzero(breaks & middle), cfg)


def _scored_same(df: pl.DataFrame, rows: np.ndarray, scorer: PairScorer, threshold: float) -> np.ndarray:
    """Whether the scorer puts each row with its predecessor (only `rows` are scored; a
    pair it cannot judge, NaN, is not put together)."""
    return _pair_scores(df, rows, scorer) >= threshold


def _pair_scores(df: pl.DataFrame, rows: np.ndarray, scorer: PairScorer) -> np.ndarray:
    """The scorer's p_same of each of `rows` with its predecessor; NaN for the other rows,
    for a pair the scorer cannot judge and for one with a missing query (never asked)."""
    p = np.full(len(df), np.nan)
    query = df["query"]
    idx = np.flatnonzero(rows)
    idx = idx[(query.gather(idx - 1).is_not_null() & query.gather(idx).is_not_null()).to_numpy()]
    if len(idx):
        p[idx] = np.asarray(scorer(query.gather(idx - 1), query.gather(idx)), dtype=np.float64)
    return p


def _close_to_session_so_far(lexicon: Lexicon, breaks: np.ndarray, rows: np.ndarray, cfg: SegmentConfig) -> np.ndarray:
    """Of the given session-starting rows, those with at least `min_containment` of their
    3-grams in one of the previous session's last `so_far_queries` distinct queries
    (`Lexicon.contained_before`: repeats of a query, duplicated rows, take one place)."""
    rejoin = np.zeros(len(breaks), dtype=bool)
    if not len(rows):
        return rejoin
    starts = np.flatnonzero(breaks)
    previous_start = starts[np.searchsorted(starts, rows) - 1]  # start of the session before
    rejoin[rows] = lexicon.contained_before(rows, previous_start, cfg.so_far_queries, cfg.min_containment)
    return rejoin
