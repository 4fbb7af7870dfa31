"""HierarCaps: chains as a closure, train rows apart from test images, hierarchical retrieval."""

from __future__ import annotations

import gzip

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hierarchies.hierarcaps import (
    EXPANDED_FILE,
    TEST_FILE,
    chains_hierarchy,
    read_test_chains,
    retrieval_task,
    train_hierarchy,
    two_way_pairs,
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
    # a row without an image is no test image: it trains (a tester's find: it was dropped without a word)
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(b"positive,negative,image_url\np => q => r => s,x,\n"))
    assert sorted(train_hierarchy(tmp_path).names) == ["p", "q", "r", "s"]
    # captions are joined by " => ": "a=>b" is one caption, never two (a tester's find)
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(b"positive,negative,image_url\np => q => r=>s => t,x,i\n"))
    assert sorted(train_hierarchy(tmp_path).names) == ["p", "q", "r=>s", "t"]


def test_bad_chains_are_refused_naming_the_file_and_line(tmp_path):
    """A chain of 3 captions said "1 chains without 4 levels, e.g. ..." without its file
    or line, and an empty field ended in numpy's "setting an array element with a sequence"."""
    pl.DataFrame({"id": [0], "captions": ["a => b => c"], "image_url": ["i"]}).write_csv(tmp_path / TEST_FILE)
    with pytest.raises(ValueError, match=r"hierarcaps_test.csv line 2: 'a => b => c' is not 4 captions joined by"):
        read_test_chains(tmp_path)
    directory = _directory(tmp_path, ["a => b => c => d", "e => f", "g => h => i => j => k"])
    with pytest.raises(ValueError, match=r"test_expanded.csv.gz line 3: 'e => f' is not 4 .* \(2 such chains\)$"):
        train_hierarchy(directory)
    expanded = b"positive,negative,image_url\na => b => c => d,x,i0\n,x,i1\n"  # line 3: no positive
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(expanded))
    with pytest.raises(ValueError, match=r"hierarcaps_test_expanded.csv.gz line 3: no chain$"):
        train_hierarchy(tmp_path)


def test_captions_are_stripped_an_empty_one_refused_and_lines_counted_as_the_file_has_them(tmp_path):
    """The breaking helper's finds: `bird  =>   blue bird` made the nodes 'bird ' and
    '  blue bird' beside 'bird' (44 captions of the published training chains have such
    a space); `a =>  => c => d` made '' a node; and after a quoted caption over two
    lines an error named the record's number, not its line."""
    directory = _directory(tmp_path, ["bird  =>   blue bird => a blue bird => A blue bird on a branch ",
                                      "bird => blue bird => a blue bird => a blue bird asleep"])  # fmt: skip
    names = sorted(train_hierarchy(directory).names)
    assert names == ["A blue bird on a branch", "a blue bird", "a blue bird asleep", "bird", "blue bird"]
    expanded = 'positive,negative,image_url\n"a => b => c => d\nover two lines",x,i0\ne => f => g => h,x,i1\n' \
        "p =>  => r => s,x,i2\n"  # fmt: skip
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(expanded.encode()))
    with pytest.raises(ValueError, match=r"test_expanded.csv.gz line 5: 'p =>  => r => s' has an empty caption$"):
        train_hierarchy(tmp_path)
    (tmp_path / EXPANDED_FILE).write_bytes(expanded.replace("p =>  => r", "p => r").encode())  # not gzipped: read too
    with pytest.raises(ValueError, match=r"test_expanded.csv.gz line 5: 'p => r => s' is not 4 captions"):
        train_hierarchy(tmp_path)


