"""HierarCaps: chains as a closure, train rows apart from test images, hierarchical retrieval."""

from __future__ import annotations

import gzip

import numpy as np
import polars as pl
import pytest

from hierarchies.hierarcaps import (
    EXPANDED_FILE,
    TEST_FILE,
    chains_hierarchy,
    read_test_chains,
    retrieval_task,
    train_hierarchy,
)
from hierarchies.metrics import chain_retrieval


def test_a_chain_gives_every_caption_its_higher_captions_as_ancestors():
    h = chains_hierarchy(np.array([["animal", "dog", "a small dog", "a small dog on grass"],
                                   ["animal", "cat", "a cat", "a cat asleep"]]))  # fmt: skip
    by_name = {(h.names[c], h.names[a]) for c, a in h.edges}
    assert ("a small dog on grass", "animal") in by_name and ("dog", "animal") in by_name
    assert ("animal", "dog") not in by_name and ("cat", "dog") not in by_name
    assert h.n_nodes == 7 and h.n_edges == 12  # 6 pairs per chain; "animal" is one node of both
    assert dict(zip(h.names, h.depth, strict=True))["animal"] == 0
    assert dict(zip(h.names, h.depth, strict=True))["a cat asleep"] == 3
    direct = {(h.names[c], h.names[a]) for (c, a), d in zip(h.edges, h.direct, strict=True) if d}
    assert direct == {("dog", "animal"), ("a small dog", "dog"), ("a small dog on grass", "a small dog"),
                      ("cat", "animal"), ("a cat", "cat"), ("a cat asleep", "a cat")}  # fmt: skip


def test_training_never_sees_a_test_image(tmp_path):
    pl.DataFrame({"id": [0], "captions": ["a => b => c => d"], "image_url": ["img0"]}).write_csv(tmp_path / TEST_FILE)
    expanded = pl.DataFrame(
        {"positive": ["a => b => c => d", "e => f => g => h"], "negative": ["x => y => z => w"] * 2,
         "image_url": ["img0", "img1"]}
    ).write_csv()  # fmt: skip
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(expanded.encode()))
    h = train_hierarchy(tmp_path)
    assert sorted(h.names) == ["e", "f", "g", "h"]
    assert read_test_chains(tmp_path).tolist() == [["a", "b", "c", "d"]]


def test_bad_chains_are_refused(tmp_path):
    pl.DataFrame({"id": [0], "captions": ["a => b => c"], "image_url": ["i"]}).write_csv(tmp_path / TEST_FILE)
    with pytest.raises(ValueError, match="without 4 levels"):
        read_test_chains(tmp_path)


def test_retrieval_asks_each_chain_for_its_more_general_captions():
    chains = np.array([["animal", "dog", "a small dog", "a small dog on grass"],
                       ["animal", "cat", "a cat", "a cat asleep"]])  # fmt: skip
    pool, index, queries, relevant = retrieval_task(chains)
    assert len(pool) == 7 and pool[index[1, 3]] == "a cat asleep"
    assert pool[queries].tolist() == ["a small dog on grass", "a cat asleep"]
    assert sorted(pool[relevant[0]]) == ["a small dog", "animal", "dog"]
    assert sorted(pool[relevant[1]]) == ["a cat", "animal", "cat"]


def test_retrieval_precision_and_recall_by_hand():
    # one query, pool of 5: relevant {0, 1}; eligible all but 4; nearest first: 2, 0, 4 (not eligible), 3, 1
    distance = np.array([[0.2, 0.9, 0.1, 0.5, 0.15]])
    eligible = np.array([[True, True, True, True, False]])
    relevant = np.array([[True, True, False, False, False]])
    got = chain_retrieval(distance, eligible, relevant, ks=(1, 2, 4))
    assert got["retrieval_precision_at_1"] == 0.0 and got["retrieval_recall_at_1"] == 0.0  # 2 first
    assert got["retrieval_precision_at_2"] == 0.5 and got["retrieval_recall_at_2"] == 0.5  # 2, 0
    assert got["retrieval_precision_at_4"] == 0.5 and got["retrieval_recall_at_4"] == 1.0  # 2, 0, 3, 1
