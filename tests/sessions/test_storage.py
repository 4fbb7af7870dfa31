"""Locations: local paths and URIs (fsspec's memory://, S3 on a local moto endpoint),
inputs by directory and pattern, outputs published so that a killed job never leaves
one that looks complete, and one-line errors for locations that cannot work."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import itertools
import json
import lzma
import os
import pickle
import random
import re
from collections.abc import Callable
from pathlib import Path

import lz4.frame
import polars as pl
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from pyarrow.fs import FileSelector

from sessions import io, storage
from sessions.ingest import ingest
from sessions.missions import MissionConfig
from sessions.pipeline import segment_logs
from sessions.segment import SegmentConfig

SCHEMA = {"a": pl.Int64()}


@pytest.fixture
def memory_root(request) -> str:
    root = f"memory://tests/{request.node.name}"
    yield root
    storage.remove(root)


def test_join_name_parent_keep_the_kind_of_location(tmp_path):
    assert storage.join("s3://b/out", "x", "y.parquet") == "s3://b/out/x/y.parquet"
    assert storage.join("s3://b/out/", "x") == "s3://b/out/x"
    assert storage.join(str(tmp_path), "x") == str(tmp_path / "x")
    assert storage.name("s3://b/out/sessions.parquet/") == "sessions.parquet"
    assert storage.parent("gs://b/out/pairs") == "gs://b/out"
    assert storage.scheme("ABFS://c@a/x") == "abfs" and storage.scheme("rel/path") == ""
    assert storage.is_local("file:///tmp/x") and not storage.is_local("memory://x")


def test_inputs_by_directory_and_pattern_in_name_order(tmp_path, memory_root):
    for root in (str(tmp_path / "logs"), memory_root):
        for name in ("b.tsv", "a.tsv", "sub/c.tsv", ".hidden.tsv", "_SUCCESS", "notes.txt"):
            storage.write_text("x\n", storage.join(root, name))
        names = [storage.name(f) for f in storage.expand([root])]
        assert names == ["a.tsv", "b.tsv", "notes.txt", "c.tsv"], root  # sorted by location; hidden left out
        assert [storage.name(f) for f in storage.expand([storage.join(root, "*.tsv")])] == ["a.tsv", "b.tsv"]
        assert len(storage.expand([storage.join(root, "b.tsv"), storage.join(root, "a.tsv")])) == 2
    local = storage.expand([str(tmp_path / "logs")])
    assert local[0] == str(tmp_path / "logs" / "a.tsv")  # local paths stay paths, not URIs


def test_a_delta_or_iceberg_table_is_refused_in_one_line_not_read_as_its_files(tmp_path, memory_root):
    """A Delta Lake directory was read as every part file it holds, those of rows an
    UPDATE or DELETE has since replaced included (its `_delta_log`, a hidden name, was
    skipped): duplicated and stale rows without a word. Only its log tells the live
    files, so the directory is refused, saying how to read it; a directory holding
    another `metadata/` or a `_delta_log` name that is no log is read as before."""
    tables = {"_delta_log/00000000000000000000.json": "a Delta Lake table (its _delta_log)",
              "metadata/v2.metadata.json": "an Apache Iceberg table (its metadata/)"}  # fmt: skip
    for (log, said), root in itertools.product(tables.items(), (str(tmp_path), memory_root)):
        root = storage.join(root, log.split("/")[0].strip("_"))
        for name in ("part-00000-a.snappy.parquet", "part-00001-b.snappy.parquet", log):
            storage.write_text("x\n", storage.join(root, name))
        with pytest.raises(ValueError, match=re.escape(said)) as refused:
            storage.expand([root])
        assert "\n" not in str(refused.value) and "would be read as well" in str(refused.value)
    for name in ("metadata/notes.json", "_delta_log.txt", "docs/_delta_log"):
        storage.write_text("x\n", storage.join(str(tmp_path / "plain"), name))
    assert [storage.name(f) for f in storage.expand([str(tmp_path / "plain")])] == ["notes.json"]


@pytest.mark.parametrize("missing", ["nothing-here", "*.nothing"])
def test_missing_inputs_are_one_line_errors(tmp_path, missing):
    with pytest.raises(FileNotFoundError, match=r"no such file|no file matches"):
        storage.expand([str(tmp_path / missing)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty directory"):
        storage.expand([str(tmp_path / "empty")])


def test_a_symbolic_link_that_reaches_no_file_says_why(tmp_path):
    """A link loop and a dangling link said "no such file or directory", though the
    name is there: each now says what the link is, as a one-line error."""
    (tmp_path / "one").symlink_to(tmp_path / "two")
    (tmp_path / "two").symlink_to(tmp_path / "one")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone.tsv")
    with pytest.raises(FileNotFoundError, match=r"/one: a symbolic link that loops$"):
        storage.expand([str(tmp_path / "one")])
    with pytest.raises(FileNotFoundError, match=rf"/dangling: a symbolic link to {tmp_path}/gone.tsv, which does not"):
        storage.expand([str(tmp_path / "dangling")])
    (tmp_path / "gone.tsv").write_text("x\n")
    assert storage.expand([str(tmp_path / "dangling")]) == [str(tmp_path / "dangling")]


def test_links_to_directories_are_entered_once_and_a_loop_ends(tmp_path):
    """Two links from a log directory to itself made `ingest DIR` list 2^40 paths (it
    ran out of memory): pyarrow's recursive listing follows every link. A link back
    into the directory is not entered (its files are listed under their own path), a
    directory outside is entered once however many links lead to it."""
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    for directory in (logs / "sub", outside):
        directory.mkdir(parents=True)
    for file in (logs / "a.tsv", logs / "sub" / "b.tsv", outside / "c.tsv"):
        file.write_text("x\n")
    (logs / "self").symlink_to(logs)
    (logs / "self2").symlink_to(logs)
    (logs / "sub" / "up").symlink_to(logs / "sub")
    (logs / "far").symlink_to(outside)
    (logs / "far2").symlink_to(outside)
    (outside / "back").symlink_to(logs)
    (outside / "me").symlink_to(outside)
    assert storage.expand([str(logs)]) == [
        str(logs / "a.tsv"),
        str(logs / "far" / "c.tsv"),
        str(logs / "sub" / "b.tsv"),
    ]
    assert storage.expand([str(logs / "**" / "*.tsv")]) == storage.expand([str(logs)])


def test_a_scheme_nobody_handles_says_what_to_install():
    with pytest.raises(storage.StorageError) as err:
        storage.expand(["nosuchfs://bucket/logs"])
    message = str(err.value)
    assert "\n" not in message and "nosuchfs://" in message and "pip install" in message


@pytest.mark.parametrize("root_kind", ["local", "s3"])
def test_a_dataset_is_complete_only_with_its_manifest(tmp_path, request, root_kind):
    root = str(tmp_path) if root_kind == "local" else request.getfixturevalue("s3")
    path = storage.join(root, "d.parquet")
    with io.ParquetSink(path, SCHEMA) as sink:
        sink.write(pl.DataFrame({"a": [1, 2]}))
        sink.write(pl.DataFrame({"a": [3]}))
    assert io.read_table(path)["a"].to_list() == [1, 2, 3] and io.parquet_rows(path) == 3
    manifest = io.read_json(storage.join(path, io.MANIFEST))
    assert manifest["rows"] == 3 and [p["rows"] for p in manifest["parts"]] == [2, 1]

    # A run killed half-way: the published dataset stays as it was, its parts untouched.
    with pytest.raises(RuntimeError), io.ParquetSink(path, SCHEMA) as sink:
        sink.write(pl.DataFrame({"a": [9, 9, 9]}))
        raise RuntimeError("killed")
    assert io.read_table(path)["a"].to_list() == [1, 2, 3]
    assert len(storage.list_files(path)) == 2

    # A replacement deletes the parts of the run it replaces.
    with io.ParquetSink(path, SCHEMA) as sink:
        sink.write(pl.DataFrame({"a": [7]}))
    assert io.read_table(path)["a"].to_list() == [7] and len(storage.list_files(path)) == 1

    # Parts without a manifest (a job that died before publishing) are not an output.
    storage.remove(storage.join(path, io.MANIFEST))
    assert not io.is_complete(path)
    with pytest.raises(io.IncompleteOutputError, match="unfinished output"):
        io.read_table(path)


def test_a_with_block_that_fails_raises_its_own_error_when_a_write_failed_too(tmp_path, monkeypatch):
    """The code reviewer's find: when the block raised and a part written in the
    background failed as well, the caller saw the write's error (a full disk), its own
    only as the `__context__`. The new parts are removed all the same."""
    monkeypatch.setattr(io, "write_parquet", lambda frame, path: (_ for _ in ()).throw(OSError("disk full")))
    path = tmp_path / "d.parquet"
    with pytest.raises(KeyError, match="the caller's own") as raised, io.ParquetSink(path, SCHEMA) as sink:
        sink.write(pl.DataFrame({"a": [1]}))
        raise KeyError("the caller's own")
    assert raised.value.__notes__ == ["and a part's write failed too: OSError: disk full"]  # not lost either
    assert not path.exists()
    with pytest.raises(OSError, match="disk full"), io.ParquetSink(path, SCHEMA) as sink:  # alone, it is raised
        sink.write(pl.DataFrame({"a": [1]}))
    assert not path.exists()


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    which=st.integers(0, 3),
    damage=st.sampled_from(["cut", "junk", "missing", "other table", "manifest junk", "manifest rows"]),
    cut=st.floats(0.0, 0.99),
)
def test_a_damaged_part_of_a_dataset_is_named_by_every_reader(tmp_path_factory, sizes, which, damage, cut):
    """The breaking helper's find: an `ingest` output's part cut to 5 KB or overwritten
    ended `segment` and `mine` in polars' ComputeError traceback at the first `collect`
    (a lazy scan reads a part's footer only then). Now every reader of a job's table
    (`read_table`, `scan_table`, `parquet_rows`, `copy_table`) checks each part's footer
    and rows against the manifest first: one ValueError naming the file."""
    root = tmp_path_factory.mktemp("damaged")
    path = str(root / "d.parquet")
    with io.ParquetSink(path, SCHEMA) as sink:
        for i, n in enumerate(sizes):
            sink.write(pl.DataFrame({"a": list(range(i * 100, i * 100 + n))}))
    parts = io.dataset_parts(path)
    part = parts[which % len(parts)]
    data = Path(part).read_bytes()
    manifest = storage.join(path, io.MANIFEST)
    named = part
    if damage == "cut":
        Path(part).write_bytes(data[: int(len(data) * cut)])
    elif damage == "junk":
        Path(part).write_bytes(b"not parquet at all" * int(1 + cut * 10))
    elif damage == "missing":
        os.remove(part)
    elif damage == "other table":  # a valid Parquet file with another row count in its place
        pl.DataFrame({"a": list(range(sizes[which % len(parts)] + 1))}).write_parquet(part)
    elif damage == "manifest junk":
        storage.write_text("{not json", manifest)
        named = manifest
    else:
        listed = json.loads(storage.read_text(manifest))
        listed["parts"][which % len(parts)]["rows"] += 1
        storage.write_text(json.dumps(listed), manifest)
    for read in (io.read_table, lambda p: io.scan_table(p).collect(), io.parquet_rows,
                 lambda p: io.copy_table(p, str(root / "copy.parquet"))):  # fmt: skip
        with pytest.raises(ValueError) as err:
            read(path)
        assert str(err.value).startswith(f"{named}: ") and "\n" not in str(err.value), err.value


def test_an_empty_dataset_still_tells_its_schema(s3):
    path = storage.join(s3, "empty.parquet")
    with io.ParquetSink(path, {"a": pl.Int64(), "b": pl.String()}):
        pass
    assert io.read_table(path).schema == pl.Schema({"a": pl.Int64(), "b": pl.String()})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=30), max_size=6))
def test_a_dataset_reads_back_every_frame_written_in_order(tmp_path_factory, frames):
    path = str(tmp_path_factory.mktemp("property") / "d.parquet")
    with io.ParquetSink(path, SCHEMA) as sink:
        for values in frames:
            sink.write(pl.DataFrame({"a": values}, schema=SCHEMA))
    assert io.read_table(path)["a"].to_list() == [v for values in frames for v in values]
    assert io.parquet_rows(path) == sum(map(len, frames))


def test_a_file_write_is_atomic(s3):
    path = storage.join(s3, "out", "r.json")
    io.write_json({"v": 1}, path)
    with pytest.raises(RuntimeError), storage.open_output(path) as stream:
        stream.write(b'{"v": 2')
        raise RuntimeError("killed")
    assert io.read_json(path) == {"v": 1}
    fs, prefix = storage.resolve(storage.join(s3, "out"))
    every = [entry.base_name for entry in fs.get_file_info(FileSelector(prefix, recursive=True))]
    assert every == ["r.json"]  # no temporary file left behind


def test_a_file_written_at_a_symbolic_link_is_written_through_it(tmp_path):
    """As a shell's `>` does: the link stays, its target holds the bytes (a figure or a
    synth log written at a link replaced the link with a file); a dangling link's
    target is made."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "f.png").symlink_to(tmp_path / "shared" / "f.png")
    (tmp_path / "dangling.tsv").symlink_to(tmp_path / "shared" / "new.tsv")
    for name, target in (("f.png", "f.png"), ("f.png", "f.png"), ("dangling.tsv", "new.tsv")):
        written = f"bytes of {name}".encode()
        storage.write_bytes(written, tmp_path / name)
        assert (tmp_path / name).is_symlink() and (tmp_path / "shared" / target).read_bytes() == written
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["f.png", "new.tsv"]  # no temporary file left
    (tmp_path / "deep.png").symlink_to(tmp_path / "new" / "deeper" / "f.png")
    storage.check_writable_file(tmp_path / "deep.png", "--figure")  # the target's directory, made as a file's is
    assert (tmp_path / "new" / "deeper").is_dir()


