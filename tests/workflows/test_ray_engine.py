"""The Ray engine gives the local engine's outputs, and cluster.yaml is a valid Ray
cluster config. A real local Ray runs these (started once for the module)."""

from __future__ import annotations

import copy
import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from sessions.ingest import ingest as local_ingest
from sessions.io import read_table
from sessions.missions import MissionConfig
from sessions.pairs import MiningConfig, mine_pairs, order_pairs
from sessions.pipeline import segment_logs
from sessions.segment import SegmentConfig
from synth import SynthConfig, write_log
from workflows.distributed.runtime import ray_runtime

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    with ray_runtime(num_cpus=2):
        yield


@pytest.fixture(scope="module")
def logs(tmp_path_factory, tiny_taxonomy) -> list[Path]:
    """Three AOL files (one with broken rows), as a collection split by user ranges."""
    tmp = tmp_path_factory.mktemp("logs")
    write_log(SynthConfig(users=90, rows=6_000, seed=2), tiny_taxonomy, tmp / "all.tsv")
    lines = (tmp / "all.tsv").read_bytes().split(b"\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    paths = []
    for i in range(3):
        part = body[i * 2000 : (i + 1) * 2000]
        if i == 1:
            part[5:5] = [b"broken row", b"7\tcaf\xe9\t2006-03-01 00:00:00\t\t"]
        path = tmp / f"user-ct-test-collection-0{i + 1}.txt"
        path.write_bytes(header + b"\n" + b"\n".join(part) + b"\n")
        paths.append(path)
    return paths


def same(a: pl.DataFrame, b: pl.DataFrame, key: str = "row_id") -> bool:
    return a.sort(key).equals(b.sort(key))


def test_ingest_on_ray_equals_local(ray_cluster, logs, tmp_path):
    from workflows.distributed import data as ray_jobs

    ray_report = ray_jobs.ingest(logs, "aol", tmp_path / "ray", buckets=3)
    local_report = local_ingest(logs, "aol", tmp_path / "local")
    assert (ray_report.rows_in, ray_report.rows_ok, ray_report.rows_rejected) == (6002, 6000, 2)
    both = [list(report.rejected_by_reason.items()) for report in (ray_report, local_report)]
    assert both == [[("bad_encoding", 1), ("wrong_field_count", 1)]] * 2  # in one order: by count, then name
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))