def test_an_empty_or_damaged_file_is_a_one_line_error_naming_it(tmp_path):
    """An empty `hierarcaps_test_expanded.csv.gz` (0 bytes, or gzip of nothing) ended in
    polars' NoDataError traceback; a cut gzip stream said "unexpected end of file" alone."""
    for empty in (b"", gzip.compress(b"")):
        (_directory(tmp_path, ["a => b => c => d"]) / EXPANDED_FILE).write_bytes(empty)
        with pytest.raises(ValueError, match=f"^{tmp_path / EXPANDED_FILE}: empty, not HierarCaps'"):
            train_hierarchy(tmp_path)
    (tmp_path / TEST_FILE).write_bytes(b"")
    for read in (train_hierarchy, read_test_chains):
        with pytest.raises(ValueError, match=f"^{tmp_path / TEST_FILE}: empty"):
            read(tmp_path)
    whole = gzip.compress(b"positive,negative,image_url\n" + b"a => b => c => d,x,i0\n" * 500)
    (_directory(tmp_path, []) / EXPANDED_FILE).write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=f"^{tmp_path / EXPANDED_FILE}: cannot be read as CSV \\(unexpected end"):
        train_hierarchy(tmp_path)
    (tmp_path / EXPANDED_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / EXPANDED_FILE}: no such file"):
        train_hierarchy(tmp_path)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("which", [TEST_FILE, EXPANDED_FILE])
def test_a_record_with_more_fields_than_the_header_is_refused_naming_its_line(tmp_path, which, compressed):
    """polars' "found more fields than defined in 'Schema'" named no line: the error now
    names the line the record starts on (after a caption quoted over two lines, so
    line and record differ) and how many fields it has, in either file, gzipped or not."""
    _directory(tmp_path, ["a => b => c => d"])
    header = b"id,captions,image_url\n" if which == TEST_FILE else b"positive,negative,image_url\n"
    rows = b'"a => b => c\n => d",x,i0\n' + b"a => b => c => d,x,i1\n" + b"a => b => c => d,x,i2,extra\n"
    (tmp_path / which).write_bytes(gzip.compress(header + rows, mtime=0) if compressed else header + rows)
    with pytest.raises(ValueError, match=f"^{tmp_path / which} line 5: 4 fields, the header has 3$"):
        read_test_chains(tmp_path) if which == TEST_FILE else train_hierarchy(tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([TEST_FILE, EXPANDED_FILE]), cut=st.floats(0.0, 1.0), compressed=st.booleans())
def test_any_cut_of_either_file_reads_or_is_one_error_naming_it(tmp_path, which, cut, compressed):
    """The kind: a file of the directory cut anywhere, as it is stored (the expanded file
    gzipped, the test file plain or gzipped bytes under its name), gives the chains
    before the cut or one ValueError that names the file, never another exception."""
    chains = [f"top{i} => mid{i} => low{i} => caption number {i}" for i in range(40)]
    _directory(tmp_path, chains, test=[f"t{i} => u{i} => v{i} => w{i}" for i in range(20)])
    data = (tmp_path / which).read_bytes()
    if compressed and which == TEST_FILE:
        data = gzip.compress(data)
    (tmp_path / which).write_bytes(data[: int(len(data) * cut)])
    for read in (train_hierarchy, read_test_chains):
        try:
            read(tmp_path)
        except ValueError as err:
            assert str(tmp_path) in str(err) and "\n" not in str(err), err


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


def _directory(tmp_path, positives: list[str], test: list[str] | None = None, images: str = "t"):
    """A HierarCaps directory: `test` chains (one of its own by default), their images
    named `images` 0, 1, ..., and the expanded file's `positives`, of images i0, i1, ..."""
    test = ["t => u => v => w"] if test is None else test
    pl.DataFrame(
        {"id": range(len(test)), "captions": test, "image_url": [f"{images}{i}" for i in range(len(test))]},
        schema={"id": pl.Int64, "captions": pl.String, "image_url": pl.String},
    ).write_csv(tmp_path / TEST_FILE)
    expanded = pl.DataFrame(
        {"positive": positives, "negative": positives, "image_url": [f"i{i}" for i in range(len(positives))]},
        schema={"positive": pl.String, "negative": pl.String, "image_url": pl.String},
    ).write_csv()
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(expanded.encode()))
    return tmp_path