def test_an_output_of_another_job_is_kept_unless_overwrite(tmp_path):
    out = str(tmp_path / "out")
    io.write_json(
        {"outputs": {"events.parquet": storage.join(out, "events.parquet")}}, storage.join(out, "report.json")
    )
    io.write_table(pl.DataFrame({"a": [1]}), storage.join(out, "events.parquet"))
    with pytest.raises(ValueError, match=r"another job's output.*--overwrite"):
        io.claim_output(out, "sessions.parquet")
    assert storage.exists(storage.join(out, "report.json"))
    io.claim_output(out, "events.parquet")  # the same job again: fine, and not complete until it is done
    assert not storage.exists(storage.join(out, "report.json"))
    assert not storage.exists(storage.join(out, "events.parquet"))  # its earlier table is not mixed in
    io.write_table(pl.DataFrame({"a": [1]}), storage.join(out, "events.parquet"))
    io.write_json(
        {"outputs": {"events.parquet": storage.join(out, "events.parquet")}}, storage.join(out, "report.json")
    )
    with pytest.raises(ValueError, match="a file is there"):
        io.claim_output(storage.join(out, "report.json"), "x")
    io.claim_output(out, "sessions.parquet", overwrite=True)
    assert storage.list_files(out, hidden=True) == []  # replaced whole: nothing of the other job is mixed in