def test_logs_from_the_field_read_alike_on_both_engines(ray_cluster, tmp_path):
    """A directory as people have them: a README, a part with a byte-order mark, parts
    joined with `cat` (a repeated header), query-only rows of three fields, a download
    cut short, wall times of a zone whose clocks went back, a user that is no one, a link
    to a part, a link to nothing, a part named again: the Ray engine reads, skips and
    reports what the local one does (a file once however often it is taken in);
    `--strict` refuses."""
    import gzip

    from sessions.formats import ReadOptions
    from sessions.ingest import DamagedInputError
    from workflows.distributed import data as ray_jobs

    header = b"AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n"
    rows = [b"%d\tquery %d\t2006-03-01 07:%02d:00\t\t\n" % (1000 + i // 50, i, i % 60) for i in range(3000)]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "U500k_README.txt").write_text("500k User Session Collection\n")
    (logs / "user-ct-test-collection-01.txt").write_bytes(b"\xef\xbb\xbf" + header + b"".join(rows[:500]))
    joined = header + b"".join(rows[500:900]) + header + b"".join(r.replace(b"\t\t\n", b"\n") for r in rows[900:1000])
    (logs / "user-ct-test-collection-02.txt").write_bytes(joined)
    packed = gzip.compress(header + b"".join(rows[1000:]))
    (logs / "user-ct-test-collection-03.txt.gz").write_bytes(packed[: len(packed) // 2])
    fold = [b"5000\tq\t2006-10-29 01:%02d:00\t\t\n" % m for m in (10, 50, 5, 20)]  # New York's clocks went back
    (logs / "user-ct-test-collection-04.txt").write_bytes(header + b"".join(fold) + b"-1\tq\t2006-10-29 03:00:00\n")
    (logs / "user-ct-test-collection-05.txt").symlink_to(logs / "user-ct-test-collection-01.txt")
    (logs / "user-ct-test-collection-06.txt").symlink_to(tmp_path / "nowhere")
    (logs / "user-ct-test-collection-07.txt").hardlink_to(logs / "user-ct-test-collection-04.txt")
    options = ReadOptions(timezone="America/New_York", unknown_user=("-1",))
    inputs = [logs, logs / "user-ct-test-collection-02.txt", logs]  # the directory named twice: listed once
    ray_report = ray_jobs.ingest(inputs, "aol", tmp_path / "ray", buckets=3, options=options)
    local_report = local_ingest(inputs, "aol", tmp_path / "local", options=options)
    assert ray_report.skipped_files == local_report.skipped_files
    name = {i: f"user-ct-test-collection-0{i}.txt" + (".gz" if i == 3 else "") for i in range(1, 8)}
    once = {i: f"the same file as {logs / name[i]}: read once" for i in name}
    assert [(Path(s["path"]).name, s["reason"]) for s in ray_report.skipped_files[1:]] == [
        (name[5], once[1]), (name[7], once[4]), (name[6], "a link to nothing"), (name[2], once[2]),
        (name[1], once[1]), (name[3], once[3]), (name[4], once[4])]  # fmt: skip
    assert ray_report.skipped_files[0]["path"].endswith("U500k_README.txt")
    for report in (ray_report, local_report):
        assert report.skipped_lines == {"header": 1} and len(report.files) == 4
        assert report.rejected_by_reason == {"truncated_stream": 1, "unknown_user": 1}
        assert [f.damage is not None for f in report.files] == [False, False, True, False]
        assert report.repeated_hour == {"earlier": 2, "later": 2}
        assert 1500 < report.rows_ok < 3000
    assert ray_report.files == local_report.files
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))
    with pytest.raises(DamagedInputError, match=r"user-ct-test-collection-03\.txt\.gz: damaged"):
        ray_jobs.ingest([logs], "aol", tmp_path / "strict", buckets=3, options=ReadOptions(strict=True))


def test_parquet_tables_as_warehouses_write_them_read_alike_on_both_engines(ray_cluster, tmp_path):
    """Parquet that writers other than pyarrow make: bytes that are not UTF-8 in a
    `string` column (ingested unread into the events, or a segmentation fault), a
    decimal256 column (BigQuery's BIGNUMERIC: a Rust panic), time stamps in a zone
    polars does not know (`UTC+05:30`) and nested ones at an offset (a traceback), int96
    time stamps outside 1677..2262 (wrapped round to other dates), a Java writer's
    Long.MAX_VALUE milliseconds, at the top level or in a struct (a Rust panic) and a DiffusionDB
    file with an extra binary column (every row `bad_encoding`)."""
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    tables = tmp_path / "tables"
    tables.mkdir()
    times = pa.array([datetime(2023, 3, 1, 10, m) for m in range(4)], pa.timestamp("us"))
    not_utf8 = pa.array([b"ok", b"caf\xe9", b"fine", b"x\xff"], pa.binary()).view(pa.string())
    users = pa.array([b"u1", b"u\xe9", b"u1", b"u2"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"uid": ["a", "a", "b", "b"], "ts": times, "q": not_utf8}), tables / "text.parquet")
    pq.write_table(pa.table({"uid": users, "ts": times, "q": ["q1", "q2", "q3", "q4"], "note": not_utf8}),
                   tables / "users.parquet")  # fmt: skip
    wide = pa.array([599381, None, 7, 8]).cast(pa.decimal256(60, 2))
    offset = pa.array([[datetime(2023, 1, 1, tzinfo=UTC)]] * 4, pa.list_(pa.timestamp("us", "+05:30")))
    pq.write_table(pa.table({"uid": ["c"] * 4, "ts": times.cast(pa.timestamp("us", "UTC+05:30")), "q": list("wxyz"),
                             "big": wide, "seen": offset}), tables / "warehouse.parquet")  # fmt: skip
    far = pa.array([datetime(2300, 1, 1), datetime(1600, 1, 1), datetime(9999, 12, 31), None], pa.timestamp("us"))
    pq.write_table(pa.table({"uid": ["d"] * 4, "ts": far, "q": list("abcd")}), tables / "spark.parquet",
                   use_deprecated_int96_timestamps=True)  # fmt: skip
    java = pa.array([1_677_664_800_000, 2**63 - 1], pa.timestamp("ms"))  # Long.MAX_VALUE: a Rust panic
    stamped = pa.StructArray.from_arrays([java], ["at"])
    pq.write_table(pa.table({"uid": ["e", "e"], "ts": java, "q": ["e1", "e2"], "meta": stamped}),
                   tables / "writer-java.parquet")  # fmt: skip
    options = ReadOptions(map="user=uid,time=ts,text=q")
    ray_report = ray_jobs.ingest([tables], "table", tmp_path / "ray", buckets=3, options=options)
    local_report = local_ingest([tables], "table", tmp_path / "local", options=options)
    events, rejected = (
        read_table(tmp_path / "local" / "events.parquet"),
        read_table(tmp_path / "local" / "rejected.parquet"),
    )
    assert events.sort("row_id").select("user_id", "query").rows() == [
        ("d", "a"), ("d", "b"), ("d", "c"), ("a", "ok"), ("b", "fine"), ("u1", "q1"), ("u1", "q3"), ("u2", "q4"),
        ("c", "w"), ("c", "x"), ("c", "y"), ("c", "z"), ("e", "e1")]  # fmt: skip
    assert events.filter(user_id="d")["ts"].dt.year().to_list() == [2300, 1600, 9999]
    assert events.filter(user_id="c")["ts"].to_list() == [datetime(2023, 3, 1, 10, m, tzinfo=UTC) for m in range(4)]
    assert rejected.sort("row_id").select("reason", "raw").rows() == [
        ("bad_time", '{"uid":"d","ts":null,"q":"d"}'),
        ("bad_encoding", '{"uid":"a","ts":"2023-03-01 10:01:00","q":"caf\\\\xe9"}'),
        ("bad_encoding", '{"uid":"b","ts":"2023-03-01 10:03:00","q":"x\\\\xff"}'),
        ("bad_encoding", '{"uid":"u\\\\xe9","ts":"2023-03-01 10:01:00","q":"q2","note":"caf\\\\xe9"}'),
        ("bad_time", '{"uid":"e","ts":"9223372036854775807","q":"e2","meta":"{\\"at\\":9223372036854775807}"}'),
    ]  # the unmapped `note` rejects nothing
    assert ray_report.rejected_by_reason == local_report.rejected_by_reason == {"bad_encoding": 3, "bad_time": 2}
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))

    ddb = pq.read_table(tables / "text.parquet").rename_columns(["user_name", "timestamp", "prompt"]).slice(0, 1)
    pq.write_table(ddb.append_column("image_hash", pa.array([b"\x89\xff\x00"], pa.binary())), tmp_path / "m.parquet")
    assert local_ingest([tmp_path / "m.parquet"], "diffusiondb", tmp_path / "ddb").rows_ok == 1


