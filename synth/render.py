"""Turn walked query states into text and rows: AOL-style queries with clicks, or
text-to-image prompts with several images each. Vectorised with polars.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from synth.structure import Structure, zipf_cdf
from synth.taxonomy import ConceptIndex
from synth.walk import DUPLICATE, N_MODIFIER_BITS, OPS, REPEAT, START, TYPO, Walk

# Popular destinations of 2006, typed into the search box to get there.
NAV_SITES = (
    "google", "yahoo", "myspace", "ebay", "mapquest", "hotmail", "aol", "amazon", "bank of america",
    "craigslist", "weather", "msn", "wikipedia", "youtube", "walmart", "target", "espn", "cnn",
    "american idol", "white pages", "yellow pages", "dictionary", "ask jeeves", "southwest airlines",
    "best buy", "home depot", "sears", "kohls", "chase", "wachovia", "irs", "dmv", "fox news",
    "nascar", "limewire", "facebook", "netflix", "expedia", "orbitz", "travelocity",
)  # fmt: skip
QUERY_PREFIXES = ("free", "cheap", "best", "used", "new", "types of", "pictures of", "history of")
# Terms people add after a name, by the concept's WordNet category.
QUERY_SUFFIXES = {
    "noun.animal": ("pictures", "breeds", "for sale", "facts", "care", "rescue"),
    "noun.artifact": ("for sale", "prices", "reviews", "parts", "repair", "manual"),
    "noun.food": ("recipes", "recipe", "nutrition", "calories", "restaurants", "delivery"),
    "noun.plant": ("seeds", "care", "pictures", "garden", "flowers", "growing"),
    "noun.person": ("pictures", "biography", "jobs", "salary", "training", "schools"),
    "noun.location": ("map", "hotels", "weather", "real estate", "jobs", "news"),
    "noun.communication": ("lyrics", "online", "free", "download", "meaning", "examples"),
    "noun.act": ("games", "lessons", "rules", "tips", "classes", "equipment"),
    "": ("pictures", "information", "online", "com", "facts", "definition"),
}
# Where or when: AOL users often add a place or a year.
PLACES = (
    "texas", "florida", "california", "new york", "chicago", "ohio", "michigan", "atlanta",
    "los angeles", "houston", "new jersey", "pennsylvania", "arizona", "las vegas", "boston",
    "dallas", "virginia", "north carolina", "seattle", "denver", "2006", "uk", "canada", "nyc",
)  # fmt: skip
PROMPT_PREFIXES = (
    "a beautiful", "a cute", "an ancient", "a giant", "a futuristic", "portrait of", "painting of", "photo of",
    "an epic",
)  # fmt: skip
PROMPT_SCENES = (
    "in a forest", "on the beach", "in space", "at sunset", "in a city", "in the snow", "underwater", "on mars",
    "in a cyberpunk city",
)  # fmt: skip
STYLE_MODIFIERS = (
    "highly detailed", "digital painting", "artstation", "concept art", "smooth", "sharp focus",
    "illustration", "art by artgerm and greg rutkowski", "8k", "unreal engine", "octane render",
    "cinematic lighting", "fantasy", "intricate", "elegant", "volumetric lighting", "4k",
    "hyperrealistic", "photorealistic", "matte painting", "studio ghibli", "by alphonse mucha",
    "trending on artstation", "dramatic lighting", "golden hour", "bokeh", "symmetrical",
    "vibrant colors", "pastel colors", "oil on canvas", "watercolor", "pencil sketch", "low poly",
    "isometric", "vaporwave", "steampunk", "cyberpunk", "art nouveau", "baroque", "ukiyo-e",
    "by makoto shinkai", "by greg rutkowski", "by wlop", "by james gurney", "35mm film",
    "portrait photography", "wide angle", "macro",
)  # fmt: skip
assert len(STYLE_MODIFIERS) == N_MODIFIER_BITS
_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def slot_layout(style: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Term slots of a query, as the walk edits them: their number of choices and the
    chance each starts filled. AOL: prefix, suffix, place; prompt: prefix, scene."""
    if style == "prompt":
        return (len(PROMPT_PREFIXES), len(PROMPT_SCENES)), (0.5, 0.4)
    return (len(QUERY_PREFIXES), len(next(iter(QUERY_SUFFIXES.values()))), len(PLACES)), (0.2, 0.45, 0.2)