# The names of a dataset's files (`io.part_name`, `io.MANIFEST`, theirs while `storage.open_output` writes them, and
# what file browsers leave),
# and names a user's directory may hold, some of them nearly those
DATASET_FILES = ["_manifest.json", "part-0a1b2c3d-00000.parquet", "part-0a1b2c3d-00001.parquet",
                 "._manifest.json.tmp-0123456789ab", ".part-0a1b2c3d-00002.parquet.tmp-0123456789ab",
                 ".DS_Store", "Thumbs.db", "._part-0a1b2c3d-00000.parquet", ".directory"]  # fmt: skip
USER_FILES = ["part-0.parquet", "data.parquet", "notes.txt", "_manifest.json.bak", "sub/part-0a1b2c3d-00000.parquet",
              ".hidden", "part-0A1B2C3D-00000.parquet", "_manifest.json.tmp-0123456789ab"]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(ours=st.sets(st.sampled_from(DATASET_FILES)), others=st.sets(st.sampled_from(USER_FILES)))
def test_only_a_directory_of_parts_and_their_manifest_is_taken_for_a_jobs_table(tmp_path_factory, ours, others):
    """A job replaces the table of its name in its output, and deletes the parts of
    earlier runs in it: a user's directory of that name, holding any file that is not
    one of a dataset's, is refused whole, with or without --overwrite."""
    out = tmp_path_factory.mktemp("out")
    for name in ours | others:
        (out / "events.parquet" / name).parent.mkdir(parents=True, exist_ok=True)
        (out / "events.parquet" / name).write_bytes(b"mine")
    before = snapshot(out)
    why = io.not_a_table(out / "events.parquet")
    if not others:
        assert why == ""
        io.claim_output(out, "events.parquet")
        return
    assert why.startswith("a directory holding other files (") and min(others) in why
    for job, overwrite in itertools.product(["events.parquet", "sessions.parquet"], [False, True]):
        with pytest.raises(ValueError, match=r"its events\.parquet is a directory holding other files"):
            io.claim_output(out, job, overwrite=overwrite)
    assert snapshot(out) == before


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("root_kind", ["local", "s3"])
def test_a_file_or_directory_of_a_users_named_like_a_table_is_no_jobs_table(tmp_path, request, root_kind):
    root = str(tmp_path) if root_kind == "local" else request.getfixturevalue("s3")
    io.write_table(pl.DataFrame({"a": [1]}), storage.join(root, "ok", "sessions.parquet"))
    storage.write_text("mine", storage.join(root, "file", "sessions.parquet"))
    storage.write_text("mine", storage.join(root, "dir", "sessions.parquet", "notes.txt"))
    assert io.not_a_table(storage.join(root, "ok", "sessions.parquet")) == ""
    assert io.not_a_table(storage.join(root, "nothing", "sessions.parquet")) == ""
    assert io.not_a_table(storage.join(root, "file", "sessions.parquet")) == "a file"
    assert io.not_a_table(storage.join(root, "dir", "sessions.parquet")) == (
        "a directory holding other files (notes.txt)"
    )
    with pytest.raises(ValueError, match=r"its sessions\.parquet is a file, not a table sessionflow wrote"):
        io.write_table(pl.DataFrame({"a": [2]}), storage.join(root, "file", "sessions.parquet"))
    assert storage.read_text(storage.join(root, "file", "sessions.parquet")) == "mine"