def test_a_quote_never_closed_is_rejected_alike_on_both_engines(ray_cluster, tmp_path):
    """The rows after an unclosed quote were one accepted query on both engines."""
    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    rows = "".join(f"u{i % 7},2023-01-05 10:{i % 60:02d}:00,query {i}\n" for i in range(400))
    (tmp_path / "log.csv").write_text("u,t,q\n" + rows + 'u1,2023-01-05 11:00:00,"open\n' + rows)
    options = ReadOptions(map="user=u,time=t,text=q")
    reports = [job([tmp_path / "log.csv"], "table", tmp_path / name, options=options)
               for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local"))]  # fmt: skip
    for report in reports:
        assert (report.rows_in, report.rows_ok, report.rejected_by_reason) == (401, 400, {"unclosed_quote": 1})
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))


def test_what_shows_nothing_is_read_alike_on_both_engines(ray_cluster, tmp_path):
    """The new user's files (misc/unicode.csv, misc/userws.*): a query of what renders as
    nothing alone (U+FE0F, U+034F, U+115F, U+3164, U+200D) is `empty_text`, an emoji
    sequence a query, and a user id padded with a byte-order mark or a zero-width space
    the bare id, on the Ray engine as on the local one, in an AOL file, CSV, JSON lines
    and Parquet."""
    from tables import write_table

    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    users_texts = [("1", t) for t in ("\ufe0f", "\u034f", "\u115f", "\u3164", "\u200d")]
    users_texts += [("1", "👨\u200d👩\u200d👧"), ("1", "❤\ufe0f"), ("\ufeff123", "bom"), ("123\u200b", "zwsp after")]
    rows = [(u, q, f"2006-03-01 10:{m:02d}:00") for m, (u, q) in enumerate(users_texts)]
    (tmp_path / "aol").mkdir()
    (tmp_path / "aol" / "log.txt").write_text(
        "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(f"{u}\t{q}\t{t}\t\t\n" for u, q, t in rows)
    )
    tables = [tmp_path / f"log.{kind}" for kind in ("csv", "jsonl", "parquet")]
    for path in tables:
        write_table(path, ["user", "query", "time"], rows)
    for inputs, fmt, options in (
        ([tmp_path / "aol" / "log.txt"], "aol", ReadOptions()),
        (tables, "table", ReadOptions(map="user=user,time=time,text=query")),
    ):
        reports = [job(inputs, fmt, tmp_path / f"{fmt}-{name}", options=options)
                   for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local"))]  # fmt: skip
        for report in reports:
            assert report.rejected_by_reason == {"empty_text": 5 * len(inputs)}
        for name in ("events.parquet", "rejected.parquet"):
            assert same(read_table(tmp_path / f"{fmt}-ray" / name), read_table(tmp_path / f"{fmt}-local" / name))
        events = read_table(tmp_path / f"{fmt}-ray" / "events.parquet").sort("row_id")
        assert events.select("user_id", "query").rows() == [
            ("1", "👨\u200d👩\u200d👧"),
            ("1", "❤\ufe0f"),
            ("123", "bom"),
            ("123", "zwsp after"),
        ] * len(inputs)


def test_aol_parts_resaved_by_pandas_read_as_one_user_alike_on_both_engines(ray_cluster, tmp_path):
    """An AOL part read and written back by pandas (`1019251.0`, ItemRank `3.0`): the user
    1019251 is one user of 644 rows and the clicked rows keep their ranks 3 and 10, on
    the Ray engine as on the local one (it was two users, and two rows `bad_click_rank`)."""
    from tables import aol_parts_resaved_by_pandas

    from workflows.distributed import data as ray_jobs

    parts = aol_parts_resaved_by_pandas(tmp_path)
    for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local")):
        report = job(parts, "aol", tmp_path / name)
        assert (report.rows_in, report.rows_ok, report.rejected_by_reason) == (2500, 2499, {"empty_user": 1})
        events = read_table(tmp_path / name / "events.parquet")
        assert events.filter(pl.col("user_id") == "1019251").height == 644
        assert events["click_rank"].drop_nulls().to_list() == [3, 10]
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))
    # the same part as a table's CSV: its text kept as written, its float user ids counted alike
    from sessions.formats import ReadOptions

    options = ReadOptions(map="user=AnonID,time=QueryTime,text=Query")
    table = tmp_path / "part-2.tsv"
    table.write_bytes(parts[1].read_bytes())
    tables = [job([table], "table", tmp_path / f"{name}-table", options=options)
              for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local"))]  # fmt: skip
    assert tables[0].files == tables[1].files and tables[0].files[0].float_users == 999


def test_an_aol_slice_saved_back_by_pandas_reads_the_texts_pandas_was_given_on_both_engines(ray_cluster, tmp_path):
    """The user's AOL slice written back by pandas' `to_csv(sep="\\t")` (`"free games"` in
    it as `\"\"\"free games\"\"\"`) reads as the texts pandas was given; the raw file of the
    same queries as written; a raw row joined to the saved ones raw, every field as
    written, the report naming it; each alike on either engine."""
    import pandas as pd

    from sessions.formats.dialect import READ_AS_MIXED, READ_AS_QUOTED, READ_AS_RAW
    from workflows.distributed import data as ray_jobs

    queries = ['"free games"', 'say "hi"', '"', "plain", 'free "games']
    rows = [(1001, q, f"2006-03-01 10:0{i}:00", "", "") for i, q in enumerate(queries)]
    frame = pd.DataFrame(rows, columns=["AnonID", "Query", "QueryTime", "ItemRank", "ClickURL"])
    (tmp_path / "logs").mkdir()
    frame.to_csv(tmp_path / "logs" / "a-saved.tsv", sep="\t", index=False)
    raw = "".join("\t".join(map(str, row)) + "\n" for row in rows)
    (tmp_path / "logs" / "b-raw.tsv").write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + raw)
    saved = (tmp_path / "logs" / "a-saved.tsv").read_text()
    (tmp_path / "logs" / "c-mixed.tsv").write_text(saved + raw.splitlines(keepends=True)[0])
    inputs = [tmp_path / "logs"]
    ray_report = ray_jobs.ingest(inputs, "aol", tmp_path / "ray", buckets=2)
    local_report = local_ingest(inputs, "aol", tmp_path / "local")
    assert ray_report.files == local_report.files
    mixed = READ_AS_RAW + READ_AS_MIXED.format(line=7, field='"free games"')
    assert [(Path(f.path).name, f.read_as) for f in local_report.files] == [
        ("a-saved.tsv", READ_AS_QUOTED), ("b-raw.tsv", READ_AS_RAW), ("c-mixed.tsv", mixed)]  # fmt: skip
    as_saved = [line.split("\t")[1] for line in saved.splitlines()[1:]]
    for engine in ("ray", "local"):
        events = read_table(tmp_path / engine / "events.parquet").sort("row_id")
        assert events["query"].to_list() == queries + queries + as_saved + ['"free games"'], engine
        assert read_table(tmp_path / engine / "rejected.parquet").height == 0
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))


