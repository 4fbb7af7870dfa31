"""A delimited table is read in the dialect it was written in, whatever its name: RFC
4180 (quotes doubled), a backslash-escaping writer's (Spark, R's `write.table`, Python's
`csv` with an `escapechar`), or a raw TSV's (no quoting); where it cannot be, its rows are
told why, each alone, never run into one another (`sessions.quoting`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sessions.formats import ReadOptions, format_for
from sessions.ingest import read_logs
from sessions.io import MemorySink
from sessions.quoting import Quoting
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA, Reason

MAP = ReadOptions(map="user=user,time=time,text=query")
START = datetime(2024, 1, 1, 10, tzinfo=UTC)


def read(path: Path) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """The report, events and rejected rows of a table read with `MAP`."""
    events, rejected = MemorySink(), MemorySink()
    report = read_logs([path], "table", events, rejected, options=MAP)
    return report.to_dict(), events.frame(EVENT_SCHEMA).sort("row_id"), rejected.frame(REJECTED_SCHEMA)


def spark_csv(rows: list[list[str]], sep: str = ",") -> str:
    """What Spark's `df.write.csv` writes (univocity's CsvWriter, quote `"`, escape `\\`,
    its defaults): a field holding a quote, the separator or a line break in quotes, each
    quote and backslash inside escaped with a backslash; any other field as it is."""

    def field(value: str) -> str:
        if not any(c in value for c in ('"', sep, "\n", "\r")):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(sep.join(map(field, row)) + "\n" for row in rows)


def python_csv(rows: list[list[str]], sep: str = ",", **dialect) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n", **dialect).writerows(rows)
    return buf.getvalue()


WRITERS = {
    "rfc": python_csv,  # RFC 4180: Python's csv, pandas, polars
    "escape": lambda rows, sep: python_csv(rows, sep, doublequote=False, escapechar="\\"),
    "spark": spark_csv,
    "raw": lambda rows, sep: "".join(sep.join(row) + "\n" for row in rows),  # AOL's, `paste`'s
}
DIALECTS = {"rfc": ('"', Quoting.DOUBLED), "escape": ('"', Quoting.ESCAPED_ANYWHERE), "spark": ('"', Quoting.ESCAPED),
            "raw": (None, Quoting.DOUBLED)}  # fmt: skip


def time_of(i: int) -> str:
    return f"{START + timedelta(minutes=i):%Y-%m-%d %H:%M:%S}"


# (writer, separator, file name): a raw file is tab-separated, and a `.tsv` too
CASES = [(w, sep, name) for w in sorted(WRITERS) for sep in (",", "\t") for name in (".csv", ".tsv")
         if sep == "\t" or (w != "raw" and name == ".csv")]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.text(alphabet='ab "\\,\t\né', min_size=1, max_size=8).filter(str.strip), min_size=1,
                   max_size=12),
    case=st.sampled_from(CASES),
    order=st.sampled_from([("user", "time", "query"), ("query", "user", "time"), ("user", "query", "time")]),
)  # fmt: skip
def test_every_record_is_its_own_row_and_reads_back_where_its_dialect_is_read(tmp_path_factory, texts, case, order):
    """Property: texts of quotes, backslashes, separators and line breaks, written by
    Python's csv (quotes doubled, or escaped with `escapechar`), by Spark's writer or by a
    raw tab-separated one, named `.csv` or `.tsv`: every record is one row, read or
    rejected (but for an `unclosed_quote` row at the file's end, which holds the records
    after it), and where the file is read in its writer's dialect, every text reads back
    as written."""
    writer, sep, name = case
    if writer == "raw":  # what a raw log's line can hold
        texts = [t.replace("\t", " ").replace("\n", " ") for t in texts]
        texts = [t for t in texts if t.strip()] or ["a"]
    records = [{"user": "u1", "time": time_of(i), "query": t} for i, t in enumerate(texts)]
    write = WRITERS[writer]
    body = write([list(order)] + [[r[c] for c in order] for r in records], sep)
    path = tmp_path_factory.mktemp("d") / f"log{name}"
    path.write_text(body)
    report, events, rejected = read(path)
    starts = _record_lines(write, list(order), records, sep)
    # each row read is the record of its row id, each rejected one starts on its record's line
    assert [f"{t:%Y-%m-%d %H:%M:%S}" for t in events["ts"]] == [time_of(i) for i in events["row_id"]]
    assert rejected["line_no"].to_list() == [starts[i] for i in rejected["row_id"]]
    last = rejected.filter(pl.col("row_id") == report["rows_in"] - 1)["reason"].to_list()
    if last != [Reason.UNCLOSED_QUOTE]:
        assert report["rows_in"] == len(texts), (body, rejected.rows())
    fmt = format_for("table", path, MAP)
    read_so = (fmt.quote, fmt.quoting) == DIALECTS[writer]
    event(f"{writer} read {'so' if read_so else 'otherwise'}")
    if read_so:
        assert events["query"].to_list() == texts, (body, fmt.read_as, rejected.rows())


def _record_lines(write, header: list[str], records: list[dict], sep: str) -> list[int]:
    """The line each record starts on (1-based, the header line 1), as `write` writes them."""
    line, starts = 1 + write([header], sep).count("\n"), []
    for r in records:
        starts.append(line)
        line += write([[r[c] for c in header]], sep).count("\n")
    return starts


# ---- the new user's files (F4, F6) ----
TAB_NAMED = (  # an AOL slice saved by hand as `.csv`: tab-separated, raw
    "AnonID\tQuery\tQueryTime\n"
    '1\t"new york" hotels\t2006-03-01 10:00:00\n1\t"exact phrase"\t2006-03-01 10:01:00\n'
    '1\t12" pizza\t2006-03-01 10:02:00\n1\t"unclosed phrase\t2006-03-01 10:03:00\n'
    '1\tnext row\t2006-03-01 10:04:00\n1\tlast "q" row\t2006-03-01 10:05:00\n'
)


@pytest.mark.parametrize("name", ["tab-named.csv", "tab-named.tsv"])
def test_a_tab_separated_log_reads_alike_whatever_its_name(tmp_path, name):
    """The same bytes named `.csv` were read with CSV quoting: the phrase queries lost
    their quotes (`"new york" hotels` as `new york hotels`), and `"unclosed phrase` took
    the next two rows into one `unclosed_quote` row. A `.csv` whose header is separated by
    tabs is judged as a TSV is: raw here, every text as written."""
    from sessions.formats.dialect import READ_AS_RAW

    (tmp_path / name).write_text(TAB_NAMED)
    events, rejected = MemorySink(), MemorySink()
    options = ReadOptions(map="user=AnonID,time=QueryTime,text=Query")
    report = read_logs([tmp_path / name], "table", events, rejected, options=options).to_dict()
    assert events.frame()["query"].to_list() == [
        '"new york" hotels', '"exact phrase"', '12" pizza', '"unclosed phrase', "next row", 'last "q" row']  # fmt: skip
    assert (report["rows_in"], report["rows_rejected"]) == (6, 0)
    tab_csv = " (a .csv separated by tabs, as its header line shows)" if name.endswith(".csv") else ""
    assert report["files"][0]["read_as"] == READ_AS_RAW + tab_csv


def spark_like(n: int = 2_000) -> tuple[str, list[str]]:
    """The new user's `spark-like.csv`: AOL rows as `df.write.csv(header=True)` writes
    them, record 501 the query `samsung tv 32"` (an inch sign) and record 1501 `say "hi"
    now`; and the texts."""
    texts = [f"query {i}" for i in range(n)]
    texts[500], texts[1500] = 'samsung tv 32"', 'say "hi" now'
    rows = [["AnonID", "Query", "QueryTime"]]
    times = [f"{START + timedelta(minutes=i):%Y-%m-%dT%H:%M:%S}.000Z" for i in range(n)]
    rows += [[str(1000 + i // 10), t, times[i]] for i, t in enumerate(texts)]
    return spark_csv(rows), texts


def test_sparks_csv_is_read_in_its_dialect_every_record_its_own_row(tmp_path):
    """Spark's CSV (quote `"`, escape `\\`): `"samsung tv 32\\""` ran on to the next quote,
    1,001 lines, so 2,000 records read as `rows in 1,000`, `rows ok 999` and one
    `unclosed_quote` row, with no word of the escaping. It is read as Spark wrote it, and
    the report says so."""
    from sessions.formats.dialect import READ_AS_ESCAPED

    body, texts = spark_like()
    assert '"samsung tv 32\\""' in body and '"say \\"hi\\" now"' in body
    (tmp_path / "spark-like.csv").write_text(body)
    events, rejected = MemorySink(), MemorySink()
    options = ReadOptions(map="user=AnonID,time=QueryTime,text=Query")
    report = read_logs([tmp_path / "spark-like.csv"], "table", events, rejected, options=options).to_dict()
    assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (2_000, 2_000, 0)
    assert events.frame()["query"].to_list() == texts
    assert report["files"][0]["read_as"] == "CSV, " + READ_AS_ESCAPED[Quoting.ESCAPED]


@pytest.mark.parametrize(
    ("body", "texts"),
    [
        (  # the user's bs-mid.csv: an escaped quote ending a text, and a quote doubled (files joined)
            'user,query,time\n1,"tv 32\\"",2006-03-01T10:00:00Z\n1,next row,2006-03-01T10:01:00Z\n'
            '1,third,2006-03-01T10:02:00Z\n1,"has ""q"" ok",2006-03-01T10:03:00Z\n1,fifth,2006-03-01T10:04:00Z\n',
            ['tv 32"', "next row", "third", 'has "q" ok', "fifth"],
        ),
        (  # bs-end.csv: the text ends in an escaped quote, the last field ("nothing could be read")
            'user,time,query\n1,2006-03-01T10:00:00Z,"a \\""\n1,2006-03-01T10:01:00Z,next row\n'
            "1,2006-03-01T10:02:00Z,third\n",
            ['a "', "next row", "third"],
        ),
        (  # a text that is only an escaped quote
            'user,time,query\n1,2006-03-01T10:00:00Z,"\\""\n1,2006-03-01T10:01:00Z,"a,b"\n',
            ['"', "a,b"],
        ),
    ],
)
def test_an_escaped_quote_anywhere_in_a_text_reads_as_written(tmp_path, body, texts):
    """The new user's 5-row file lost 4 rows into one `unclosed_quote` row, the 3-row one
    failed as "nothing could be read": a text ending in an escaped quote ran on over the
    records after it. Both read every record, each text as written."""
    (tmp_path / "t.csv").write_text(body)
    report, events, rejected = read(tmp_path / "t.csv")
    assert events["query"].to_list() == texts
    assert (report["rows_in"], rejected.height) == (len(texts), 0)


def test_a_text_r_ended_in_a_backslash_is_left_open_alone(tmp_path):
    """R's `write.table` escapes a quote but not a backslash: a text ending in one is
    `"c:\\dir\\"`, its closing quote escaped. Read with the file's other escaped quotes, it
    is an `unclosed_quote` row of its own line, the records after it read."""
    (tmp_path / "r.csv").write_text(
        '"user","time","query"\n"u1","2006-03-01 10:00:00","say \\"hi\\" now"\n'
        '"u1","2006-03-01 10:01:00","c:\\dir\\"\n"u1","2006-03-01 10:02:00","next"\n'
        '"u1","2006-03-01 10:03:00","last \\"q\\""\n'
    )
    report, events, rejected = read(tmp_path / "r.csv")
    assert events["query"].to_list() == ['say "hi" now', "next", 'last "q"']
    assert rejected.select("line_no", "reason").rows() == [(3, Reason.UNCLOSED_QUOTE)]
    assert report["rejected_lines_by_reason"] == {Reason.UNCLOSED_QUOTE: 1}


def test_a_backslash_before_a_doubled_quote_is_rfc_4180_text_and_an_escaped_quote_its_own_row(tmp_path):
    """RFC 4180 text with a backslash before a quote (`say \\"hi\\"`, written with its
    quotes doubled) reads as RFC 4180 says; a row among them with a backslash-escaped quote (files of two
    writers joined) is one `backslash_escape` row, wherever its escaped quote falls (the
    end of its text, mid-text, the whole text), never one row taking the records after it."""
    rfc = ['C:\\"dir"', 'say \\"hi\\"', 'a\\", b']  # texts with a backslash before a quote
    rows = [["user", "time", "query"], *(["u", time_of(i), t] for i, t in enumerate(rfc))]
    escaped = ['"tv 32\\""', '"say \\"hi\\" now"', '"\\""']
    lines = [f"u,{time_of(10 + i)},{q}\nu,{time_of(20 + i)},after {i}\n" for i, q in enumerate(escaped)]
    (tmp_path / "t.csv").write_text(python_csv(rows) + "".join(lines))
    report, events, rejected = read(tmp_path / "t.csv")
    assert events["query"].to_list() == [*rfc, "after 0", "after 1", "after 2"]
    assert rejected.select("line_no", "reason").rows() == [(5, Reason.BACKSLASH_ESCAPE), (7, Reason.BACKSLASH_ESCAPE),
                                                           (9, Reason.BACKSLASH_ESCAPE)]  # fmt: skip
    assert report["rejected_lines_by_reason"] == {Reason.BACKSLASH_ESCAPE: 3}
    assert report["files"][0]["read_as"] is None
