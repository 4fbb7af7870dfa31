"""Missions: a user's sessions linked across time into one information need.

The rule (lexical linking): two sessions of the same user belong to one mission when
a query of one and a query of the other are lexically close (term overlap at least
`min_overlap` or character 3-gram Jaccard at least `min_jaccard`, as in
`sessions.text`); missions are the connected components of these links, so
interleaved and multi-day missions come out whole (single linkage: A~B and B~C put
A, B and C together).

Only queries that share a term are compared, each with the next `window` distinct
queries of the same user (in time order) that use the term and sit in other
sessions, so a user with thousands of sessions stays cheap; components still join
through chains of such neighbours. A term that many users use (at least
`common_term_share` of them, and `common_term_min_users`) proposes no pair:
`free`, `pictures` or a city name would otherwise chain unrelated needs together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sessions.lexicon import Closeness, Lexicon, encode, pack


@dataclass(frozen=True)
class MissionConfig:
    """How sessions are linked into missions."""

    min_overlap: float = 0.5
    min_jaccard: float = 0.3
    window: int = 10
    common_term_share: float = 0.05
    common_term_min_users: int = 20

    def __post_init__(self) -> None:
        for name in ("min_overlap", "min_jaccard"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.window < 1:
            raise ValueError("window must be at least 1")

    def to_dict(self) -> dict:
        return asdict(self)


def link_missions(
    sessions: pl.DataFrame, cfg: MissionConfig, lexicon: Lexicon | None = None, common: np.ndarray | None = None
) -> pl.DataFrame:
    """Adds `mission_id` (`<user_id>/m<k>`, k counting the user's missions in order of
    their first session) to the output of `segment.segment` (rows in user, time order).

    `lexicon` (of these rows' queries) and `common` (`common_terms` of the whole log)
    are computed here when not given; a caller working a log in chunks passes the
    log's own, so that the result does not depend on the chunking.
    """
    lexicon = lexicon or Lexicon(sessions["query"])
    if common is None:
        common = common_terms(lexicon, sessions["user_id"], cfg)
    starts = (sessions["session_id"] != sessions["session_id"].shift()).fill_null(True).to_numpy()
    session = np.cumsum(starts) - 1
    n_sessions = int(session[-1]) + 1 if len(session) else 0
    user_starts = (sessions["user_id"] != sessions["user_id"].shift()).fill_null(True).to_numpy()
    user = np.cumsum(user_starts) - 1
    a, b = _links(session, user, lexicon, common, cfg)
    first = first_of_component(n_sessions, a, b)  # sessions are numbered in (user, time) order
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


def common_terms(lexicon: Lexicon, user_id: pl.Series, cfg: MissionConfig) -> np.ndarray:
    """Per term code of the lexicon, whether so many users use it (at least
    `common_term_share` of them and `common_term_min_users`) that sharing it is no
    evidence of one need."""
    user, _ = encode(user_id)
    offsets, codes = lexicon.term_codes
    text = lexicon.text_id
    key = (user.astype(np.uint64) << np.uint64(32)) | text.astype(np.uint64)
    pairs = np.sort(key)
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))] if len(pairs) else pairs
    pair_user, pair_text = (pairs >> np.uint64(32)).astype(np.int64), (pairs & np.uint64(0xFFFFFFFF)).astype(np.int64)
    counts = offsets[pair_text + 1] - offsets[pair_text]
    term = codes[_spans(offsets[pair_text], counts)]
    term_user = np.sort((term.astype(np.uint64) << np.uint64(32)) | np.repeat(pair_user, counts).astype(np.uint64))
    distinct = term_user[np.concatenate(([True], term_user[1:] != term_user[:-1]))] if len(term_user) else term_user
    users_per_term = np.bincount(
        (distinct >> np.uint64(32)).astype(np.int64), minlength=len(codes) and int(codes.max()) + 1
    )
    n_users = int(user.max(initial=-1)) + 1
    return users_per_term >= max(cfg.common_term_min_users, cfg.common_term_share * n_users)


def _spans(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Indices starts[i] .. starts[i] + counts[i] - 1 for every i, concatenated."""
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(ends[-1] if len(ends) else 0)


def _links(
    session: np.ndarray, user: np.ndarray, lexicon: Lexicon, common: np.ndarray, cfg: MissionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Linked session pairs (a, b) of one user, from rows' session, user and text codes."""
    text = lexicon.text_id
    # The first row of each (session, text): a session's distinct queries, in time order.
    key = pack(session, text)
    order = np.argsort(key, kind="stable")
    keep = np.ones(len(key), dtype=bool)
    keep[order[1:]] = key[order[1:]] != key[order[:-1]]
    rows = np.flatnonzero(keep)
    # Each such row once per distinct content term of its text, sorted by (term, row):
    # by term, then time.
    offsets, codes = lexicon.term_codes
    counts = offsets[text[rows] + 1] - offsets[text[rows]]
    occ_row = np.repeat(rows, counts)
    occ_term = codes[_spans(offsets[text[rows]], counts)]
    content = ~common[occ_term]
    occ_row, occ_term = occ_row[content], occ_term[content]
    order = np.argsort(pack(occ_term, occ_row))
    occ_row, occ_term = occ_row[order], occ_term[order]
    occ_user, occ_session, occ_text = user[occ_row], session[occ_row], text[occ_row]
    pairs = []
    for k in range(1, cfg.window + 1):  # each occurrence with the k-th next one of its term
        ok = (occ_term[:-k] == occ_term[k:]) & (occ_user[:-k] == occ_user[k:]) & (occ_session[:-k] != occ_session[k:])
        at = np.flatnonzero(ok)
        pairs.append((occ_session[at], occ_session[at + k], occ_text[at], occ_text[at + k]))
    sa, sb, ta, tb = (np.concatenate(column) for column in zip(*pairs, strict=True))
    close = lexicon.close(ta, tb, Closeness(min_overlap=cfg.min_overlap, min_jaccard=cfg.min_jaccard))
    return sa[close], sb[close]


def first_of_component(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each of n nodes, the smallest node of its connected component (edges a-b)."""
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")  # nodes by component, ascending within
    sorted_label = label[order]
    group_start = np.flatnonzero(np.diff(sorted_label, prepend=-1) != 0)
    smallest = order[group_start]  # per component, in label order
    return smallest[label]