def test_columns_named_alike_but_for_spaces_are_mapped_alike_on_both_engines(ray_cluster, tmp_path):
    """Columns `user` and ` user ` in each kind of table: `user=" user "` reads the
    second on both engines (the `--map` lost its spaces: Parquet and JSON lines read
    `user`, a CSV was refused); a name a table lacks is the same one line on both."""
    from tables import write_table

    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    (tmp_path / "in").mkdir()
    for kind in (".csv", ".tsv", ".jsonl", ".parquet"):
        write_table(tmp_path / "in" / f"log{kind}", ["user", " user ", "time", "q, text"],
                    [["a", "b", f"2023-01-0{i + 1}T10:00:00Z", kind] for i in range(3)])  # fmt: skip
    options = ReadOptions(map='user=" user ",time=time,text="q, text"')
    for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local")):
        assert job([tmp_path / "in"], "table", tmp_path / name, options=options).rows_ok == 12
    events = read_table(tmp_path / "ray" / "events.parquet")
    assert same(events, read_table(tmp_path / "local" / "events.parquet"))
    assert set(events["user_id"]) == {"b"} and events["query"].value_counts().height == 4
    said = ("no column 'user', 'query'; the columns are [' user ', 'time', 'query '] (a name is matched as written, "
            """in case and spaces: --map names ' user ' as " user ", 'query ' as "query ")""")  # fmt: skip
    write_table(tmp_path / "spaced.parquet", [" user ", "time", "query "], [["u1", "2023-01-01T10:00:00Z", "a"]])
    for job in (ray_jobs.ingest, local_ingest):
        with pytest.raises(ValueError) as err:
            job(
                [tmp_path / "spaced.parquet"],
                "table",
                tmp_path / "o",
                options=ReadOptions(map="user=user,time=time,text=query"),
            )
        assert str(err.value) == f"{tmp_path / 'spaced.parquet'}: {said}", job


