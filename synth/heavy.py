"""Heavy users: one user's long history of unrelated topics, for testing mission linking.

A topic is two nouns; each of its queries is the two nouns and up to two more, in
random order. Nouns are single words of WordNet's noun lemmas drawn by how common
they are in running text (their SemCor counts, plus one), so frequent nouns (`time`,
`man`, `way`) recur across topics as they do in a real history. Gaps between a
user's queries are 1 s to 7 min, so time alone never separates topics.

    >>> events = topic_stream(10_000, users=1)   # one user, 2,000 topics of 5 queries

`gold_mission` is the topic: one information need per topic.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl


def noun_words() -> tuple[np.ndarray, np.ndarray]:
    """WordNet's single-word nouns (letters only, at least three) and their weights
    (SemCor counts of every lemma holding the word, plus one each)."""
    from hierarchies.wordnet import noun_graph

    lemmas = noun_graph().nodes.select("lemmas", "lemma_counts").explode("lemmas", "lemma_counts")
    words = (
        lemmas.select(
            word=pl.col("lemmas").str.to_lowercase().str.split(" "), weight=pl.col("lemma_counts").fill_null(0) + 1
        )
        .explode("word")
        .filter(pl.col("word").str.contains(r"^[a-z]{3,}$"))
        .group_by("word")
        .agg(pl.col("weight").sum())
        .sort("word")
    )
    return words["word"].to_numpy(), words["weight"].to_numpy().astype(np.float64)


def topic_stream(n_queries: int, *, per_topic: int = 5, users: int = 1, seed: int = 0) -> pl.DataFrame:
    """`n_queries` queries of `n_queries // per_topic` topics in a row, the topics dealt
    to `users` users in turn: `row_id, user_id, ts, query, gold_mission`, in user, time
    order (`ts` UTC microseconds from 2006-03-01)."""
    rng = np.random.default_rng(seed)
    words, weight = noun_words()
    cumulative = np.cumsum(weight) / weight.sum()

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        return np.minimum(np.searchsorted(cumulative, rng.random(shape)), len(words) - 1)

    n_topics = n_queries // per_topic
    topic_words = draw((n_topics, 2))
    while (same := topic_words[:, 0] == topic_words[:, 1]).any():  # two different nouns
        topic_words[same, 1] = draw((int(same.sum()),))
    extras, n_extra = draw((n_topics * per_topic, 2)), rng.integers(0, 3, n_topics * per_topic)
    queries, topics = [], []
    for i in range(n_topics * per_topic):
        k = i // per_topic
        chosen = list(dict.fromkeys([*topic_words[k], *extras[i, : n_extra[i]]]))
        rng.shuffle(chosen)
        queries.append(" ".join(words[chosen]))
        topics.append(k)
    topic = np.array(topics)
    user = topic % users
    order = np.lexsort((np.arange(len(topic)), user))
    gaps = rng.integers(1, 421, len(topic))[order]
    first = np.concatenate(([True], user[order][1:] != user[order][:-1]))
    offset = np.cumsum(gaps) - np.maximum.accumulate(np.where(first, np.cumsum(gaps) - gaps, 0))
    start = datetime(2006, 3, 1, tzinfo=UTC)
    return pl.DataFrame({
        "row_id": np.arange(len(topic)),
        "user_id": [f"u{u}" for u in user[order]],
        "ts": [start] * len(topic),
        "query": np.array(queries, dtype=object)[order].tolist(),
        "gold_mission": [f"u{u}/{t}" for u, t in zip(user[order], topic[order], strict=True)],
    }).with_columns(pl.col("ts") + pl.duration(seconds=pl.Series(offset)))  # fmt: skip
