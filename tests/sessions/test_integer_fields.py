"""Fields that are integers by definition in the built-in formats (AOL's AnonID and
ItemRank, Webis-SMC-12's UserID, ClickRank and MissionID, Gayo-Avello's USER_ID,
EPOCH and SESSIONID, Midjourney's userid) are read as the log means them, however a
tool wrote them: a whole float (`1019251.0`, as pandas writes an integer column with
a missing value; `1.021164E7`, as Java does; `1e+06`, as R does) is its integer, on
both read paths; a rank that is no whole number is still `bad_click_rank`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tables import aol_parts_resaved_by_pandas

from sessions.formats import ReadOptions, format_for
from sessions.ingest import ingest
from sessions.io import read_table
from sessions.schema import Reason


def test_aol_parts_resaved_by_pandas_keep_one_user_and_every_clicked_row(tmp_path):
    """The user's log: `part-2.txt` read and written back by pandas (floats: `1019251.0`,
    ItemRank `3.0`). The user 1019251 was two users (399 rows as `1019251`, 245 as
    `1019251.0`: its history cut in two at the file boundary), and the rows clicked on
    results 3 and 10 were rejected whole as `bad_click_rank`."""
    report = ingest(aol_parts_resaved_by_pandas(tmp_path), "aol", tmp_path / "out")
    events = read_table(tmp_path / "out" / "events.parquet")
    rejected = read_table(tmp_path / "out" / "rejected.parquet")
    assert (report.rows_in, report.rows_ok) == (2500, 2499)
    assert rejected["reason"].to_list() == [Reason.EMPTY_USER]  # pandas' missing AnonID, written empty
    assert events.filter(pl.col("user_id") == "1019251").height == 644
    assert not events["user_id"].str.contains(r"\.").any()
    clicks = events.filter(pl.col("click_rank").is_not_null())
    assert clicks.select("user_id", "query", "click_rank").rows() == [
        ("1012899", "query 1746", 3),
        ("1012899", "query 1747", 10),
    ]


def test_a_synthetic_logs_depth_saved_back_by_pandas_is_kept(tmp_path):
    """A synthetic AOL log's `gold_depth` (empty where a query has none) read and written
    back by pandas is `3.0`: it was no depth, without a word."""
    header = (
        "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\tgold_session\tgold_mission\tgold_depth\tgold_reformulation\n"
    )
    rows = [
        f"7\tq{i}\t2006-03-01 07:0{i}:00\t\t\t7/s0\t7/m0\t{depth}\tnew\n" for i, depth in enumerate(["3.0", "", "4"])
    ]
    (tmp_path / "synth.txt").write_text(header + "".join(rows))
    ingest([tmp_path / "synth.txt"], "aol", tmp_path / "out")
    events = read_table(tmp_path / "out" / "events.parquet")
    assert events.select("user_id", "gold_depth").rows() == [("7", 3), ("7", None), ("7", 4)]


# ---- the property: an integer written any way a tool writes it ----
def java(n: int) -> str:
    """`n` as Java's Double.toString writes a double from 10^7 on (Spark's CSV): `1.021164E7`."""
    _, digits, exponent = Decimal(n).normalize().as_tuple() if n else (0, (0,), 0)
    mantissa = "".join(map(str, digits))
    return f"{'-' if n < 0 else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{len(mantissa) - 1 + int(exponent)}"


def c_style(n: int) -> str:
    """`n` in C's `%e` with every digit kept (R writes a round number so: `1e+06`)."""
    return f"{n:.{max(len(str(abs(n))) - 1, 0)}e}"


FORMS = {"int": str, "pandas": lambda n: repr(float(n)), "java": java, "c": c_style}
PAD = st.sampled_from(["", " ", "  "])


@st.composite
def integer_as_written(draw, lo: int, hi: int) -> tuple[int, str]:
    """An integer in [lo, hi] and its text, in one of `FORMS`, spaces around it or not."""
    n = draw(st.integers(lo, hi))
    return n, draw(PAD) + FORMS[draw(st.sampled_from(sorted(FORMS)))](n) + draw(PAD)


fractions = st.floats(0.001, 1e6).filter(lambda x: x != int(x))
# Each row: (user, rank, label, epoch), each (value, as written); a rank of None is no click, a rank's value
# None a fraction (`3.5`); a user's value None a fraction too, read as written.
rows = st.tuples(
    st.one_of(integer_as_written(0, 2**53 - 1), fractions.map(lambda x: (None, repr(x)))),
    st.one_of(st.none(), integer_as_written(1, 1000), fractions.map(lambda x: (None, repr(x)))),
    integer_as_written(1, 10**6),
    integer_as_written(1141171200, 1141171200 + 30 * 86400),
)

HEADERS = {
    "aol": "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n",
    "webis-smc": "UserID\tQuery\tTimeStamp\tClickRank\tClickDomain\tMissionID\tComment\n",
    "gayo-avello": "",
    "midjourney": "text,args,channel_id,userid,timestamp,label,id,url_png,main_content,thread_id\n",
}