def test_a_header_repeated_in_another_order_is_refused_alike_on_both_engines(ray_cluster, tmp_path):
    """Exports of other column orders joined: the rows after the second header were read
    in the first order (user and query swapped) on both engines; both refuse the file."""
    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    (tmp_path / "joined.tsv").write_text("user\ttime\tq\nu1\t2006-03-01 10:00:00\tfirst export\n"
                                         "q\ttime\tuser\nsecond export\t2006-03-01 10:01:00\tu2\n")  # fmt: skip
    options = ReadOptions(map="user=user,time=time,text=q")
    for job in (ray_jobs.ingest, local_ingest):
        with pytest.raises(ValueError, match=r"joined\.tsv: line 3 is the header with its columns in another order"):
            job([tmp_path / "joined.tsv"], "table", tmp_path / job.__module__, options=options)


def test_the_data_tell_the_compression_alike_on_both_engines(ray_cluster, tmp_path):
    """A zstd log named `.csv` and a `.csv.gz` holding text (a browser's download) read as
    their text on both engines; a zip named `.csv.gz` is one file not read."""
    import io
    import zipfile

    import zstandard

    from sessions.formats import ReadOptions
    from sessions.ingest import NOT_A_TABLE_REASON
    from workflows.distributed import data as ray_jobs

    rows = "u,t,q\n" + "".join(f"u{i % 7},2023-01-05 10:{i % 60:02d}:00,query {i}\n" for i in range(300))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.csv").write_bytes(zstandard.ZstdCompressor().compress(rows.encode()))
    (logs / "b.csv.gz").write_text(rows)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("c.csv", rows)
    (logs / "c.csv.gz").write_bytes(packed.getvalue())
    (logs / "notes.txt").write_text("what these files are\n")  # no table: it failed the job (a new user's find)
    (logs / "d.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    options = ReadOptions(map="user=u,time=t,text=q")
    reports = [job([logs], "table", tmp_path / name, options=options)
               for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local"))]  # fmt: skip
    for report in reports:
        assert (report.rows_in, report.rows_ok, report.rejected_by_reason) == (601, 600, {"truncated_stream": 1})
        assert [f.damage is not None for f in report.files] == [False, False, True]
        assert [(Path(s["path"]).name, s["reason"]) for s in report.skipped_files] == [
            ("d.zip", "a .zip file"), ("notes.txt", NOT_A_TABLE_REASON)]  # fmt: skip
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))


