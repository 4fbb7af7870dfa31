"""WordNet from Debian's database or nltk's data, and the closures of its nouns."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from hierarchies.closure import closure_nodes, depths, mammal_closure, subtree_closure, transitive_closure
from hierarchies.wordnet import LEXNAMES, build_nltk_copy, ensure_wordnet, lexnames_text, noun_graph


@pytest.fixture(scope="module")
def nouns() -> pl.DataFrame:
    return transitive_closure(noun_graph().edges)


def test_lexnames_follows_the_man_page():
    lines = lexnames_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.noun").exists(), reason="Debian's wordnet-base is what this tests"
)
def test_debian_database_becomes_readable_by_nltk(tmp_path, monkeypatch):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk_data")])  # nltk reads only from its path
    target = build_nltk_copy(Path("/usr/share/wordnet"), tmp_path / "nltk_data")
    assert target == tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert build_nltk_copy(Path("/usr/share/wordnet"), tmp_path / "nltk_data") == target  # idempotent
    wn = WordNetCorpusReader(str(target), None)
    assert {h.name() for h in wn.synset("dog.n.01").hypernyms()} == {"canine.n.02", "domestic_animal.n.01"}
    assert wn.get_version() == "3.0"


def test_users_own_nltk_data_is_used_as_it_is(tmp_path, monkeypatch):
    import nltk

    ensure_wordnet.cache_clear()
    own = tmp_path / "own_nltk_data"
    build_nltk_copy(Path(ensure_wordnet()), own)  # any readable WordNet will do
    ensure_wordnet.cache_clear()
    monkeypatch.setattr(nltk.data, "path", [str(own)])
    monkeypatch.setenv("SESSIONFLOW_CACHE", str(tmp_path / "cache"))
    try:
        assert ensure_wordnet() == str(own / "corpora" / "wordnet")
        assert not (tmp_path / "cache").exists()  # nothing was built
    finally:
        ensure_wordnet.cache_clear()


def test_noun_closure_has_every_noun(nouns):
    assert closure_nodes(nouns).len() == 82_115
    assert nouns.height == 743_241  # the reference loop's 743,086 plus 155 through instance chains
    assert nouns.filter(pl.col("id1") == "dog.n.01", pl.col("id2") == "entity.n.01").height == 1
    # instances reach their class and its ancestors, also through other instances
    assert nouns.filter(pl.col("id1") == "einstein.n.01", pl.col("id2") == "physicist.n.01").height == 1
    assert nouns.filter(pl.col("id1") == "jesus.n.01", pl.col("id2") == "hypostasis.n.03").height == 1


def test_mammal_closure_equals_the_reference_edge_for_edge(nouns, is_reference_mammal_closure):
    mammals = mammal_closure(nouns).sort("id1", "id2")
    assert mammals.height == 6_540
    assert closure_nodes(mammals).len() == 1_180
    assert is_reference_mammal_closure(mammals)


def test_subtree_closure_of_any_root(nouns):
    dogs = subtree_closure(nouns, "dog.n.01")
    assert set(dogs["id2"]) >= {"dog.n.01", "hunting_dog.n.01"}
    assert dogs.filter(pl.col("id2") == "canine.n.02").height == 0  # nothing above the root


def test_closure_and_depth_on_a_small_graph():
    edges = pl.DataFrame({"child": ["b", "c", "d", "d"], "parent": ["a", "b", "c", "a"]})
    closure = transitive_closure(edges)
    assert closure.rows() == [("b", "a"), ("c", "a"), ("c", "b"), ("d", "a"), ("d", "b"), ("d", "c")]
    assert dict(depths(edges).rows()) == {"a": 0, "b": 1, "c": 2, "d": 1}  # shortest path up


def test_the_noun_graph_is_the_same_table_whatever_the_hash_seed():
    """The demo user's find: nltk keeps a synset's parents in a set, so the cached edges
    came in the order of the hash seed of the process that built the cache, and `synth
    --seed` (which draws by that order) gave another log on another machine (12,818 to
    12,850 true sessions for the demo's). A process with another hash seed than the one
    that built the cache (a random one, or this run's) extracts the same table, row for row."""
    import hashlib
    import os
    import subprocess
    import sys

    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    code = ("import hashlib; from hierarchies.wordnet import _extract_noun_graph; "
            "print(hashlib.sha256(_extract_noun_graph().edges.write_csv().encode()).hexdigest())")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == hashlib.sha256(noun_graph().edges.write_csv().encode()).hexdigest()