AOL = "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(
    f"{u}\tquery {u} {i}\t2006-03-0{1 + i % 3} 0{i % 10}:1{i % 6}:00\t\t\n" for u in range(1, 6) for i in range(8)
)


def test_ingest_and_segment_on_s3_give_what_local_paths_give(tmp_path, s3):
    """The local engine end to end on S3 (a moto endpoint on 127.0.0.1): inputs by
    pattern, outputs as URIs, rows identical to the same run on local paths."""
    storage.write_text(AOL, f"{s3}/in/part-1.tsv")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-1.tsv").write_text(AOL)
    remote = ingest([f"{s3}/in/*.tsv"], "aol", f"{s3}/ingested")
    local = ingest([str(tmp_path / "in")], "aol", str(tmp_path / "ingested"))
    assert (remote.rows_in, remote.rows_ok) == (local.rows_in, local.rows_ok) == (40, 40)
    assert remote.files[0].path == f"{s3}/in/part-1.tsv"
    assert io.read_table(f"{s3}/ingested/events.parquet").equals(io.read_table(tmp_path / "ingested/events.parquet"))
    assert json.loads(storage.read_text(f"{s3}/ingested/report.json"))["rows_ok"] == 40

    seg, missions = SegmentConfig(), MissionConfig()
    segment_logs([f"{s3}/ingested"], None, f"{s3}/seg", seg, missions)
    segment_logs([str(tmp_path / "ingested")], None, str(tmp_path / "seg"), seg, missions)
    remote_sessions = io.read_table(f"{s3}/seg/sessions.parquet")
    assert remote_sessions.height == 40
    assert remote_sessions.equals(io.read_table(tmp_path / "seg" / "sessions.parquet"))


def test_a_bucket_that_does_not_exist_is_named(s3):
    bucket = s3.removeprefix("s3://").split("/")[0]
    endpoint = os.environ["AWS_ENDPOINT_URL"]  # named: an endpoint that is not the store finds no bucket either
    with pytest.raises(FileNotFoundError, match=rf"the bucket {bucket}-nope does not exist at AWS_ENDPOINT_URL "
                       rf"{endpoint}\)"):  # fmt: skip
        storage.expand([f"s3://{bucket}-nope/logs/"])
    with pytest.raises(storage.StorageError) as err:
        io.write_json({}, f"s3://{bucket}-nope/out/report.json")
    assert "\n" not in str(err.value) and "create the bucket" in str(err.value)
    # an output: the SDK's sentence named its probe's key and request, cut in the middle of its parentheses
    with pytest.raises(storage.StorageError) as err:
        storage.check_writable_dir(f"s3://{bucket}-nope/out", "--output")
    assert str(err.value) == (f"--output s3://{bucket}-nope/out: the bucket {bucket}-nope does not exist at "
                              f"AWS_ENDPOINT_URL {endpoint}: create the bucket first, or check its name")  # fmt: skip


def test_an_endpoint_of_plain_http_given_without_its_scheme_is_named_with_the_fix(s3, monkeypatch):
    """The cluster user's find: `AWS_ENDPOINT_URL=127.0.0.1:9000` (a local MinIO, moto)
    is asked over HTTPS, and every job ended in the SDK's "curlCode: 35, SSL connect
    error; ... wrong version number" (after its retries: about 6 s each here). Reads and
    writes name the endpoint and the setting that works; so for https:// given."""
    bucket = s3.removeprefix("s3://")
    host = os.environ["AWS_ENDPOINT_URL"].removeprefix("http://")

    def told(endpoint: str, fixed: str, variable: str = "AWS_ENDPOINT_URL") -> str:
        why = "" if endpoint.startswith("https://") else " (an endpoint without http:// is asked over HTTPS)"
        return (f"s3://{bucket}: the endpoint {endpoint} ({variable}) does not answer over HTTPS{why}; if it "
                f"speaks plain HTTP, as a local MinIO or moto does, set {variable}={fixed}")  # fmt: skip

    monkeypatch.setenv("AWS_ENDPOINT_URL", host)
    with pytest.raises(storage.StorageError) as err:
        storage.expand([f"{s3}/logs/"])
    assert str(err.value) == told(host, f"http://{host}")
    with pytest.raises(storage.StorageError) as err:
        storage.check_writable_dir(f"{s3}/out", "--output")
    assert str(err.value) == f"--output {told(host, f'http://{host}')}"
    assert (err.value.cause, err.value.reason) == ("unreachable", str(err.value))  # its fix names the endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"https://{host}/")
    with pytest.raises(storage.StorageError) as err:
        io.write_json({}, f"{s3}/out/report.json")
    assert str(err.value) == told(f"https://{host}/", f"http://{host}/")
    # the SDK asks AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL (the change breaker's: the other was named)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", host)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere.invalid:9000")
    with pytest.raises(storage.StorageError) as err:
        storage.expand([f"{s3}/logs/"])
    assert str(err.value) == told(host, f"http://{host}", "AWS_ENDPOINT_URL_S3")


@pytest.mark.parametrize(
    ("location", "fixed"),
    [("s3://bkt/./x", "s3://bkt/x"), ("s3://bkt/a/./b/", "s3://bkt/a/b"), ("s3://bkt/z/../w", "s3://bkt/w"),
     ("s3://bkt//y", "s3://bkt/y"), ("gs://bkt/a//b/c", "gs://bkt/a/b/c"), ("s3://bkt/../x", "s3://bkt/x")],
)  # fmt: skip
def test_a_dot_or_empty_part_in_an_object_stores_key_is_refused_naming_the_key_meant(location, fixed):
    """`-o s3://b/./x` failed in a CopyObject deep in the job (the SDK sends `./x` for
    one request and `x` for another), with a missing bucket's advice; and `s3://b//y`
    with pyarrow's "Empty path component". A key is a name, not a path: refused in one
    line at once, the key meant named."""
    with pytest.raises(storage.StorageError) as err:
        storage.resolve(location)
    assert str(err.value) == (
        f"{location}: an object store's keys are names, not paths: a '.', '..' or empty part in one names "
        f"no folder there; write {fixed}"
    )