def test_files_not_logs_and_files_of_which_nothing_is_read_are_told_alike_on_both_engines(ray_cluster, tmp_path):
    """A new user's `mixdir` (a good AOL file, a stray Parquet file, a UTF-16 TSV, a
    workbook) and a Parquet file named `.txt`: both engines skip the Parquet file and the
    workbook by name, and report the files none of whose records was read with the same
    first rejected records, so that the summary names them (NOT READ) with one why."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from workflows.cli.ingest import ingest_rows
    from workflows.distributed import data as ray_jobs

    aol = "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(
        f"{1 + i // 5}\tquery {i}\t2006-03-01 10:{i:02d}:00\t\t\n" for i in range(20)
    )
    d = tmp_path / "mixdir"
    d.mkdir()
    (d / "01-A.txt").write_text(aol)
    (d / "notes.tsv").write_bytes(aol.encode("utf-16"))
    pq.write_table(pa.table({"prompt": ["x", "y"]}), d / "stray.parquet")
    (d / "misnamed.txt").write_bytes((d / "stray.parquet").read_bytes())
    (d / "sheet.xlsx").write_bytes(b"PK\x05\x06" + bytes(18))
    reports = [job([d], "aol", tmp_path / name).to_dict()
               for job, name in ((ray_jobs.ingest, "ray"), (local_ingest, "local"))]  # fmt: skip
    for key in ("files", "skipped_files", "rows_in", "rows_ok", "rows_rejected"):
        assert reports[0][key] == reports[1][key], key
    rows = [{k: v for k, v in ingest_rows(r).items() if "NOT READ" in k} for r in reports]
    assert rows[0] == rows[1] and list(rows[0]) == [f"  NOT READ {d / 'misnamed.txt'}", f"  NOT READ {d / 'notes.tsv'}"]
    said = list(rows[0].values())
    assert "it is a Parquet file (its first bytes are PAR1)" in said[0] and "often UTF-16" in said[1]
    assert [s["path"] for s in reports[0]["skipped_files"]] == [str(d / "sheet.xlsx"), str(d / "stray.parquet")]


def test_a_tsv_table_written_with_csv_quoting_reads_alike_on_both_engines(ray_cluster, tmp_path):
    """A TSV as pandas and Python's csv write it (a new user's find: quotes were kept as
    text, a tab inside a quoted field rejected the row) beside a raw one with phrase
    queries: each read as written, on either engine, and the report names the quoted one."""
    import csv

    from sessions.formats import ReadOptions
    from sessions.formats.dialect import READ_AS_QUOTED, READ_AS_RAW, SNIFF_BYTES
    from workflows.distributed import data as ray_jobs

    texts = ['12" pizza pan', '"best" pizza places', "tab\tinside", "line\nbreak", "plain"]
    (tmp_path / "logs").mkdir()
    with open(tmp_path / "logs" / "quoted.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["u", "t", "q"])
        writer.writerows(("7", f"2023-01-05 10:0{i}:00", q) for i, q in enumerate(texts))
    raw = ['"new york" hotels', '"cheap flights"', '12" pizza pan']
    lines = "".join(f"8\t2023-01-06 10:0{i}:00\t{q}\n" for i, q in enumerate(raw))
    (tmp_path / "logs" / "raw.tsv").write_text("u\tt\tq\n" + lines)
    # pandas quotes only where it must: here the first quoted text comes past the first window
    late = [f"plain {i}" for i in range(9_000)] + texts
    with open(tmp_path / "logs" / "z-late.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["u", "t", "q"])
        writer.writerows(
            ("9", f"2023-01-07 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}", q) for i, q in enumerate(late)
        )
    assert (tmp_path / "logs" / "z-late.tsv").read_bytes().index(b'"') > SNIFF_BYTES
    excel = ["pizza, cheap", "a;b"]  # Excel's CSV where the decimal mark is a comma: fields separated by `;`
    (tmp_path / "logs" / "excel.csv").write_text(
        'u;t;q\n6;2023-01-04 10:00:00;pizza, cheap\n6;2023-01-04 10:01:00;"a;b"\n'
    )
    options = ReadOptions(map="user=u,time=t,text=q")
    inputs = [tmp_path / "logs"]
    ray_report = ray_jobs.ingest(inputs, "table", tmp_path / "ray", buckets=2, options=options)
    local_report = local_ingest(inputs, "table", tmp_path / "local", options=options)
    assert ray_report.files == local_report.files
    assert [(Path(f.path).name, f.read_as) for f in local_report.files] == [
        ("excel.csv", "CSV separated by ';', as its header line shows"), ("quoted.tsv", READ_AS_QUOTED),
        ("raw.tsv", READ_AS_RAW), ("z-late.tsv", READ_AS_QUOTED)]  # fmt: skip
    for engine in ("ray", "local"):
        events = read_table(tmp_path / engine / "events.parquet").sort("row_id")
        assert events["query"].to_list() == excel + texts + raw + late, engine
        assert read_table(tmp_path / engine / "rejected.parquet").height == 0


def test_a_table_is_read_in_the_dialect_it_was_written_in_alike_on_both_engines(ray_cluster, tmp_path):
    """The new user's files: Spark's CSV (quotes escaped with a backslash: read so), a raw
    AOL slice named `.csv` (read as a TSV), and an RFC 4180 CSV holding one Spark row (a
    `backslash_escape` row of its own): each read alike on either engine, the report
    saying how."""
    from sessions.formats import ReadOptions
    from sessions.formats.dialect import READ_AS_ESCAPED, READ_AS_RAW
    from sessions.quoting import Quoting
    from workflows.distributed import data as ray_jobs

    (tmp_path / "logs").mkdir()
    header = "user,time,query\n"
    spark = ['samsung tv 32\\"', 'say \\"hi\\" now', '\\"', "a, b"]
    (tmp_path / "logs" / "a-spark.csv").write_text(
        header + "".join(f'u1,2006-03-01 10:0{i}:00,"{q}"\n' for i, q in enumerate(spark))
    )
    (tmp_path / "logs" / "b-tab.csv").write_text(
        'user\ttime\tquery\nu2\t2006-03-01 11:00:00\t"new york" hotels\nu2\t2006-03-01 11:01:00\t"unclosed\n'
        "u2\t2006-03-01 11:02:00\tnext row\n"
    )
    (tmp_path / "logs" / "c-rfc.csv").write_text(
        header + 'u3,2006-03-01 12:00:00,"say \\""hi\\"""\nu3,2006-03-01 12:01:00,"tv 32\\""\n'
        'u3,2006-03-01 12:02:00,"a\\""b"\nu3,2006-03-01 12:03:00,after\n'
    )
    options = ReadOptions(map="user=user,time=time,text=query")
    inputs = [tmp_path / "logs"]
    ray_report = ray_jobs.ingest(inputs, "table", tmp_path / "ray", buckets=2, options=options)
    local_report = local_ingest(inputs, "table", tmp_path / "local", options=options)
    assert ray_report.files == local_report.files
    assert [(Path(f.path).name, f.read_as) for f in local_report.files] == [
        ("a-spark.csv", "CSV, " + READ_AS_ESCAPED[Quoting.ESCAPED]),
        ("b-tab.csv", READ_AS_RAW + " (a .csv separated by tabs, as its header line shows)"),
        ("c-rfc.csv", None)]  # fmt: skip
    for engine in ("ray", "local"):
        events = read_table(tmp_path / engine / "events.parquet").sort("row_id")
        assert events["query"].to_list() == [
            'samsung tv 32"', 'say "hi" now', '"', "a, b", '"new york" hotels', '"unclosed', "next row",
            'say \\"hi\\"', 'a\\"b', "after"]  # fmt: skip
        rejected = read_table(tmp_path / engine / "rejected.parquet")
        assert rejected.select("line_no", "reason").rows() == [(3, "backslash_escape")], engine
    for name in ("events.parquet", "rejected.parquet"):
        assert same(read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name))