def test_a_caption_twice_in_a_chain_is_refused_with_its_line(tmp_path):
    """It was dropped quietly: `cat => cat => cat => cat` gave a node without edges."""
    directory = _directory(tmp_path, ["animal => dog => puppy => small puppy", "cat => cat => cat => cat"])
    with pytest.raises(ValueError, match=r"hierarcaps_test_expanded.csv.gz line 3: 'cat' twice in one chain"):
        train_hierarchy(directory)
    _directory(tmp_path, ["a => b => c => d"], test=["a => b => c => d", "x => y => x => z"])
    with pytest.raises(ValueError, match=r"hierarcaps_test.csv line 3: 'x' twice"):
        read_test_chains(tmp_path)
    with pytest.raises(ValueError, match="'cat' is its own ancestor"):  # chains given as they are
        chains_hierarchy(np.array([["cat", "cat", "cat", "cat"]]))


def test_chains_that_go_round_are_refused_and_pairs_ordered_both_ways_dropped_and_counted(tmp_path):
    """The published chains order 14 pairs of near-synonyms both ways (food => dish, dish =>
    food): such a pair tells no order, and both its pairs are left out; a cycle through
    three chains or more is refused, naming its captions."""
    chains = np.array([["animal", "dog", "puppy", "small puppy"], ["food", "dish", "soup", "hot soup"],
                       ["dish", "food", "salad", "green salad"]])  # fmt: skip
    assert two_way_pairs(chains).tolist() == [["dish", "food"]]
    h = chains_hierarchy(chains)
    pairs = {(h.names[c], h.names[a]) for c, a in h.edges}
    assert ("dish", "food") not in pairs and ("food", "dish") not in pairs and ("soup", "food") in pairs
    assert h.n_edges == 3 * 6 - 2
    reversed_chain = np.array([["animal", "dog", "puppy", "small puppy"], ["small puppy", "puppy", "dog", "animal"]])
    assert len(two_way_pairs(reversed_chain)) == 6 and chains_hierarchy(reversed_chain).n_edges == 0
    round_ = np.array([["a", "b", "c", "d"], ["d", "e", "f", "g"], ["g", "h", "i", "a"]])  # a above d above g above a
    with pytest.raises(ValueError, match=r"not a hierarchy: its edges go round, '[a-i]' -> "):
        chains_hierarchy(round_)
    with pytest.raises(ValueError, match="its edges go round"):
        train_hierarchy(_directory(tmp_path, [" => ".join(chain) for chain in round_]))


def test_files_without_chains_are_one_line_errors(tmp_path):
    """A header-only file gave `IndexError: tuple index out of range`."""
    with pytest.raises(ValueError, match=f"no edges in {tmp_path / EXPANDED_FILE}"):
        train_hierarchy(_directory(tmp_path, []))
    with pytest.raises(ValueError, match=r"no edges in .*: it holds no chain"):  # every image a test image
        train_hierarchy(_directory(tmp_path, ["a => b => c => d"], test=["a => b => c => d"], images="i"))
    with pytest.raises(ValueError, match=f"no edges in {tmp_path / TEST_FILE}"):
        read_test_chains(_directory(tmp_path, ["a => b => c => d"], test=[]))


def test_files_without_the_columns_read_are_one_line_errors_naming_them(tmp_path):
    """The breaking helper's find: a directory of other CSVs ended in polars'
    ColumnNotFoundError traceback (`"image_url" not found`), from train and evaluate."""
    (tmp_path / TEST_FILE).write_text("a,b\n1,2\n")
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(b"a,b\n1,2\n"))
    said = f"{tmp_path / TEST_FILE}: no column 'captions', 'image_url' (its columns: a, b)"
    for read in (train_hierarchy, read_test_chains):
        with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
            read(tmp_path)
    _directory(tmp_path, ["a => b => c => d"], test=["e => f => g => h"])  # a right test file, an expanded one without
    (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(b"positive,negative\na => b => c => d,x\n"))
    with pytest.raises(ValueError, match=r"no column 'image_url' \(its columns: positive, negative\)"):
        train_hierarchy(tmp_path)