def test_keys_with_dots_inside_their_names_and_a_trailing_slash_are_keys(s3):
    for location in (f"{s3}/a.b/..c/.d", f"{s3}/dir/", s3):
        storage.resolve(location)


@pytest.mark.parametrize(
    ("message", "advice"),
    [("Bucket 'nope' not found.", True),  # pyarrow's S3, writing
     ("An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation: The specified bucket does not exist",
      True),  # the AWS SDK
     ("When copying key 'x/.t' in bucket 'bkt' to key 'x/t' in bucket 'bkt': AWS Error NO_SUCH_KEY during "
      "CopyObject operation: The specified key does not exist.", False),  # a key; the bucket is there
     ("Path does not exist 'bkt/x'", False),
     # a request id that holds "403" is no refusal for credentials (the rehearsal's flake)
     ("When initiating multiple part upload for key 'x' in bucket 'nope': AWS Error NO_SUCH_BUCKET during "
      "CreateMultipartUpload operation: The specified bucket does not exist (Request ID: 7d4033e)", True)],
)  # fmt: skip
def test_the_advice_to_create_the_bucket_is_given_for_a_missing_bucket_only(message, advice):
    with pytest.raises(storage.StorageError) as err, storage._errors("s3://bkt/x"):
        raise OSError(message)
    assert ("create the bucket first" in str(err.value)) is advice, str(err.value)


def test_a_jobs_input_in_a_missing_bucket_is_named_as_such(s3, tmp_path):
    """The cluster user's find: `mine s3://typo/sessions` said "no sessions here; run
    `sessionflow segment` first", `train session --pairs s3://typo/pairs` "no pairs here"."""
    from typer.testing import CliRunner

    from workflows.cli import app
    from workflows.jobs.common import pairs_location

    bucket = s3.removeprefix("s3://").split("/")[0]
    said = f"the bucket {bucket}-nope does not exist at AWS_ENDPOINT_URL {os.environ['AWS_ENDPOINT_URL']}"
    with pytest.raises(FileNotFoundError, match=f"^s3://{bucket}-nope/pairs: {said}$"):
        pairs_location(f"s3://{bucket}-nope/pairs")
    done = CliRunner().invoke(app, ["mine", f"s3://{bucket}-nope/sessions", "-o", str(tmp_path / "pairs")])
    assert done.exit_code == 2 and done.output.strip() == f"error: s3://{bucket}-nope/sessions: {said}", done.output
    with pytest.raises(FileNotFoundError, match="no pairs here; run `sessionflow mine` first"):  # the bucket is there
        pairs_location(f"{s3}/pairs")
    assert storage.why_missing(tmp_path / "x", "nothing") == "nothing"


def test_a_missing_bucket_is_named_under_a_pattern_and_refused_as_training_storage(s3):
    bucket = s3.removeprefix("s3://").split("/")[0]
    with pytest.raises(FileNotFoundError, match=rf"no file matches \(the bucket {bucket}-nope does not exist"):
        storage.expand([f"s3://{bucket}-nope/logs/*.gz"])
    with pytest.raises(storage.StorageError) as err:
        storage.check_writable_dir(f"s3://{bucket}-nope/ray-results", "--storage")
    assert "\n" not in str(err.value) and f"{bucket}-nope" in str(err.value)
    storage.check_writable_dir(f"{s3}/ray-results")  # a bucket that is there: fine, and nothing left behind
    assert storage.list_files(f"{s3}/ray-results", hidden=True) == []


def raised(attempt: Callable[[], object]) -> storage.StorageError:
    """The StorageError `attempt()` raises, its message its reason and then its advice, its
    fields kept by pickle (a Ray task's error crosses to the driver so)."""
    with pytest.raises(storage.StorageError) as err:
        attempt()
    assert str(err.value) == err.value.reason + err.value.advice and "\n" not in str(err.value)
    copy, fields = pickle.loads(pickle.dumps(err.value)), lambda e: (str(e), e.reason, e.advice, e.cause)
    assert fields(copy) == fields(err.value)
    return err.value


def test_what_stood_in_the_way_is_told_by_its_cause_with_the_advice_apart(s3, s3_checking_credentials, monkeypatch):
    """`StorageError.cause` where each is raised, for a caller that gives advice of its own
    (a cluster's node: `workflows.distributed.nodes`, which parsed the message for it), and
    the reason apart from the advice the message ends with; the message as it was."""
    bucket, where, hint = s3.removeprefix("s3://"), os.environ["AWS_ENDPOINT_URL"], storage._HINTS["s3"]
    err = raised(lambda: storage.check_writable_dir(f"{s3}-nope/out", "--output"))  # the probe's error, reworded
    assert (err.cause, err.advice) == ("bucket", ": create the bucket first, or check its name")
    assert err.reason == f"--output {s3}-nope/out: the bucket {bucket}-nope does not exist at AWS_ENDPOINT_URL {where}"
    with monkeypatch.context() as node:  # no credentials: the SDK asks anonymously, and may not write
        node.setenv("AWS_ACCESS_KEY_ID", "")
        node.setenv("AWS_SECRET_ACCESS_KEY", "")
        err = raised(lambda: storage.check_writable_dir(f"{s3}/out", "--output"))
    assert (err.cause, err.advice) == ("credentials", f" ({hint})") and "ACCESS_DENIED" in err.reason, err
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_checking_credentials)  # credentials refused: a key it does not know
    err = raised(lambda: storage.info(f"{s3}/credentials.txt"))
    assert (err.cause, err.advice) == ("credentials", f" ({hint})") and "ACCESS_DENIED" in err.reason, err