def test_segment_on_ray_equals_local(ray_cluster, logs, store, tmp_path):
    import mlflow

    from sessions.learned import LearnedConfig, LearnedMethod
    from workflows.distributed import data as ray_jobs
    from workflows.jobs.evaluate_segmentation import read_gold
    from workflows.tracking.segmenter_model import log_segmenter_model, segmentation_model

    seg, missions = SegmentConfig(), MissionConfig()
    ray_report = ray_jobs.segment(logs, "aol", tmp_path / "ray", seg, missions, buckets=4)
    segment_logs(logs, "aol", tmp_path / "local", seg, missions)
    ray_sessions, local_sessions = (read_table(tmp_path / e / "sessions.parquet") for e in ("ray", "local"))
    assert same(ray_sessions, local_sessions)
    assert same(read_table(tmp_path / "ray" / "rejected.parquet"), read_table(tmp_path / "local" / "rejected.parquet"))
    assert ray_report.sessions == local_sessions["session_id"].n_unique()
    assert ray_report.missions == local_sessions["mission_id"].n_unique()
    # from an ingest directory too, with another number of buckets, and a registered segmenter model that
    # each Ray task loads from the store (`--method learned --model models:/segmenter-model@champion`)
    with mlflow.start_run():
        gold = read_gold(str(logs[0]), "aol").events
        uri = log_segmenter_model(LearnedMethod(LearnedConfig(model="logistic")).classifier(gold), "sessions")
    learned = SegmentConfig(method="learned")
    local_ingest(logs, "aol", tmp_path / "events")
    ray_jobs.segment([tmp_path / "events"], None, tmp_path / "ray2", learned, missions, buckets=2, model_uri=uri)
    segment_logs(logs, "aol", tmp_path / "local2", learned, missions, scorer=segmentation_model(uri))
    by_model = read_table(tmp_path / "local2" / "sessions.parquet")
    assert same(read_table(tmp_path / "ray2" / "sessions.parquet"), by_model)
    assert not same(by_model, local_sessions)  # the model decided, not the cascade


def test_queries_without_terms_link_their_repeats_alike_on_both_engines(ray_cluster, tmp_path):
    """A query of emoji or punctuation alone repeated on later days is one mission (its
    key is its one term), on Ray as in one process; a key typed by 20 users or more is a
    common term, counted over every bucket, and links nothing."""
    from datetime import datetime, timedelta

    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    t = datetime(2023, 3, 1, 10)
    rows = [(f"u{u}", (t + timedelta(days=d)).isoformat() + "Z", "?" if u < 20 else ["🐉🏰", "?!?!", "The"][u % 3])
            for u in range(26) for d in range(3)]  # fmt: skip
    pl.DataFrame(rows, schema=["user", "time", "text"], orient="row").write_csv(tmp_path / "log.csv")
    options, seg, missions = ReadOptions(map="user=user,time=time,text=text"), SegmentConfig(), MissionConfig()
    ray_report = ray_jobs.segment([tmp_path / "log.csv"], "table", tmp_path / "ray", seg, missions, options=options,
                                  buckets=4)  # fmt: skip
    local_report = segment_logs([tmp_path / "log.csv"], "table", tmp_path / "local", seg, missions, options=options)
    assert same(read_table(tmp_path / "ray" / "sessions.parquet"), read_table(tmp_path / "local" / "sessions.parquet"))
    assert (ray_report.sessions, ray_report.missions) == (local_report.sessions, local_report.missions) == (78, 66)


def test_mine_on_ray_equals_local(ray_cluster, logs, tmp_path):
    from workflows.distributed import data as ray_jobs

    segment_logs(logs, "aol", tmp_path / "s", SegmentConfig(), MissionConfig())
    cfg = MiningConfig(partitions=4, seed=9)
    ray_jobs.mine(tmp_path / "s" / "sessions.parquet", tmp_path / "p" / "pairs.parquet", cfg)
    local = mine_pairs(read_table(tmp_path / "s" / "sessions.parquet"), cfg)
    assert order_pairs(read_table(tmp_path / "p" / "pairs.parquet")).equals(local)
    assert local.height > 1000
    # a sessions table of one's own, segment's columns but session_seq, ids numbered per user: the same pairs
    # on Ray (it staged session_seq too: a Ray Data traceback, the change breaker's find)
    own = read_table(tmp_path / "s" / "sessions.parquet").drop("session_seq")
    per_user = [pl.col(c).rank("dense").over("user_id").cast(pl.String) for c in ("session_id", "mission_id")]
    own = own.with_columns(per_user)
    own.write_parquet(tmp_path / "own.parquet")
    ray_jobs.mine(tmp_path / "own.parquet", tmp_path / "p2" / "pairs.parquet", cfg)
    assert order_pairs(read_table(tmp_path / "p2" / "pairs.parquet")).equals(mine_pairs(own, cfg))
    # ... and with every id an integer (AOL's AnonIDs, as pandas writes them): the pairs of their texts, both engines
    integers = own.with_columns(pl.col("user_id", "session_id", "mission_id").cast(pl.Int64))
    integers.write_parquet(tmp_path / "own-int.parquet")
    ray_jobs.mine(tmp_path / "own-int.parquet", tmp_path / "p3" / "pairs.parquet", cfg)
    assert order_pairs(read_table(tmp_path / "p3" / "pairs.parquet")).equals(mine_pairs(own, cfg))
    assert mine_pairs(integers, cfg).equals(mine_pairs(own, cfg))


