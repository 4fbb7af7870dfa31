"""Missions: a user's sessions linked across time into one information need.

The rule (lexical linking): two sessions of the same user are linked when a query of
one and a query of the other are lexically close (term overlap at least
`min_overlap` or character 3-gram Jaccard at least `min_jaccard`, as in
`sessions.text`). Missions grow from these links in time order, as single linkage
does (A~B and B~C put A, B and C together, so interleaved and multi-day missions
come out whole), with one bound: a session joins a mission of more than one session
only when it holds one of the mission's core terms, a term that at least half of
the mission's sessions hold (`CORE_SHARE`), or repeats one of its queries; a link to
a lone session is enough. A
session may so join several missions, which then become one. Without the bound, a
heavy user's history percolates: with thousands of sessions, links through
different terms chain unrelated needs into one mission (10,000 queries of 2,000
topics gave one mission of 9,710 queries; with the bound the largest holds 505,
and Webis-SMC-12's development F1 stays 0.800; docs/segmentation.md).

With a session model (`Embedder`), sessions are also linked when the model's
same-session probability of their centroids (the normalised mean of their queries'
vectors) is at least `min_p_same`, each session compared with the user's next
`window` sessions: related needs in other words ("t&l realty", "puerto rico real
estate") come together too.

Only queries that share a term are compared, each with the next `window` distinct
queries of the same user (in time order) that use the term and sit in other
sessions, so a user with thousands of sessions stays cheap; components still join
through chains of such neighbours. A query without terms (stop words, punctuation,
symbols or emoji alone) has its key (`sessions.text.query_keys`: its case-and-spacing
form) for its one term here, so that it meets its own repeats, as the session rules
join them (`🍕` meets `🍕`, not `🎉`; a missing or blank query meets none). A term that
many users use (at least `common_term_share` of them, and `common_term_min_users`)
proposes no pair: `free`, `pictures` or a city name would otherwise chain unrelated
needs together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

import numba
import numpy as np
import polars as pl

from sessions.lexicon import Lexicon, encode, is_close
from sessions.pairs import SESSION, session_start

# A mission's core terms are those at least this share of its sessions hold.
CORE_SHARE = 0.5


class Embedder(Protocol):
    """A session model as mission linking uses it."""

    def embed(self, texts: pl.Series) -> np.ndarray:
        """Unit vectors (one row per text): texts (n,) -> (n, H), row i for texts[i]
        (float32 in this project's models)."""
        ...

    def p_same(self, scores: np.ndarray) -> np.ndarray:
        """Same-session probability of dot products of such vectors: (k,) -> (k,) in [0, 1]
        (float64: the model's Platt calibration, `models.calibration.Calibration`)."""
        ...


@dataclass(frozen=True)
class MissionConfig:
    """How sessions are linked into missions. ValueError for a threshold (`min_*`,
    `common_term_share`) outside [0, 1], `window` or `common_term_min_users` below 1."""

    min_overlap: float = field(
        default=0.5, metadata={"help": "link two sessions when their term overlap is at least this"}
    )
    min_jaccard: float = field(
        default=0.3, metadata={"help": "link two sessions when their 3-gram Jaccard is at least this"}
    )
    window: int = field(
        default=10,
        metadata={
            "help": "compare a query with the next this many of the user's queries in other sessions "
            "that share a term (with a session model, a session with its next this many)"
        },
    )
    common_term_share: float = field(
        default=0.05, metadata={"help": "a term used by more than this share of the log's users links nothing"}
    )
    common_term_min_users: int = field(default=20, metadata={"help": "... and by at least this many users"})
    min_p_same: float = field(
        default=0.5, metadata={"help": "with a session model: link sessions when p_same is at least this"}
    )

    def __post_init__(self) -> None:
        for name in ("min_overlap", "min_jaccard", "min_p_same"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if not 0.0 <= self.common_term_share <= 1.0 or self.common_term_min_users < 1:
            raise ValueError("common_term_share must be in [0, 1] and common_term_min_users at least 1")

    def to_dict(self) -> dict:
        """The config as JSON-ready values (a report's `config`)."""
        return asdict(self)


def require_session_order(sessions: pl.DataFrame) -> None:
    """ValueError in one line unless `sessions` (rows with `user_id`, `session_id` and
    optionally `ts`) hold each user's rows together, each of the user's sessions' rows
    together (a session is a user's `session_id`: ids numbered per user, 0, 1, ..., are
    sessions of their own users) and, with `ts`, each user's times in order: what
    `segment.segment` returns. A row without a user, a session or (with `ts`) a time is
    refused too: `segment` places none such."""
    for column in ("user_id", "session_id", *(["ts"] if "ts" in sessions.columns else [])):
        if nulls := sessions[column].null_count():
            raise ValueError(f"{nulls:,} rows without a {column}: link missions on sessions `segment` wrote")
    new_user = session_start(("user_id",))
    checks = {
        "users": new_user.sum() == pl.col("user_id").n_unique(),
        "sessions": session_start().sum() == pl.struct(*SESSION).n_unique(),
    }
    if "ts" in sessions.columns:
        checks["ts"] = ~(~new_user & (pl.col("ts") < pl.col("ts").shift())).any()
    held = sessions.select(**checks).row(0, named=True)
    broken = [what for what, ok in held.items() if not ok]
    if broken:
        what = {"users": "a user's rows", "sessions": "a session's rows", "ts": "a user's times"}[broken[0]]
        raise ValueError(
            f"{what} are out of order: link missions on rows in (user, time) order, as `segment` returns "
            "them (sort by user_id, ts and row_id: `sessions.segment.user_time_order`)"
        )


def link_missions(
    sessions: pl.DataFrame,
    cfg: MissionConfig,
    lexicon: Lexicon | None = None,
    common: pl.Series | None = None,
    embedder: Embedder | None = None,
) -> pl.DataFrame:
    """Adds `mission_id` (`<user_id>/m<k>`, k counting the user's missions in order of
    their first session) to the output of `segment.segment` (rows in user, time order).

    `lexicon` (of these rows' queries) and `common` (the log's common terms, see
    `common_terms`) are computed here when not given; a caller working a log in parts
    passes the log's own, so that the result does not depend on the parts.
    `embedder` adds the session model's links.

    Reads `user_id`, `session_id` and `query` (and `ts`, when there, to check the order).
    The rule (lexical single linkage bounded by the missions' core terms) is this
    project's, chosen in docs/segmentation.md ("Missions") on Webis-SMC-12's gold
    missions (Hagen et al. 2013). ValueError in one line when the rows are not in that
    order (each user's rows together, each session's too, times not going back), as
    after a shuffle, a sort by another column or a join: links by row position would
    cross sessions and users.
    """
    require_session_order(sessions)
    return link_ordered_missions(sessions, cfg, lexicon, common, embedder)


def link_ordered_missions(
    sessions: pl.DataFrame,
    cfg: MissionConfig,
    lexicon: Lexicon | None = None,
    common: pl.Series | None = None,
    embedder: Embedder | None = None,
) -> pl.DataFrame:
    """`link_missions` of rows their caller put in order itself (`segment.segment_ordered`'s
    output, as the pipeline has it), without the check of their order, which costs about
    a second on 3.7M rows (distinct (user, session) pairs): rows out of order give wrong
    missions here."""
    lexicon = lexicon or Lexicon(sessions["query"])
    if common is None:
        common = common_terms(term_users(lexicon, sessions["user_id"]), sessions["user_id"].n_unique(), cfg)
    user_starts = (sessions["user_id"] != sessions["user_id"].shift()).fill_null(True).to_numpy()
    starts = user_starts | (sessions["session_id"] != sessions["session_id"].shift()).fill_null(True).to_numpy()
    session = np.cumsum(starts) - 1
    n_sessions = int(session[-1]) + 1 if len(session) else 0
    user = np.cumsum(user_starts) - 1
    # the content terms, then the keys of the texts without terms (their one term each)
    is_common = pl.concat([lexicon.term_vocab, lexicon.termless_keys]).is_in(common.implode()).to_numpy()
    a, b = _links(session, user, lexicon, is_common, cfg)
    if embedder is not None and n_sessions > 1:
        ea, eb = _embedding_links(sessions["query"], starts, user, embedder, cfg)
        a, b = np.concatenate([a, ea]), np.concatenate([b, eb])
    terms = _session_terms(session, lexicon, is_common[: len(lexicon.term_vocab)])
    first = grow_missions(n_sessions, a, b, terms)  # in (user, time) order
    # Number each user's missions by their first session: 0, 1, ... in time order.
    session_user = user[np.flatnonzero(starts)]
    opens = first == np.arange(n_sessions)  # the session that opens its mission
    running = np.cumsum(opens) - 1
    user_first_session = np.flatnonzero(np.diff(session_user, prepend=-1) != 0)
    owner_first = user_first_session[np.searchsorted(user_first_session, np.arange(n_sessions), "right") - 1]
    ordinal = running - running[owner_first]
    mission = ordinal[first][session]
    return sessions.with_columns(
        mission_id=pl.concat_str([pl.col("user_id"), pl.lit("/m"), pl.Series(mission).cast(pl.String)])
    )


def term_users(lexicon: Lexicon, user_id: pl.Series) -> pl.DataFrame:
    """`term`, `users`: how many of these rows' users typed each term, a text without
    terms counting as its key (`Lexicon.termless_keys`, the one term mission linking
    gives it). Partitions that split no user can be added up (`users` summed by term).
    Rows in any order; rows already grouped by user (as `segment.user_time_order` leaves
    them) are not sorted."""
    text = lexicon.text_id
    user = (user_id != user_id.shift()).fill_null(True).cum_sum().cast(pl.Int64).to_numpy()  # runs of one user
    if len(user) and user[-1] != user_id.n_unique():  # a user in several runs: group the rows
        user, _ = encode(user_id)
        order = np.argsort(user, kind="stable")
        user, text = user[order], text[order]
    sets = lexicon.term_sets
    vocab = pl.concat([lexicon.term_vocab, lexicon.termless_keys])
    users = _term_user_counts(user, text.astype(np.int64, copy=False), sets.offsets, sets.codes, lexicon.termless,
                              len(vocab))  # fmt: skip
    return pl.DataFrame({"term": vocab, "users": users}).filter(pl.col("users") > 0)


@numba.njit(cache=True, nogil=True)
def _own_term(termless: np.ndarray, t: int) -> int:
    """The rank of text t among `termless` (the sorted ids of the texts without terms):
    its one term is the n_terms + rank-th; -1 for a text that is not among them (a
    missing or blank query's)."""
    rank = np.searchsorted(termless, t)
    return rank if rank < len(termless) and termless[rank] == t else -1


@numba.njit(cache=True, nogil=True)
def _term_user_counts(
    user: np.ndarray, text: np.ndarray, offsets: np.ndarray, codes: np.ndarray, termless: np.ndarray, n_codes: int
) -> np.ndarray:
    """`term_users`' counts, compiled: rows grouped by user, each term counted once per
    user (the last user seen to type it); n_codes codes: the terms, then the own term
    of each text of `termless`."""
    last = np.full(n_codes, -1, dtype=np.int64)
    count = np.zeros(n_codes, dtype=np.int64)
    n_terms = n_codes - len(termless)
    for i in range(len(user)):
        t = text[i]
        own = _own_term(termless, t) if offsets[t] == offsets[t + 1] else -1
        if own >= 0 and last[n_terms + own] != user[i]:
            last[n_terms + own] = user[i]
            count[n_terms + own] += 1
        for j in range(offsets[t], offsets[t + 1]):
            if last[codes[j]] != user[i]:
                last[codes[j]] = user[i]
                count[codes[j]] += 1
    return count


def common_terms(counts: pl.DataFrame, n_users: int, cfg: MissionConfig) -> pl.Series:
    """The terms so many users use (at least `common_term_share` of `n_users` and
    `common_term_min_users`) that sharing one is no evidence of one need."""
    floor = max(cfg.common_term_min_users, cfg.common_term_share * n_users)
    totals = counts.group_by("term").agg(pl.col("users").sum())
    return totals.filter(pl.col("users") >= floor)["term"].sort()


def _links(
    session: np.ndarray, user: np.ndarray, lexicon: Lexicon, common: np.ndarray, cfg: MissionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Linked session pairs (a, b) of one user, from rows' session, user and text codes
    (rows in user, time order, sessions numbered in that order)."""
    text = lexicon.text_id.astype(np.int64, copy=False)
    sets = lexicon.term_sets
    occ_term, occ_row = _term_occurrences(session, text, sets.offsets, sets.codes, lexicon.termless, common)
    return _window_links(occ_term, session[occ_row], user[occ_row], text[occ_row], cfg.window, *lexicon.tables,
                         cfg.min_overlap, cfg.min_jaccard)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _term_occurrences(
    session: np.ndarray, text: np.ndarray, offsets: np.ndarray, codes: np.ndarray, termless: np.ndarray,
    common: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The occurrences of content terms (`common` false) in each session's distinct
    queries (the first row of each (session, text)), as (term, row) sorted by term,
    then row: a counting sort over the term codes, two passes over the rows. A text
    without terms (among `termless`) holds one term of its own, code n_terms + its rank
    there; `common` covers those codes too."""
    n_codes = len(common)
    n_terms = n_codes - len(termless)
    seen = np.full(len(offsets) - 1, -1, dtype=np.int64)  # the last session each text was seen in
    start = np.zeros(n_codes + 1, dtype=np.int64)
    for row in range(len(text)):
        t = text[row]
        if seen[t] != session[row]:
            seen[t] = session[row]
            own = _own_term(termless, t) if offsets[t] == offsets[t + 1] else -1
            if own >= 0 and not common[n_terms + own]:
                start[n_terms + own + 1] += 1
            for j in range(offsets[t], offsets[t + 1]):
                if not common[codes[j]]:
                    start[codes[j] + 1] += 1
    start = np.cumsum(start)
    occ_term = np.empty(start[-1], dtype=np.int64)
    occ_row = np.empty(start[-1], dtype=np.int64)
    seen[:] = -1
    for row in range(len(text)):
        t = text[row]
        if seen[t] != session[row]:
            seen[t] = session[row]
            own = _own_term(termless, t) if offsets[t] == offsets[t + 1] else -1
            if own >= 0 and not common[n_terms + own]:
                c = n_terms + own
                occ_term[start[c]], occ_row[start[c]] = c, row
                start[c] += 1
            for j in range(offsets[t], offsets[t + 1]):
                c = codes[j]
                if not common[c]:
                    occ_term[start[c]], occ_row[start[c]] = c, row
                    start[c] += 1
    return occ_term, occ_row


@numba.njit(cache=True, nogil=True)
def _window_links(
    occ_term: np.ndarray, occ_session: np.ndarray, occ_user: np.ndarray, occ_text: np.ndarray, window: int,
    term_offsets: np.ndarray, term_codes: np.ndarray, gram_offsets: np.ndarray, gram_codes: np.ndarray,
    min_overlap: float, min_jaccard: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each occurrence (sorted by term, then row) with each of the next `window`
    occurrences of its term by the same user that sit in another session (those in its
    own session, which come together, are passed over): the pairs of sessions (a, b),
    a < b, whose two texts are close (`lexicon.is_close`)."""
    a = np.empty(max(16, len(occ_term)), dtype=np.int64)
    b = np.empty_like(a)
    links = 0
    run_end = len(occ_term)  # the first occurrence past i's session (of its term and user)
    for i in range(len(occ_term) - 1, -1, -1):
        if i + 1 < len(occ_term) and not (occ_term[i + 1] == occ_term[i] and occ_user[i + 1] == occ_user[i]
                                          and occ_session[i + 1] == occ_session[i]):  # fmt: skip
            run_end = i + 1
        for j in range(run_end, min(run_end + window, len(occ_term))):
            if occ_term[j] != occ_term[i] or occ_user[j] != occ_user[i]:
                break  # terms ascend, and a term's users are grouped
            if is_close(
                term_offsets, term_codes, gram_offsets, gram_codes, occ_text[i], occ_text[j], min_overlap, min_jaccard
            ):
                if links == len(a):  # grow by doubling
                    a, b = np.concatenate((a, np.empty_like(a))), np.concatenate((b, np.empty_like(b)))
                a[links], b[links] = occ_session[i], occ_session[j]
                links += 1
    return a[:links].copy(), b[:links].copy()


def _embedding_links(
    query: pl.Series, starts: np.ndarray, user: np.ndarray, embedder: Embedder, cfg: MissionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Session pairs (a, b) of one user, at most `window` sessions apart, whose centroids
    the model puts in one session; each distinct query is embedded once. A session's
    centroid is the mean of its distinct queries' vectors, each once however many rows
    repeat it (a row per click or per image), as its terms are in `_session_terms`."""
    text, distinct = encode(query.fill_null(""))  # a missing query is an empty one, as in `Lexicon`
    session = np.cumsum(starts) - 1
    once = pl.DataFrame({"s": session, "t": text}).select(pl.struct("s", "t").is_first_distinct()).to_series()
    kept = np.flatnonzero(once.to_numpy())  # each session's first row of each of its texts, its first row included
    vectors = embedder.embed(distinct)[text[kept]]
    first_rows = np.flatnonzero(starts)
    centroid = np.add.reduceat(vectors.astype(np.float64), np.searchsorted(kept, first_rows), axis=0)
    centroid /= np.maximum(np.linalg.norm(centroid, axis=1, keepdims=True), 1e-12)
    session_user = user[first_rows]
    a, b = [], []
    for k in range(1, cfg.window + 1):
        i = np.flatnonzero(session_user[:-k] == session_user[k:])
        if len(i):
            p = embedder.p_same(np.einsum("ij,ij->i", centroid[i], centroid[i + k]))
            keep = i[p >= cfg.min_p_same]
            a.append(keep)
            b.append(keep + k)
    empty = np.empty(0, dtype=np.int64)
    return (np.concatenate(a), np.concatenate(b)) if a else (empty, empty)


def _session_terms(session: np.ndarray, lexicon: Lexicon, common: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What `grow_missions` compares of every session, as CSR (offsets, codes): session
    s holds codes[offsets[s]:offsets[s + 1]], its distinct content terms (codes >= 0)
    and its distinct normalised queries (text id t as -1 - t)."""
    sets = lexicon.term_sets
    n = int(session[-1]) + 1 if len(session) else 0
    return _session_codes(session, lexicon.text_id.astype(np.int64, copy=False), sets.offsets, sets.codes, common, n)


@numba.njit(cache=True, nogil=True)
def _session_codes(
    session: np.ndarray, text: np.ndarray, offsets: np.ndarray, codes: np.ndarray, common: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """`_session_terms`, compiled: one pass over the rows (sessions contiguous, numbered
    in row order), each code kept once per session."""
    n_terms = len(common)
    last = np.full(n_terms + len(offsets) - 1, -1, dtype=np.int64)  # the last session holding each code
    bound = len(text)
    for row in range(len(text)):
        bound += offsets[text[row] + 1] - offsets[text[row]]
    out = np.empty(bound, dtype=np.int64)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    k = 0
    for row in range(len(text)):
        s, t = session[row], text[row]
        for j in range(offsets[t], offsets[t + 1]):
            c = codes[j]
            if not common[c] and last[c] != s:
                last[c] = s
                out[k] = c
                k += 1
        if last[n_terms + t] != s:
            last[n_terms + t] = s
            out[k] = -1 - t
            k += 1
        out_offsets[s + 1] = k
    return out_offsets, out[:k].copy()


def grow_missions(n: int, a: np.ndarray, b: np.ndarray, terms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """For each of n sessions (numbered in user, time order), the first session of its
    mission, from links a-b and each session's terms (`_session_terms`' CSR).
    a, b: (k,) int session indices, one link each; returns (n,) int64.

    Sessions are taken in order; each joins every mission of an earlier session it is
    linked to that is a lone session, holds one of its queries again, or of whose
    sessions at least `CORE_SHARE` hold one of its terms (those missions become one),
    or else opens a mission. Where
    that bound never refuses a link (components of up to two sessions), this is
    the connected components of the links, computed as such; the rest runs one
    session at a time with union by size, in a loop compiled by numba (`_grow`;
    docs/segmentation.md, Speed). Missions never leave the component of links they
    grow in, so that loop takes one component at a time, each with a table of its own.
    """
    first = first_of_component(n, a, b)
    component_size = np.bincount(first, minlength=n)[first]
    big = component_size > 2
    if not big.any():
        return first
    link_offsets, earlier = _by_later_session(n, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), big)
    offsets, codes = (np.asarray(x, dtype=np.int64) for x in terms)
    shift = max(0, -int(codes.min())) if len(codes) else 0  # codes of texts are negative
    width = int(codes.max()) + shift + 1 if len(codes) else 1
    sessions = np.flatnonzero(big)
    sessions = sessions[np.argsort(first[sessions], kind="stable")]  # by component, then in order
    low = _grow(n, sessions, first, link_offsets, earlier, offsets, codes, shift, width, CORE_SHARE)
    result = first.copy()
    result[big] = low[big]
    return result


@numba.njit(cache=True, nogil=True)
def _by_later_session(n: int, a: np.ndarray, b: np.ndarray, big: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The links a-b between two sessions of big components, each once, by their later
    session: CSR (offsets (n + 1,), earlier), session s's earlier sessions being
    earlier[offsets[s]:offsets[s + 1]], ascending. A counting sort by the later session,
    then each session's few earlier ones sorted by insertion."""
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(len(a)):
        lo, hi = min(a[i], b[i]), max(a[i], b[i])
        if lo != hi and big[hi]:
            start[hi + 1] += 1
    start = np.cumsum(start)
    earlier = np.empty(start[-1], dtype=np.int64)
    at = start[:-1].copy()
    for i in range(len(a)):
        lo, hi = min(a[i], b[i]), max(a[i], b[i])
        if lo != hi and big[hi]:
            earlier[at[hi]] = lo
            at[hi] += 1
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    out = np.empty(len(earlier), dtype=np.int64)
    k = 0
    for s in range(n):
        lo, hi = start[s], start[s + 1]
        if hi - lo > 32:
            earlier[lo:hi].sort()
        else:
            for j in range(lo + 1, hi):  # insertion: a session's links are few
                value, at = earlier[j], j
                while at > lo and earlier[at - 1] > value:
                    earlier[at] = earlier[at - 1]
                    at -= 1
                earlier[at] = value
        for j in range(lo, hi):
            if j == lo or earlier[j] != earlier[j - 1]:
                out[k] = earlier[j]
                k += 1
        out_offsets[s + 1] = k
    return out_offsets, out[:k].copy()


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


@numba.njit(cache=True, nogil=True)
def _grow(
    n: int,
    sessions: np.ndarray,
    component: np.ndarray,
    link_offsets: np.ndarray,
    earlier: np.ndarray,
    offsets: np.ndarray,
    codes: np.ndarray,
    shift: int,
    width: int,
    core_share: float,
) -> np.ndarray:
    """`grow_missions`' loop, compiled (numba): `sessions` (the sessions of components of
    more than two, grouped by `component`, ascending within one) taken in order, each
    joining the missions of its links (`_by_later_session`'s CSR: the earlier sessions
    it is linked to) that the bound allows. Returns, for each session, the first session
    of its mission (valid for `sessions` only).

    Missions are a union-find forest, union by size; what each mission holds is a hash
    table (open addressing, `_slot`) of (root, code) -> how many of its sessions hold
    the code (key root * width + code + shift), one table per component, sized to it
    (a small one stays in cache), and each root's codes a linked list of entries, so
    that a union moves the smaller mission's counts into the larger's. A mission's
    entries stay in the table when it joins another (its root is no longer a root and
    is never asked again) until the table is rebuilt.
    """
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    low = np.arange(n)
    head = np.full(n, -1, dtype=np.int64)  # each root's first and last code entry
    tail = np.full(n, -1, dtype=np.int64)
    entry_code = np.empty(len(codes), dtype=np.int64)
    entry_next = np.empty(len(codes), dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    used = 0
    first = 0
    while first < len(sessions):  # one component: sessions[first:last]
        last, held = first, 0
        while last < len(sessions) and component[sessions[last]] == component[sessions[first]]:
            held += offsets[sessions[last] + 1] - offsets[sessions[last]]
            last += 1
        keys = _table(2 * held)
        counts = np.zeros(len(keys), dtype=np.int64)
        filled = 0  # keys in the table
        for k in range(first, last):
            s = sessions[k]
            for j in range(offsets[s], offsets[s + 1]):
                if 2 * (filled + 1) > len(keys):
                    keys, counts, filled = _rebuilt(keys, counts, parent, width)
                at = _slot(keys, s * width + codes[j] + shift)
                keys[at], counts[at] = s * width + codes[j] + shift, 1
                filled += 1
                entry_code[used], entry_next[used] = codes[j], -1
                if head[s] < 0:
                    head[s] = used
                else:
                    entry_next[tail[s]] = used
                tail[s] = used
                used += 1
            joined = s  # the root of s's mission, all along
            for i in range(link_offsets[s], link_offsets[s + 1]):
                group = _find(parent, earlier[i])
                if group == joined:
                    continue
                allowed = size[group] == 1
                core = core_share * size[group]
                j = offsets[s]
                while not allowed and j < offsets[s + 1]:
                    at = _slot(keys, group * width + codes[j] + shift)
                    count = counts[at] if keys[at] >= 0 else 0
                    allowed = count >= 1 if codes[j] < 0 else count >= core
                    j += 1
                if not allowed:
                    continue
                x, y = joined, group  # union by size: y's mission into x's
                if size[x] < size[y]:
                    x, y = y, x
                size[x] += size[y]
                low[x] = min(low[x], low[y])
                e = head[y]  # (y stays a root while its entries move: a rebuilt table keeps them)
                while e >= 0:
                    following = entry_next[e]
                    count = counts[_slot(keys, y * width + entry_code[e] + shift)]
                    if 2 * (filled + 1) > len(keys):
                        keys, counts, filled = _rebuilt(keys, counts, parent, width)
                    key = x * width + entry_code[e] + shift
                    at = _slot(keys, key)
                    if keys[at] >= 0:
                        counts[at] += count  # the entry is x's already
                    else:
                        keys[at], counts[at] = key, count
                        filled += 1
                        entry_next[e] = -1
                        if head[x] < 0:
                            head[x] = e
                        else:
                            entry_next[tail[x]] = e
                        tail[x] = e
                    e = following
                head[y] = tail[y] = -1
                parent[y] = x
                joined = x
        for k in range(first, last):
            out[sessions[k]] = low[_find(parent, sessions[k])]
        first = last
    return out


@numba.njit(cache=True, nogil=True)
def _table(entries: int) -> np.ndarray:
    """The keys of an empty hash table for about `entries` keys: a power of two of
    slots, each -1 (empty)."""
    slots = 16
    while slots < entries:
        slots *= 2
    return np.full(slots, -1, dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _slot(keys: np.ndarray, key: int) -> int:
    """Where `key` is in the table, or the empty slot where it would go (linear probing
    from a Fibonacci hash of the key)."""
    mask = len(keys) - 1
    at = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
    while keys[at] != -1 and keys[at] != key:
        at = (at + 1) & mask
    return at


@numba.njit(cache=True, nogil=True)
def _rebuilt(
    keys: np.ndarray, counts: np.ndarray, parent: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The table without the entries of missions that joined another (their root is no
    longer a root), with room for as many again: (keys, counts, entries)."""
    live = 0
    for at in range(len(keys)):
        if keys[at] >= 0 and parent[keys[at] // width] == keys[at] // width:
            live += 1
    new_keys = _table(4 * live + 16)
    new_counts = np.zeros(len(new_keys), dtype=np.int64)
    for at in range(len(keys)):
        if keys[at] >= 0 and parent[keys[at] // width] == keys[at] // width:
            to = _slot(new_keys, keys[at])
            new_keys[to], new_counts[to] = keys[at], counts[at]
    return new_keys, new_counts, live


def first_of_component(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each of n nodes, the smallest node of its connected component (edges a-b):
    (n,) int64."""
    return _first_of_component(n, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _first_of_component(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`first_of_component`, compiled: union-find whose roots are always their
    component's smallest node (the smaller root becomes the parent), path compression."""
    parent = np.arange(n)
    for i in range(len(a)):
        x, y = _find(parent, a[i]), _find(parent, b[i])
        if x < y:
            parent[y] = x
        elif y < x:
            parent[x] = y
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = _find(parent, i)
    return out