def test_a_region_looked_up_where_no_endpoint_answers_is_unreachable_whatever_its_advice_names(monkeypatch):
    """`resolve`'s error where AWS_ENDPOINT_URL is not set and AWS does not answer (the
    region of the bucket is looked up there first: the breaker's case, its words here, as
    this machine's answer is not every machine's): the store was not reached, though its
    advice names credentials."""
    said = ("When resolving region for bucket 'bkt': AWS Error NETWORK_CONNECTION during HeadBucket operation: "
            "curlCode: 28, Timeout was reached")  # fmt: skip

    def no_answer(*args: object) -> None:
        raise OSError(said)

    monkeypatch.setattr(storage, "_filesystem", no_answer)
    err = raised(lambda: storage.resolve("s3://bkt/out"))
    assert (err.reason, err.advice, err.cause) == (f"s3://bkt/out: {said}", f"; {storage._HINTS['s3']}", "unreachable")
    err = raised(lambda: storage.check_writable_file("s3://bkt/out/report.json", "--figure"))  # reworded
    assert (err.reason, err.cause) == (f"--figure s3://bkt/out/report.json: {said}", "unreachable")


def test_gcs_is_gs_with_its_short_retry_limit():
    """The second change breaker's find: `gcs://`, pyarrow's alias of `gs://`, kept GCS's
    default retries, so `mine gcs://nobucket/x` without credentials ran for 15 minutes
    (and ignored SIGTERM inside pyarrow's call), where `gs://` ends in about 20 s."""
    assert storage._filesystem("gcs", "b", None).equals(storage._filesystem("gs", "b", None))


def test_contains_compares_locations_not_strings(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "logs")
    assert storage.contains(str(tmp_path / "logs"), str(tmp_path / "link" / "a.tsv"))  # through the link
    assert storage.contains(str(tmp_path), str(tmp_path / "logs" / "*.tsv"))
    assert storage.contains(str(tmp_path / "logs"), str(tmp_path / "logs" / "**" / "*.tsv"))
    assert not storage.contains(str(tmp_path / "logs"), str(tmp_path / "logs2"))  # a prefix is not a parent
    assert storage.contains("s3://b/x", "s3://b/x/y/") and not storage.contains("s3://b/x", "s3://b/xy")
    assert storage.contains("S3://b/x", "s3://b/x/y") and storage.contains("s3://b/x/", "S3://b/x")  # scheme case
    assert not storage.contains("s3://b/x", str(tmp_path))
    assert storage.contains(f"file://localhost{tmp_path}", str(tmp_path / "logs"))
    # a pattern is above a directory only if it could match a file under it
    assert not storage.may_match_under(str(tmp_path / "*.tsv"), str(tmp_path / "out"))
    assert storage.may_match_under(str(tmp_path / "**" / "*.tsv"), str(tmp_path / "out"))
    assert not storage.may_match_under("s3://b/aol/*.gz", "s3://b/aol/sessions")
    assert storage.may_match_under("s3://b/aol/*/x.gz", "s3://b/aol/sessions")


NAME = st.sampled_from(["a", "b", "_c", ".d"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(NAME, max_size=3), NAME.map(lambda n: n + ".tsv")), min_size=1, max_size=8))
def test_globstar_finds_what_the_directory_finds(files):
    """`DIR/**/*.tsv` names the files that DIR itself names (hidden and marker names
    left out at every depth); `DIR/**/_*.tsv` the marker files outside hidden folders."""
    root = "memory://globstar"
    storage.remove(root)
    for folders, name in files:
        storage.write_text("x\n", "/".join([root, *folders, name]))
    visible = [f for f in storage.list_files(root, recursive=True) if f.endswith(".tsv")]
    if visible:
        assert storage.expand([f"{root}/**/*.tsv"]) == visible
    else:
        with pytest.raises(FileNotFoundError, match="no file matches"):
            storage.expand([f"{root}/**/*.tsv"])
    every = storage.list_files(root, recursive=True, hidden=True)
    markers = [f for f in every if storage.name(f).startswith("_")
               and not any(p[:1] in "._" for p in f[len(root) + 1 :].split("/")[:-1])]  # fmt: skip
    if markers:
        assert storage.expand([f"{root}/**/_*.tsv"]) == markers
    storage.remove(root)


def test_what_killed_runs_left_is_removed_and_a_users_hidden_files_kept(tmp_path):
    """Any `.staging-*` entry and any hidden name holding `.tmp-` went, a user's
    `.staging-photos/` and `.vimrc.tmp-1` among them: only the names jobs make go, a
    staging directory only with its marker (a user's dated `.staging-20261205abcd/` went
    too, found by a breaking helper)."""
    ours = [".staging-0a1b2c3d4e5f/b/p.parquet", f".staging-0a1b2c3d4e5f/{io.STAGING_MARKER}",
            ".x.parquet.tmp-0123456789ab"]  # fmt: skip
    users = ["keep.parquet", ".keep-me", ".staging-photos/a.jpg", ".vimrc.tmp-1", ".staging-0a1b2c3d4e5f9",
             ".staging-20261205abcd/a.csv"]  # fmt: skip
    for name in ours + users:
        storage.write_text("", str(tmp_path / name))
    removed = storage.remove_leftovers(str(tmp_path), [io.STAGING_NAME], marker=io.STAGING_MARKER)
    assert sorted(removed) == [".staging-0a1b2c3d4e5f", ".x.parquet.tmp-0123456789ab"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name.split("/")[0] for name in users)
    assert storage.hidden_names(str(tmp_path), io.STAGING_NAME) == [".staging-20261205abcd"]  # a user's: no marker
    # a file or nothing where a directory is looked into: no names (a reader given a file asked for its asides)
    assert storage.hidden_names(str(tmp_path / "keep.parquet"), io.PREVIOUS_NAME) == []
    assert storage.hidden_names(str(tmp_path / "nothing"), io.PREVIOUS_NAME) == []
    assert io.previous_output(str(tmp_path / "keep.parquet")) is None


COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
    ".lz4": lz4.frame.compress,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=4), st.lists(st.integers(1, 5000), min_size=1))