def _suffix_table(index: ConceptIndex) -> tuple[pl.Series, np.ndarray]:
    """Flat table of suffix texts, and each concept's row offset in it."""
    groups = list(QUERY_SUFFIXES)
    k = len(QUERY_SUFFIXES[""]) + 1
    table = pl.Series([t for g in groups for t in ("", *QUERY_SUFFIXES[g])])
    group_of = {g: i for i, g in enumerate(groups)}
    concept_group = np.array([group_of.get(lex, group_of[""]) for lex in index.lexname], dtype=np.int64)
    return table, concept_group * k


def query_texts(s: Structure, w: Walk, index: ConceptIndex, style: str) -> pl.Series:
    """The text of every query event (before typos)."""
    is_nav = w.concept < 0
    frame = pl.DataFrame(
        {
            "name": index.lemma_text.gather(np.where(is_nav, 0, w.lemma)),
            "nav": pl.Series(NAV_SITES).gather(np.maximum(s.nav_site, 0)),
            "is_nav": is_nav,
            "variant": w.variant,
        }
    )
    nav_text = (
        pl.when(pl.col("variant") == 0).then(pl.col("nav"))
        .when(pl.col("variant") == 1).then(pl.col("nav").str.replace_all(" ", "") + ".com")
        .otherwise("www." + pl.col("nav").str.replace_all(" ", "") + ".com")
    )  # fmt: skip
    if style == "prompt":
        frame = frame.with_columns(
            prefix=pl.Series(("", *PROMPT_PREFIXES)).gather(w.slots[0]),
            suffix=pl.Series(("", *PROMPT_SCENES)).gather(w.slots[1]),
            mods=pl.Series(w.modifiers),
        )
        subject = _join_nonempty(["prefix", "name", "suffix"], " ")
        styles = [pl.when((pl.col("mods") & (1 << b)) != 0).then(pl.lit(m)) for b, m in enumerate(STYLE_MODIFIERS)]
        text = pl.concat_str([subject, *styles], separator=", ", ignore_nulls=True)
    else:
        table, offset = _suffix_table(index)
        frame = frame.with_columns(
            prefix=pl.Series(("", *QUERY_PREFIXES)).gather(w.slots[0]),
            suffix=table.gather(np.where(is_nav, 0, offset[np.maximum(w.concept, 0)] + w.slots[1])),
            place=pl.Series(("", *PLACES)).gather(w.slots[2]),
        )
        text = _join_nonempty(["prefix", "name", "suffix", "place"], " ")
    return frame.select(pl.when(pl.col("is_nav")).then(nav_text).otherwise(text)).to_series().alias("query")


def _join_nonempty(columns: list[str], separator: str) -> pl.Expr:
    return pl.concat_str(
        [pl.when(pl.col(c) != "").then(pl.col(c)) for c in columns], separator=separator, ignore_nulls=True
    )


