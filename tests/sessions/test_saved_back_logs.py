"""A raw log of a built-in format (AOL's, Webis-SMC-12's: tab-separated, no quoting)
that a user saved back with pandas' `to_csv(sep="\\t")` is read as the texts pandas was
given; the collection's own raw files, quotes of every shape in them, read as written;
a file mixing both, or with a quoted field that does not close, reads raw and says why
(`sessions.formats.dialect.log_dialect`)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from sessions.formats.aol import AOL_COLUMNS
from sessions.formats.dialect import READ_AS_MIXED, READ_AS_QUOTED, READ_AS_RAW, READ_AS_SAVED
from sessions.formats.gold import WEBIS_COLUMNS
from sessions.ingest import read_logs
from sessions.io import MemorySink
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA

# The user's example: AOL queries holding quotes, as the collection has them
QUERIES = ['"free games"', 'say "hi"', '"', "plain query", 'free "games', '"unclosed', '""', 'a "b" c']


def read(path: Path, fmt: str) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """The report, events (by row id) and rejected rows of one file read as `fmt`."""
    events, rejected = MemorySink(), MemorySink()
    report = read_logs([path], fmt, events, rejected)
    return report.to_dict(), events.frame(EVENT_SCHEMA).sort("row_id"), rejected.frame(REJECTED_SCHEMA)


def rows_of(
    fmt: str, queries: list[str], users: list[int] | None = None, ranks: list[int | None] | None = None
) -> pd.DataFrame:
    """A log of `fmt`'s columns, one row a query, each a minute after the last; the
    rows of `ranks` given a click at that rank on `http://r<rank>.com` (else the click
    fields empty texts)."""
    users = users or [1001] * len(queries)
    ranks = ranks or [None] * len(queries)
    clicks = [("", "") if r is None else (str(r), f"http://r{r}.com") for r in ranks]
    times = [f"2006-03-{1 + i // 1440:02d} {i // 60 % 24:02d}:{i % 60:02d}:00" for i in range(len(queries))]
    rows = zip(users, queries, times, clicks, strict=True)
    if fmt == "aol":
        return pd.DataFrame([(u, q, t, *c) for u, q, t, c in rows], columns=list(AOL_COLUMNS), dtype=str)
    return pd.DataFrame([(u, q, t, *c, "1", "") for u, q, t, c in rows], columns=list(WEBIS_COLUMNS), dtype=str)


def raw_tsv(frame: pd.DataFrame) -> str:
    """The log as its collection writes it: fields joined by tabs, nothing quoted."""
    return "".join("\t".join(map(str, row)) + "\n" for row in [list(frame.columns), *frame.itertuples(index=False)])


def pandas_tsv(frame: pd.DataFrame) -> str:
    """The log as `df.to_csv(path, sep="\\t", index=False)` writes it."""
    buf = io.StringIO()
    frame.to_csv(buf, sep="\t", index=False)
    return buf.getvalue()


def polars_tsv(frame: pd.DataFrame) -> str:
    """The log as polars' `write_csv(separator="\\t")` writes it: quoted where pandas
    quotes, and an empty text (not a null) as `""`."""
    return pl.from_pandas(frame).write_csv(separator="\t")


def test_a_log_saved_by_polars_with_empty_texts_reads_no_click_where_none_was(tmp_path):
    """A slice read with its empty click fields as empty texts (`fill_null("")`) and
    written back by polars holds `""` in them, and no other quote: it read raw, and
    every row without a click was `bad_click_rank`, the file "nothing could be read".
    ItemRank and ClickURL (Webis-SMC's ClickRank, ClickDomain and MissionID) never
    hold a quote, so `""` there is the empty field polars was given."""
    for fmt in ("aol", "webis-smc"):
        frame = rows_of(fmt, ["plain query", "another", "a third"], ranks=[None, 2, None])
        path = tmp_path / f"{fmt}.tsv"
        path.write_text(polars_tsv(frame))
        assert '\t""\t' in path.read_text()
        report, events, rejected = read(path, fmt)
        assert rejected.height == 0, rejected.rows()
        assert events["click_rank"].to_list() == [None, 2, None]
        assert events["click_url"].to_list() == [None, "http://r2.com", None]
        assert report["files"][0]["read_as"] == READ_AS_RAW  # the queries: nothing there only a writer writes
        if fmt == "webis-smc":
            assert events["gold_mission"].to_list() == ["1001/1"] * 3
    # Webis-SMC-12 as published, its separator and blank lines read by polars as rows and written back with
    # `""` fields: layout still, not 923 rows of bad_time (the fresh user's find)
    raw = raw_tsv(rows_of("webis-smc", ["plain query", "another"], ranks=[None, 2]))
    header, first, second = raw.splitlines()
    path = tmp_path / "published.txt"
    path.write_text("\n".join([header, "-" * 40, first, "", "-" * 40, second, ""]) + "\n")
    saved = tmp_path / "webis-polars.tsv"
    pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False).fill_null("").write_csv(
        saved, separator="\t"
    )
    assert '\t""\t' in saved.read_text() and "-" * 40 + '\t""' in saved.read_text()
    report, events, rejected = read(saved, "webis-smc")
    assert rejected.height == 0 and events["query"].to_list() == ["plain query", "another"], rejected.rows()
    assert report["skipped_lines"].get("layout", 0) >= 2, report["skipped_lines"]
    # a raw log's `""` query is its own text still: the collection writes quotes in queries
    path = tmp_path / "raw.tsv"
    path.write_text(raw_tsv(rows_of("aol", ['""', "x"], ranks=[1, None])))
    _, events, rejected = read(path, "aol")
    assert rejected.height == 0 and events["query"].to_list() == ['""', "x"]


@pytest.mark.parametrize("fmt", ["aol", "webis-smc"])
def test_a_log_saved_back_by_pandas_reads_the_texts_pandas_was_given(tmp_path, fmt):
    """pandas writes `"free games"` as `\"\"\"free games\"\"\"`: it was read so, three quotes
    each side, another query; now the file reads as its writer quoted it, and says so."""
    frame = rows_of(fmt, QUERIES)
    path = tmp_path / "slice.tsv"
    frame.to_csv(path, sep="\t", index=False)
    assert '"""free games"""' in path.read_text()
    report, events, rejected = read(path, fmt)
    assert rejected.select("line_no", "reason").rows() == []
    assert events["query"].to_list() == QUERIES
    assert report["files"][0]["read_as"] == READ_AS_QUOTED


@pytest.mark.parametrize("fmt", ["aol", "webis-smc"])
def test_a_raw_part_joined_to_a_saved_one_or_an_unclosed_quote_reads_raw_and_says_where(tmp_path, fmt):
    """Lines that look CSV-quoted but for one field no CSV writer writes (a raw part after
    a saved one; a quoted field left open on its line): read as written, every field, as
    the collection is, and the summary names that field (read quoted, the raw
    `"free games"` was `free games` and `"unclosed` ran on, without a word)."""
    saved = ['"free games"', 'say "hi"', '"', 'free "games', "plain"]
    cases = {
        "mixed": (pandas_tsv(rows_of(fmt, saved)), raw_tsv(rows_of(fmt, ['"free games"'])), '"free games"'),
        "unclosed": (pandas_tsv(rows_of(fmt, saved)), raw_tsv(rows_of(fmt, ['"unclosed'])), '"unclosed'),
    }
    for name, (first, second, odd) in cases.items():
        body = first + second.split("\n", 1)[1]  # the second part without its header
        path = tmp_path / f"{name}.tsv"
        path.write_text(body)
        report, events, _ = read(path, fmt)
        written = [line.split("\t")[1] for line in body.splitlines()[1:]]
        assert events["query"].to_list() == written, name
        assert report["files"][0]["read_as"] == READ_AS_RAW + READ_AS_MIXED.format(line=7, field=odd), name


def test_a_raw_part_joined_to_a_quote_all_one_or_a_headerless_raw_log_keeps_its_quotes(tmp_path):
    """The saved-back breaker's two silent changes of raw text. A raw part after a part
    pandas wrote with `quoting=csv.QUOTE_ALL` (header and every field in quotes) read
    quoted: the raw `"free games"` was `free games`, `"a""b"` was `a"b`. A log without its
    header line (AOL's is optional) had its first line taken as one and never judged: a
    raw `"free games"` there lost its quotes where a doubled quote below looked like a
    writer's. Both read raw, every raw field as written, the odd field named. (AOL's:
    Webis-SMC-12's reader needs its header line as written, and refuses a quoted one.)"""
    import csv

    fmt = "aol"

    raw = ['"free games"', '"a""b"', "x"]
    buf = io.StringIO()
    rows_of(fmt, ['say "hi" now', "plain"]).to_csv(buf, sep="\t", index=False, quoting=csv.QUOTE_ALL)
    joined = tmp_path / "quote-all-then-raw.tsv"
    joined.write_text(buf.getvalue() + raw_tsv(rows_of(fmt, raw)).split("\n", 1)[1])
    report, events, _ = read(joined, fmt)
    assert events["query"].to_list()[-3:] == raw
    assert report["files"][0]["read_as"] == READ_AS_RAW + READ_AS_MIXED.format(line=4, field="1001")
    headerless = tmp_path / "headerless.tsv"
    headerless.write_text(raw_tsv(rows_of(fmt, ['"free games"', "x", '"a ""b"""'])).split("\n", 1)[1])
    report, events, _ = read(headerless, fmt)
    assert events["query"].to_list() == ['"free games"', "x", '"a ""b"""']
    assert report["files"][0]["read_as"] == READ_AS_RAW + READ_AS_MIXED.format(line=1, field='"free games"')


@pytest.mark.parametrize("fmt", ["aol", "webis-smc"])
def test_a_saved_part_after_a_raw_one_is_named_where_the_file_reads_raw(tmp_path, fmt):
    """The saved-back breaker's find: a file whose raw part comes first (or a small mixed
    one) was judged raw at its first lines and said only `raw TSV`: the saved part kept
    pandas' triple quotes around `free games` without a hint that the file is mixed. Read as written
    still (the bytes cannot say where a part begins), and the first field only a CSV
    writer writes is named."""
    raw = raw_tsv(rows_of(fmt, ['"free games"', "x"]))
    saved = pandas_tsv(rows_of(fmt, ['"free games"', "plain"])).split("\n", 1)[1]
    path = tmp_path / "raw-then-saved.tsv"
    path.write_text(raw + saved)
    report, events, _ = read(path, fmt)
    assert events["query"].to_list() == ['"free games"', "x", '"""free games"""', "plain"]
    assert report["files"][0]["read_as"] == READ_AS_RAW + READ_AS_SAVED.format(line=4, field='"""free games"""')


# A pandas-quoted field: in quotes, each quote inside doubled, at least one inside (`"free ""games"`)
_CSV_WRITTEN = re.compile(r'"(?:[^"]|"")*""(?:[^"]|"")*"')


@settings(max_examples=150, deadline=None)
@given(
    queries=st.lists(
        st.text(alphabet=st.sampled_from('ab "\\;-'), min_size=1, max_size=8).filter(
            lambda q: q.strip(" ") not in ("", "-")
        ),
        min_size=1,
        max_size=12,
    ),
    fmt=st.sampled_from(["aol", "webis-smc"]),
    writer=st.sampled_from(["raw", "raw, no header", "pandas", "polars"]),
    ranks=st.lists(st.sampled_from([None, 1, 3]), min_size=12, max_size=12),
)
@example(queries=["plain query", "x"], fmt="webis-smc", writer="polars", ranks=[None] * 12)  # no quote but `""`
def test_aol_like_rows_read_back_exactly_whoever_wrote_them(tmp_path_factory, queries, fmt, writer, ranks):
    """Random AOL-like queries with quotes (and backslashes) anywhere, with and without a
    click: written raw, as the collection writes them (AOL's with or without its header
    line), they read back as written; written by pandas' `to_csv` or polars' `write_csv`
    (an empty click field `""`), they read back as the writer was given them. (A raw file
    all of whose quote-holding queries are such as a CSV writer writes, `"a""b"`, is the
    one the bytes cannot tell: left out.)"""
    holding = [q for q in queries if '"' in q]
    if writer.startswith("raw") and holding and all(_CSV_WRITTEN.fullmatch(q) for q in holding):
        return
    writer = "raw" if fmt != "aol" and writer == "raw, no header" else writer  # AOL's header line is optional
    event(f"{writer}, {'with' if holding else 'without'} quotes")
    ranks = ranks[: len(queries)]
    frame = rows_of(fmt, queries, users=[1001 + i % 3 for i in range(len(queries))], ranks=ranks)
    path = tmp_path_factory.mktemp("log") / "log.tsv"
    text = {"pandas": pandas_tsv, "polars": polars_tsv}.get(writer, raw_tsv)(frame)
    path.write_text(text.split("\n", 1)[1] if writer == "raw, no header" else text)
    report, events, rejected = read(path, fmt)
    assert rejected.height == 0, rejected.rows()
    assert events["query"].to_list() == queries, (path.read_text(), report["files"][0]["read_as"])
    assert events["click_rank"].to_list() == ranks