def test_a_compressed_stream_read_in_any_sizes_gives_every_byte_once(tmp_path_factory, suffix, members, sizes):
    """`open_input` of a file of several members or frames of one compression (as `cat
    a.gz b.gz` makes) hands out its bytes in order whatever the sizes asked for:
    `read(n)` gives n bytes until the end."""
    path = tmp_path_factory.mktemp("packed") / f"log.txt{suffix}"
    path.write_bytes(b"".join(COMPRESSORS[suffix](m) for m in members))
    expected, got = b"".join(members), []
    with storage.open_input(path) as stream:
        for size in itertools.cycle(sizes):
            piece = stream.read(size)
            assert len(piece) == min(size, len(expected) - sum(map(len, got)))
            got.append(piece)
            if sum(map(len, got)) == len(expected) and not stream.read(1):
                break
    assert b"".join(got) == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(COMPRESSORS)), st.binary(max_size=64), st.text(max_size=64),
       st.sampled_from(["log.txt", "log.csv", *(f"log.txt{s}" for s in COMPRESSORS)]))  # fmt: skip
def test_the_first_bytes_tell_the_compression_whatever_the_name(suffix, data, text, name):
    """`compression_in`: any data compressed by any of the four is that compression under
    any name (its first `HEAD_BYTES`, or all of a shorter file); text is no compression
    under any name, a compressed file cut in its first bytes neither."""
    packed = COMPRESSORS[suffix](data)
    assert storage.compression_in(packed[: storage.HEAD_BYTES], name) == storage.COMPRESSIONS[suffix]
    head = text.encode()[: storage.HEAD_BYTES]  # a character cut at the end as well
    assert storage.compression_in(head, name) is None


def test_zstd_and_lz4_skippable_frames_go_by_the_frame_after_them(tmp_path):
    """A skippable frame (pzstd writes one first) is zstd's and LZ4's alike: the frame
    after it tells which where the first bytes hold its start (pzstd's output named
    `.lz4` was corrupt LZ4, a breaker's find), else the name, zstd where it tells
    neither; each reads as the file."""
    text = b"1001\tcheap flights\t2006-03-01 07:17:12\n" * 1000
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"  # pzstd's: the frame after it in sight
    long = b"\x50\x2a\x4d\x18" + (16).to_bytes(4, "little") + bytes(16)  # the frame after it out of sight: the name
    zstd, lz4_frame = zstandard.ZstdCompressor().compress(text), lz4.frame.compress(text)
    for name, packed in (("a.zst", zstd), ("a.lz4", lz4_frame), ("a.txt", zstd), ("b.lz4", zstd), ("c.zst", lz4_frame)):
        (tmp_path / name).write_bytes(skippable + packed)
        with storage.open_input(tmp_path / name) as stream:
            assert stream.read() == text
    for name, packed in (("d.zst", zstd), ("d.lz4", lz4_frame), ("d.txt", zstd)):
        (tmp_path / name).write_bytes(long + packed)
        with storage.open_input(tmp_path / name) as stream:
            assert stream.read() == text


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_corrupt_data_loses_only_what_its_compression_cannot_decode(tmp_path, suffix):
    """The breaking helper's find: a corrupt byte in a 12.7 MB `.zst` lost 786 KB of
    intact blocks before it (the output of the whole 256 KiB read that met the damage;
    bz2 and LZ4 alike). Forty members or frames, the 30th damaged in its middle: the 29
    before it come out whole, then `DamagedStreamError` (zstd and LZ4 frames with the
    checksum their command-line tools write, which finds the damage)."""
    frames = [(f"frame {i} " + "".join(f"{(i + 1) * j % 9973} " for j in range(12_000))).encode() for i in range(40)]
    compress = {
        ".zst": lambda data: zstandard.ZstdCompressor(write_checksum=True).compress(data),
        ".lz4": lambda data: lz4.frame.compress(data, content_checksum=True),
    }.get(suffix, COMPRESSORS[suffix])
    packed = [compress(frame) for frame in frames]
    at = sum(map(len, packed[:29])) + len(packed[29]) // 2
    data = bytearray(b"".join(packed))
    data[at : at + 8] = bytes(b ^ 0x5A for b in data[at : at + 8])
    path = tmp_path / f"log.txt{suffix}"
    path.write_bytes(bytes(data))
    got = []
    with storage.open_input(path) as stream, pytest.raises(storage.DamagedStreamError, match="corrupt"):
        while piece := stream.read(10_000):
            got.append(piece)
    before = b"".join(frames[:29])
    assert b"".join(got)[: len(before)] == before


@pytest.mark.parametrize("suffix", [".zst", ".lz4", ".bz2", ".xz"])
def test_damage_inside_one_frame_keeps_the_blocks_decoded_before_it(tmp_path, suffix):
    """The breaking helper's find itself: in one frame (one bz2 stream) of many blocks,
    damage three quarters in lost the blocks decoded from the whole 256 KiB read that
    met it. What a decoder fed 512 bytes at a time gives before the damage is the
    measure: all but the block that 4 KiB of compressed data completes come out. (LZ4
    with block checksums: without them, as its command-line tool writes by default, a
    damaged block is found only at the frame's end, and decodes to what it decodes.)"""
    rng = random.Random(0)
    text = " ".join(f"{rng.randrange(10**6)}" for _ in range(800_000)).encode()  # 5.5 MB, about 2x smaller packed
    packed = bytearray(
        zstandard.ZstdCompressor(write_checksum=True).compress(text) if suffix == ".zst"
        else lz4.frame.compress(text, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_checksum=True)
        if suffix == ".lz4" else lzma.compress(text) if suffix == ".xz" else bz2.compress(text, compresslevel=1)
    )  # fmt: skip
    at = len(packed) * 3 // 4
    packed[at : at + 8] = bytes(b ^ 0x5A for b in packed[at : at + 8])
    path = tmp_path / f"log.txt{suffix}"
    path.write_bytes(bytes(packed))
    decoder = (zstandard.ZstdDecompressor().decompressobj() if suffix == ".zst"
               else lz4.frame.LZ4FrameDecompressor() if suffix == ".lz4"
               else lzma.LZMADecompressor() if suffix == ".xz" else bz2.BZ2Decompressor())  # fmt: skip
    reachable = []
    with contextlib.suppress(Exception):
        for start in range(0, len(packed), 512):
            reachable.append(decoder.decompress(bytes(packed[start : start + 512])))
    reachable = b"".join(reachable)
    got = []
    with storage.open_input(path) as stream, pytest.raises(storage.DamagedStreamError):
        while piece := stream.read(1 << 20):
            got.append(piece)
    got = b"".join(got)
    assert text.startswith(got) and len(reachable) - 150_000 <= len(got) <= len(reachable)  # a block at most lost
    assert len(reachable) > 0.5 * len(text)