def add_typos(text: pl.Series, typo: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Misspell the flagged texts: drop, swap, insert or replace a letter, or add one at the end."""
    rows = np.flatnonzero(typo)
    target = text.gather(rows)
    length = target.str.len_chars().to_numpy()
    n = len(rows)
    df = pl.DataFrame(
        {
            "t": target,
            "p": 1 + (rng.random(n) * np.maximum(length - 2, 1)).astype(np.int64),
            "k": np.where(length >= 3, rng.integers(0, 5, n), -1),
            "l": _LETTERS[rng.integers(0, 26, n)],
        }
    )
    t, p, k, letter = pl.col("t"), pl.col("p"), pl.col("k"), pl.col("l")
    head, rest = t.str.slice(0, p), t.str.slice(p)
    misspelt = (
        pl.when(k == 0).then(head + t.str.slice(p + 1))  # drop
        .when(k == 1).then(head + t.str.slice(p + 1, 1) + t.str.slice(p, 1) + t.str.slice(p + 2))  # swap
        .when(k == 2).then(head + letter + rest)  # insert
        .when(k == 3).then(head + letter + t.str.slice(p + 1))  # replace
        .when(k == 4).then(t + letter)  # cute cat -> cute catd
        .otherwise(t)  # too short to misspell
    )  # fmt: skip
    out = text.clone()
    out.scatter(rows, df.select(misspelt).to_series())
    return out


def expand_rows(
    s: Structure, budget: np.ndarray, probs: tuple[float, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows per query event (clicks or images), cut to each user's row budget.

    Returns, per output row: the event it belongs to, its 0-based copy number, and
    the number of copies of the event (the click count; 0 when there was no click).
    """
    copies = np.searchsorted(np.cumsum(probs), rng.random(len(s.user)) * sum(probs), side="right")
    reps = np.maximum(copies, 1)
    event = np.repeat(np.arange(len(s.user)), reps)
    copy = np.arange(len(event)) - np.repeat(np.cumsum(reps) - reps, reps)
    user = s.user[event]
    user_first_row = np.searchsorted(user, np.arange(len(budget)))
    keep = np.arange(len(event)) - user_first_row[user] < budget[user]
    return event[keep], copy[keep], copies[event[keep]]


def click_columns(
    copy: np.ndarray,
    clicks: np.ndarray,
    names: pl.Series,
    nav_names: pl.Series,
    is_nav: np.ndarray,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """ItemRank and ClickURL of AOL rows (one row per click); empty without a click."""
    n = len(copy)
    first_rank = 1 + np.searchsorted(zipf_cdf(10, 1.3), rng.random(n), side="right")
    rank = np.minimum(first_rank + copy, 10)  # a query's later clicks rank lower
    df = pl.DataFrame(
        {
            "name": names,
            "nav": nav_names,
            "is_nav": is_nav,
            "has_click": clicks > 0,
            "rank": rank,
            "wiki": rng.random(n) < 0.25,
        }
    )
    token = pl.when("is_nav").then(pl.col("nav")).otherwise(pl.col("name")).str.replace_all(r"[^a-z0-9]", "")
    url = (
        pl.when(pl.col("wiki") & ~pl.col("is_nav"))
        .then("http://en.wikipedia.org/wiki/" + pl.col("name").str.replace_all(" ", "_"))
        .otherwise("http://www." + token + ".com")
    )
    return df.select(
        ItemRank=pl.when("has_click").then(pl.col("rank")).cast(pl.Int32),
        ClickURL=pl.when("has_click").then(url),
    )


def user_hash(user_ids: np.ndarray) -> pl.Series:
    """DiffusionDB-style anonymous user names: SHA-256 hex digests."""
    return pl.Series([hashlib.sha256(f"sessionflow-user-{u}".encode()).hexdigest() for u in user_ids.tolist()])


def reformulation(op: np.ndarray, session_start: np.ndarray, event: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """Gold reformulation of each row relative to the row before it in its session.

    `op`, `session_start` are per query event; `event`, `copy` map rows to events.
    A session's first query is `start`; extra click or image rows of a query are
    `duplicate`; a query repeated right after its misspelling is a `typo` pair too
    (`cute catd` -> `cute cats`).
    """
    label = np.where(session_start, START, op)
    after_typo = np.zeros(len(op), dtype=bool)
    after_typo[1:] = (op[:-1] == TYPO) & ~session_start[1:]  # the surface text was misspelt
    label = np.where(after_typo & (label == REPEAT), TYPO, label)
    rows = np.where(copy > 0, DUPLICATE, label[event])
    return np.asarray(OPS, dtype=object)[rows]


__all__ = [
    "NAV_SITES", "TYPO", "add_typos", "click_columns", "expand_rows", "query_texts", "reformulation", "user_hash",
]  # fmt: skip