def test_a_users_data_named_like_a_table_is_refused_and_kept_on_ray(ray_cluster, logs, tmp_path):
    """As on the local engine (tests/workflows/test_outputs.py): a link named like the
    table to a user's directory had its files deleted and the job's parts written there."""
    from workflows.distributed import data as ray_jobs

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    segment_logs(logs[:1], "aol", tmp_path / "s", SegmentConfig(), MissionConfig())
    sessions = tmp_path / "s" / "sessions.parquet"
    jobs = {"events.parquet": lambda out: ray_jobs.ingest(logs, "aol", out, buckets=2),
            "pairs.parquet": lambda out: ray_jobs.mine(sessions, out / "pairs.parquet", MiningConfig())}  # fmt: skip
    for name, job in jobs.items():
        out = tmp_path / f"out-{name}"
        out.mkdir()
        (out / name).symlink_to(tmp_path / "mine")
        with pytest.raises(ValueError, match=f"its {name} is a symbolic link to {tmp_path / 'mine'}, not a table"):
            job(out)
        assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_bad_options_fail_before_any_task(ray_cluster, logs, tmp_path):
    from sessions.formats import ReadOptions
    from workflows.distributed import data as ray_jobs

    with pytest.raises(ValueError, match="applies to --format table only"):
        ray_jobs.ingest(logs, "aol", tmp_path / "x", options=ReadOptions(map="user=a,time=b,text=c"))


CSV = "u,t,q\na,2023-01-01 10:00,hello\n"
UNREADABLE = {  # a file a task cannot read: its name, its bytes, the format and mapping it is read with
    "no such column": ("log.csv", CSV.encode(), ["table", "--map", "user=u,time=nope,text=q"]),
    "a UTF-16 header": ("log.csv", CSV.encode("utf-16"), ["table", "--map", "user=u,time=t,text=q"]),
    "another format's file": ("log.csv", CSV.encode(), ["midjourney"]),
    "not Parquet": ("metadata.parquet", b"AnonID\tQuery\n", ["diffusiondb"]),
    "a Parquet file cut off": ("metadata.parquet", b"PAR1\x15\x04\x15", ["diffusiondb"]),
    "a CSV named .parquet": ("log.parquet", CSV.encode(), ["table", "--map", "user=u,time=t,text=q"]),
    "a gzipped Parquet file cut off": ("metadata.parquet.gz", gzip.compress(b"PAR1" * 64)[:30], ["diffusiondb"]),
}


@pytest.mark.parametrize("case", UNREADABLE)
def test_a_file_a_task_cannot_read_fails_in_one_line_as_in_one_process(ray_cluster, case, tmp_path):
    """The same one-line error on both engines, and no output left: the parse task hands
    the file's error back as data (a task that raised would bring Ray Data's traceback)."""
    from typer.testing import CliRunner

    from workflows.cli import app

    name, data, fmt = UNREADABLE[case]
    (tmp_path / "in").mkdir()
    if fmt[0] == "table":  # a good file first: the error is the bad one's, whichever task reads it
        (tmp_path / "in" / "a.csv").write_text(CSV)
    (tmp_path / "in" / name).write_bytes(data)
    said = {}
    for engine in ("ray", "local"):
        done = CliRunner().invoke(app, ["ingest", str(tmp_path / "in"), "-f", *fmt, "-o", str(tmp_path / engine),
                                        "--engine", engine])  # fmt: skip
        assert done.exit_code == 2 and "Traceback" not in done.output and not (tmp_path / engine).exists(), done.output
        said[engine] = done.output.strip()
    assert said["ray"] == said["local"] and len(said["ray"].splitlines()) == 1, said
    assert said["ray"].startswith(f"error: {tmp_path / 'in'}/"), said  # the file it is about
    if name.endswith(".parquet"):
        assert said["ray"].startswith(
            f"error: {tmp_path / 'in' / name}: not a Parquet file, or one cut off or damaged ("
        ), said


def test_cluster_yaml_is_a_valid_ray_cluster_config(tmp_path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(config)))  # as `ray up` does
    head = config["available_node_types"][config["head_node_type"]]
    assert "GPU" not in head["resources"]
    assert any(
        "GPU" in t["resources"] and t.get("min_workers", 0) == 0 for t in config["available_node_types"].values()
    )
    assert any("pip install" in c for c in config["setup_commands"])
    head_commands = " ".join(config["head_start_ray_commands"])  # the MLflow server, and its URI for every job
    assert "mlflow server" in head_commands and "--artifacts-destination s3://" in head_commands
    assert all("MLFLOW_TRACKING_URI=http://" in " ".join(config[key])
               for key in ("head_start_ray_commands", "worker_start_ray_commands"))  # fmt: skip
    broken = copy.deepcopy(config)
    broken["available_node_types"]["gpu_worker"]["resources"] = {"GPU": "one"}
    with pytest.raises(Exception, match="not of type 'integer'"):
        validate_config(prepare_config(broken))
    assert shutil.which("ray") or (Path(__import__("sys").executable).parent / "ray").exists()