@pytest.mark.parametrize("suffix", [".zst", ".lz4", ".xz"])
def test_a_small_file_of_a_huge_ratio_is_decompressed_as_it_is_read(tmp_path, suffix):
    """The breaking helper's find: 62 KB of zstd holding 2 GB of newlines took 3.9 GB and
    26 minutes to read (each 256 KiB read decompressed whole, then the rest of that
    output copied again at each small read). Here 256 MiB of newlines, read 1 MiB at a
    time, never hold more than a few MiB at once."""
    import tracemalloc

    data = b"\n" * (256 << 20)
    path = tmp_path / f"bomb.txt{suffix}"
    path.write_bytes({".zst": zstandard.ZstdCompressor().compress, ".lz4": lz4.frame.compress,
                      ".xz": lzma.compress}[suffix](data))  # fmt: skip
    del data
    read = 0
    tracemalloc.start()
    try:
        with storage.open_input(path) as stream:
            while piece := stream.read(1 << 20):
                read += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read == 256 << 20 and peak < (40 if suffix == ".xz" else 32) << 20  # xz's decoder holds its 8 MiB dictionary


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_zero_padding_after_the_last_member_is_no_damage_however_long(tmp_path, suffix):
    """The breaking helper's find: padding that ran past the 256 KiB read it began in
    made the file DAMAGED (one `truncated_stream` row; `--strict` refused it)."""
    body = b"".join(b"1001\tq %d\t2006-03-01 07:17:12\t\t\n" % i for i in range(2_000))
    path = tmp_path / f"log.txt{suffix}"
    path.write_bytes(COMPRESSORS[suffix](body) + b"\0" * (storage.DecompressingStream.RAW_CHUNK + 4_097))
    with storage.open_input(path) as stream:
        assert stream.read() == body and stream.read() == b""


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [("http://127.0.0.1:9", "could not connect"), ("http://nohost.invalid:9000", "could not resolve host")],
)
def test_an_object_store_that_does_not_answer_is_named_by_bucket_and_endpoint_not_by_a_probed_key(
    endpoint, reason, monkeypatch
):
    """Reading, listing, probing an input for `events.parquet` and writing all say which
    endpoint did not answer, in one line naming the bucket the user gave (the probe's
    key, `logs/events.parquet`, was named before)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    said = f"s3://nowhere: cannot reach the endpoint {endpoint} (AWS_ENDPOINT_URL): {reason}; check the network"
    for attempt in (
        lambda: storage.exists("s3://nowhere/logs/events.parquet"),
        lambda: storage.expand(["s3://nowhere/logs/"]),
        lambda: storage.write_text("x", "s3://nowhere/out/report.json"),
    ):
        with pytest.raises(storage.StorageError) as err:
            attempt()
        assert str(err.value).startswith(said) and "\n" not in str(err.value), err.value
        assert (err.value.cause, err.value.advice) == ("unreachable", "; check the network and AWS_ENDPOINT_URL")


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from(["a", "far", "gone", "..", ".", "b", "deep", "x"]), min_size=1, max_size=7))
def test_a_path_is_made_absolute_where_the_system_takes_it(tmp_path_factory, steps):
    """The third breaking helper's find: `-o far/../x`, `far` a link to another directory,
    wrote to the link's own directory (`..` taken lexically), not where `ls far/../x`
    looks (the parent of the link's target). Any path of links, `.` and `..` now names
    the place the system resolves it to; a `..` after a link that leads nowhere (the
    fourth breaking helper's find: it made up the missing target's directories) is
    refused in one line."""
    root = tmp_path_factory.mktemp("links")
    (root / "a").mkdir()
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a" / "far").symlink_to(root / "b" / "deep")
    (root / "a" / "gone").symlink_to(root / "missing" / "deep")
    here = os.getcwd()
    os.chdir(root / "a")
    try:
        path = os.path.join(*steps)
        before = steps[: len(steps) - steps[::-1].index("..") - 1] if ".." in steps else []
        if any(os.path.islink(p) and not os.path.exists(p) for p in itertools.accumulate(before, os.path.join)):
            with pytest.raises(ValueError, match="is a symbolic link that leads nowhere"):
                storage.absolute(path)
            return
        assert os.path.realpath(storage.absolute(path)) == os.path.realpath(path)
        assert os.path.isabs(storage.absolute(path)) and ".." not in storage.absolute(path).split(os.sep)
        assert storage.resolve(f"file://{root / 'a' / path}")[1] == storage.absolute(root / "a" / path)
    finally:
        os.chdir(here)


def test_a_folder_marker_that_holds_bytes_is_skipped_and_listed_not_read(s3, tmp_path):
    """The breaking helper's find: an object named like a folder (`dm/sub/`, which some
    tools write with bytes in it) beside the folder's objects was listed as the file
    `dm/sub`, and the job failed with "s3://.../dm/sub: no such file"."""
    import boto3

    from sessions.ingest import FOLDER_MARKER_REASON

    bucket = s3.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3")
    prefix = s3.removeprefix(f"s3://{bucket}").strip("/")
    key = f"{prefix}/dm" if prefix else "dm"
    client.put_object(Bucket=bucket, Key=f"{key}/", Body=b"")
    client.put_object(Bucket=bucket, Key=f"{key}/sub/", Body=b"a marker that holds bytes\n")
    log = b"AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n"
    client.put_object(Bucket=bucket, Key=f"{key}/sub/x.tsv", Body=log)
    report = ingest([f"{s3}/dm/"], "aol", str(tmp_path / "out"))
    assert (report.rows_in, report.rows_ok) == (1, 1)
    assert report.skipped_files == [{"path": f"{s3}/dm/sub/", "reason": FOLDER_MARKER_REASON}]