def line(kind: str, i: int, user: str, rank: str | None, label: str, epoch: str) -> str:
    """Row `i` of a `kind` file: the user, click rank, label (mission, session) and epoch
    seconds written as given (those the format has)."""
    click, url = ("", "") if rank is None else (rank, "http://a.com")
    return {
        "aol": f"{user}\tq{i}\t2006-03-01 07:{i:02d}:00\t{click}\t{url}\n",
        "webis-smc": f"{user}\tq{i}\t2006-03-01 07:{i:02d}:00\t{click}\t{url}\t{label}\n",
        # the date text an hour off the epoch, as in the real file: a time from it would show
        "gayo-avello": f"{i};{user};q{i};;01/01/2000 00:{i:02d};{epoch};{label}\n",
        "midjourney": f"q{i},--v 4,c1,{user},2023-01-21 05:{i:02d}:00,False,{i},u,q,t1\n",
    }[kind]


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(HEADERS)), drawn=st.lists(rows, min_size=1, max_size=8), data=st.data())
def test_an_integer_field_written_as_a_whole_float_is_its_integer_in_every_built_in_format(
    tmp_path_factory, kind, drawn, data
):
    """Property: in every built-in text format, on both read paths, an id, a rank, a
    label or an epoch written as an integer or a whole float (pandas', Java's, C's and
    R's notation), spaces around it or not, reads as the integer; a rank that is no whole
    number is rejected as `bad_click_rank`, and a user id that is none stays as written."""
    tmp = tmp_path_factory.mktemp("integers")
    path = tmp / f"log.{'csv' if kind in ('gayo-avello', 'midjourney') else 'txt'}"
    text = "".join(line(kind, i, user[1], rank and rank[1], label[1], epoch[1])
                   for i, (user, rank, label, epoch) in enumerate(drawn))  # fmt: skip
    path.write_text(HEADERS[kind] + text)
    fmt = format_for(kind, path)
    readers = [fmt, replace(fmt, fast=False)] if kind == "aol" else [fmt]
    has_rank = kind in ("aol", "webis-smc")
    for reader in readers:
        blocks = list(reader.parse_file(path, block_bytes=data.draw(st.sampled_from([64, 1 << 20]))))
        events = pl.concat([b.events for b in blocks]).sort("row_id")
        rejected = pl.concat([b.rejected for b in blocks]).sort("row_id")
        bad = [i for i, (_, rank, _, _) in enumerate(drawn) if has_rank and rank is not None and rank[0] is None]
        assert rejected.select("row_id", "reason").rows() == [(i, Reason.BAD_CLICK_RANK) for i in bad]
        kept = [row for i, row in enumerate(drawn) if i not in bad]
        users = [str(user[0]) if user[0] is not None else user[1].strip() for user, _, _, _ in kept]
        assert events["user_id"].to_list() == users
        if has_rank:
            assert events["click_rank"].to_list() == [rank and rank[0] for _, rank, _, _ in kept]
        if kind == "webis-smc":
            missions = [f"{u}/{label[0]}" for u, (_, _, label, _) in zip(users, kept, strict=True)]
            assert events["gold_mission"].to_list() == missions
        if kind == "gayo-avello":
            assert events["gold_session"].to_list() == [str(label[0]) for _, _, label, _ in kept]
            assert events["ts"].to_list() == [datetime.fromtimestamp(epoch[0], UTC) for _, _, _, epoch in kept]


@pytest.mark.parametrize("n", [0, 7, 10**6, 10211640, 1019251, 2**53 - 1])
def test_the_writers_notations_are_the_integer(n):
    """The property's own notations are the integer they stand for (`java`, `c_style`)."""
    assert {form: float(write(n)) for form, write in FORMS.items()} == dict.fromkeys(FORMS, float(n))
    assert java(10211640) == "1.021164E7" and c_style(10**6) == "1.000000e+06"


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "parquet"])
def test_a_tables_user_ids_written_as_floats_are_kept_as_written_and_told(tmp_path, kind):
    """A `table`'s text is its text: `1019251.0` in a CSV pandas wrote (an integer column
    with a missing value) stays `1019251.0`, another user than `1019251` of another
    file, which was told nowhere; the report counts those rows per file and the summary
    says what they are and how to write them. A typed table's float is its integer
    (Parquet, JSON lines), and told of no more."""
    import pandas as pd

    from workflows.cli.ingest import ingest_rows

    frame = pd.DataFrame({"u": [1019251, None, 1019251, 7], "t": ["2006-03-01 07:17:12"] * 4, "q": list("abcd")})
    path = tmp_path / f"log.{kind}"
    if kind == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif kind == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="," if kind == "csv" else "\t", index=False)
    report = ingest([path], "table", tmp_path / "out", options=ReadOptions(map="user=u,time=t,text=q"))
    users = read_table(tmp_path / "out" / "events.parquet")["user_id"].to_list()
    floats = 0 if kind in ("parquet", "jsonl") else 3
    assert users == (["1019251.0", "1019251.0", "7.0"] if floats else ["1019251", "1019251", "7"])
    assert [f.float_users for f in report.files] == [floats]
    told = ingest_rows(report.to_dict()).get(f"  {path}: user ids", "")
    said = "3 rows' user ids written as whole floats (such as 599381.0, or 1.0612563642406546e+17, whose digits"
    assert told.startswith(said) == bool(floats)


