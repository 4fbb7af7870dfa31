"""A delimited table's quotes, doubled (RFC 4180) or escaped with a backslash (Spark, R's
`write.table`): where a file is read as RFC 4180, a record with an escaped quote is told
why, alone, never run into the records after it (`sessions.quoting`); a tab-separated
table is judged raw or CSV-quoted whatever its name (`sessions.formats.dialect`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from sessions.formats import ReadOptions
from sessions.ingest import read_logs
from sessions.io import MemorySink
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA, Reason

MAP = ReadOptions(map="user=user,time=time,text=query")
START = datetime(2024, 1, 1, 10, tzinfo=UTC)


def read(path: Path) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """The report, events and rejected rows of a table read with `MAP`."""
    events, rejected = MemorySink(), MemorySink()
    report = read_logs([path], "table", events, rejected, options=MAP)
    return report.to_dict(), events.frame(EVENT_SCHEMA).sort("row_id"), rejected.frame(REJECTED_SCHEMA)


def python_csv(rows: list[list[str]], sep: str = ",", **dialect) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n", **dialect).writerows(rows)
    return buf.getvalue()


def time_of(i: int) -> str:
    return f"{START + timedelta(minutes=i):%Y-%m-%d %H:%M:%S}"


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


# ---- a tab-separated `.csv` (the new user's F4) ----
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