# ids that went through a float from 2**53 on (a Discord id as pandas writes it with a missing value), ids that are
# plain integers, and hexadecimal ids that look like an exponent without its sign (`1e3`)
lossy_ids = st.integers(2**53, 10**19).map(lambda n: (True, repr(float(n))))
plain_ids = st.integers(0, 10**19).map(lambda n: (False, str(n)))
hex_ids = st.tuples(st.integers(1, 999), st.integers(0, 99)).map(lambda ab: (False, f"{ab[0]}e{ab[1]}"))


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from([*sorted(HEADERS), "table"]), users=st.lists(st.one_of(lossy_ids, plain_ids, hex_ids),
       min_size=1, max_size=8), block=st.sampled_from([64, 1 << 20]))  # fmt: skip
def test_ids_whose_digits_a_float_lost_are_counted_in_every_format(tmp_path_factory, kind, users, block):
    """Property (a breaker's finds): a Midjourney file whose userids pandas wrote as floats
    (`1.0612563642406546e+17`) split every such user in two without a word: no reader can
    give the lost digits back, so the ids stay as written, and now each file's
    `float_users` counts them, in every text format and on both read paths; `1e3`, a
    hexadecimal id, is text (it was read as 1000 in a built-in format, and told as
    pandas' float in a table)."""
    tmp = tmp_path_factory.mktemp("lossy")
    if kind == "table":
        path = tmp / "log.csv"
        path.write_text("u,t,q\n" + "".join(f"{u},2006-03-01 07:{i:02d}:00,q{i}\n" for i, (_, u) in enumerate(users)))
        fmt = format_for("table", path, ReadOptions(map="user=u,time=t,text=q"))
    else:
        path = tmp / f"log.{'csv' if kind in ('gayo-avello', 'midjourney') else 'txt'}"
        path.write_text(HEADERS[kind] + "".join(line(kind, i, u, None, "1", str(1141171200 + i))
                                                for i, (_, u) in enumerate(users)))  # fmt: skip
        fmt = format_for(kind, path)
    for reader in [fmt, replace(fmt, fast=False)] if kind == "aol" else [fmt]:
        blocks = list(reader.parse_file(path, block_bytes=block))
        assert pl.concat([b.events for b in blocks]).sort("row_id")["user_id"].to_list() == [u for _, u in users]
        assert sum(b.float_users for b in blocks) == sum(lossy for lossy, _ in users)


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "csv"])
def test_a_discord_id_through_a_float_is_told_in_every_layout(tmp_path, kind):
    """The breaker's Midjourney case as a table of each layout: the float 1.0612563642406546e+17
    (pandas' `106125636424065450` with a missing value in its column) is read as
    written and told; 7.0 is the user 7 in a typed table, as before."""
    from workflows.cli.ingest import ingest_rows

    frame = pl.DataFrame({"u": [1.0612563642406546e17, 7.0, 1.0612563642406546e17], "t": ["2023-01-21 05:00:00"] * 3,
                          "q": list("abc")})  # fmt: skip
    path = tmp_path / f"log.{kind}"
    {"parquet": frame.write_parquet, "jsonl": frame.write_ndjson, "csv": frame.write_csv}[kind](path)
    report = ingest([path], "table", tmp_path / "out", options=ReadOptions(map="user=u,time=t,text=q"))
    users = read_table(tmp_path / "out" / "events.parquet")["user_id"].to_list()
    assert users == ["1.0612563642406546e+17", "7" if kind != "csv" else "7.0", "1.0612563642406546e+17"]
    assert [f.float_users for f in report.files] == [2 if kind != "csv" else 3]
    assert ingest_rows(report.to_dict())[f"  {path}: user ids"].startswith(f"{2 if kind != 'csv' else 3} rows' user")


def test_a_built_in_format_tells_only_of_the_ids_whose_digits_were_lost(tmp_path):
    """A breaker's find: a Midjourney file's note said that ids such as 599381.0 were read as
    written, where a built-in format reads them as 599381: only ids of 2**53 or more are
    counted there, and its note says so."""
    from workflows.cli.ingest import ingest_rows

    path = tmp_path / "threads.csv"
    users = ["599381.0", "1.0612563642406546e+17", "7"]
    rows = [line("midjourney", i, u, None, "1", "0") for i, u in enumerate(users)]
    path.write_text(HEADERS["midjourney"] + "".join(rows))
    report = ingest([path], "midjourney", tmp_path / "out")
    assert read_table(tmp_path / "out" / "events.parquet")["user_id"].to_list() == [
        "599381", "1.0612563642406546e+17", "7"]  # fmt: skip
    assert ingest_rows(report.to_dict())[f"  {path}: user ids"].startswith(
        "1 rows' user ids are floats of 2^53 or more (such as 1.0612563642406546e+17")  # fmt: skip
