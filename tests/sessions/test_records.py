"""Splitting text files into records: line numbers, quoting, encodings, blocks."""

from __future__ import annotations

import csv
import gzip
import io

import polars as pl
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from sessions import storage
from sessions.records import BOM, LINE_ENDING_SNIFF_BYTES, RECORD_SCHEMA, archive_refusal, iter_records


def records(path, **kw) -> pl.DataFrame:
    return pl.concat(list(iter_records(path, **kw)) or [pl.DataFrame(schema=RECORD_SCHEMA)])


def test_lines_numbers_and_terminators(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"a\tb\r\n\nc\nlast")
    df = records(path)
    assert df["line_no"].to_list() == [1, 2, 3, 4]
    assert df["text"].to_list() == ["a\tb", "", "c", "last"]
    assert df["terminated"].to_list() == [True, True, True, False]


def test_invalid_utf8_is_null_and_escaped(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes("ok\ncaf\xe9\nné\n".encode("latin-1").replace(b"n\xe9", "né".encode()))
    df = records(path)
    assert df["text"].to_list() == ["ok", None, "né"]
    assert df["undecodable"].to_list() == [None, "caf\\xe9", None]


def test_gzip_is_read_transparently(tmp_path):
    path = tmp_path / "log.txt.gz"
    path.write_bytes(gzip.compress(b"x\ny\n"))
    assert records(path)["text"].to_list() == ["x", "y"]


def test_quoted_newlines_hold_a_record_together(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\n"multi\nline ""quoted""",2\nplain,3\n')
    df = records(path, quote='"')
    assert df["line_no"].to_list() == [1, 2, 4]
    assert df["text"][1] == '"multi\nline ""quoted""",2'


def test_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert list(iter_records(path)) == []


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400) | st.binary(max_size=200).map(lambda b: BOM + b.replace(b"\n", b"\n" + BOM)),
       block=st.integers(min_value=1, max_value=64))  # fmt: skip
@example(data=b"\r", block=1)  # a CRLF file cut before its last LF (found by hypothesis in CI's place)
def test_any_bytes_any_block_size_reassemble_exactly(tmp_path_factory, data, block):
    """Records are exactly the newline-separated pieces of the file, however it is cut
    (a byte-order mark that starts the file or a record is not text; in a file whose
    lone CRs outnumber its LFs, a CR is a newline)."""
    path = tmp_path_factory.mktemp("b") / "x.bin"
    path.write_bytes(data)
    assume(storage.compression_in(data[: storage.HEAD_BYTES], path) is None)  # bytes as stored, not a compression's
    assume(archive_refusal(data.removeprefix(BOM)) is None)  # the reader looks past a byte-order mark
    df = records(path, block_bytes=block)
    body = data.removeprefix(BOM)
    head = body[:LINE_ENDING_SNIFF_BYTES]
    if head.count(b"\r") - head.count(b"\r\n") > head.count(b"\n"):
        body = body.replace(b"\r", b"\n")
    pieces = body.split(b"\n") if body else []
    if body.endswith(b"\n"):
        pieces = pieces[:-1]
    assert df.height == len(pieces)
    if not pieces:
        return
    assert df["line_no"].to_list() == list(range(1, len(pieces) + 1))
    for got, undecodable, piece in zip(df["text"], df["undecodable"], pieces, strict=True):
        piece = piece.removesuffix(b"\r")
        try:
            assert got == piece.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            assert got is None and undecodable == piece.decode("utf-8", "backslashreplace")


# No bare "\r": csv writes it unquoted at a line end, where it reads as CRLF.
field = st.text(alphabet=st.sampled_from(list('ab ,"\n;é')), max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(field, min_size=3, max_size=3), min_size=1, max_size=20), block=st.integers(1, 50))
def test_csv_records_survive_any_block_size(tmp_path_factory, rows, block):
    """What Python's csv module writes (RFC 4180) comes back as the same records."""
    path = tmp_path_factory.mktemp("c") / "t.csv"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    df = records(path, quote='"', block_bytes=block)
    parsed = list(csv.reader(io.StringIO("\n".join(df["text"].to_list()) + "\n")))
    assert parsed == rows
    assert not df["unclosed"].any()


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(field, min_size=3, max_size=3), min_size=1, max_size=12), at=st.integers(0, 11),
       after=st.text(alphabet=st.sampled_from(list("ab ,\n;é")), max_size=40), block=st.integers(1, 50))  # fmt: skip
def test_a_quote_left_open_makes_its_record_the_last_and_unclosed(tmp_path_factory, rows, at, after, block):
    """A quote opening a field that nothing closes: the records before it are read as
    written, and it is the last record, marked `unclosed`, with all that follows it."""
    at = min(at, len(rows))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows[:at])
    path = tmp_path_factory.mktemp("c") / "t.csv"
    path.write_text(buf.getvalue() + '"' + after, encoding="utf-8")
    df = records(path, quote='"', block_bytes=block)
    assert list(csv.reader(io.StringIO("".join(t + "\n" for t in df["text"].to_list()[:-1])))) == rows[:at]
    assert df["text"][-1] == '"' + after and df["unclosed"].to_list() == [False] * at + [True]


# Any text at all of these pieces, well-formed CSV or not (stray and unbalanced quotes,
# text after a closing quote, CRLF inside and outside quotes); no bare "\r", which csv
# takes as a line end of its own.
csv_text = st.lists(st.sampled_from(["a", "b", " ", ",", '"', '""', "\n", "\r\n", "é", '12" pan', "\\"]), max_size=60)


@settings(max_examples=100, deadline=None)
@given(pieces=csv_text, block=st.integers(1, 40))
def test_the_lines_of_the_records_add_up_to_the_lines_of_the_file(tmp_path_factory, pieces, block):
    """Property: each record's `lines` are the physical lines from its first to the next
    record's, so that they add up to the file's (a quote left open takes the rest: the
    breaking helper's file of 40,000 records, one opening quote taking 22,001 of them,
    reported one rejected row and nothing of its size)."""
    text = "".join(pieces)
    path = tmp_path_factory.mktemp("l") / "t.csv"
    path.write_bytes(text.encode())
    df = records(path, quote='"', block_bytes=block)
    physical = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    assert df["lines"].sum() == physical
    starts = df["line_no"].to_list()
    assert df["lines"].to_list() == [b - a for a, b in zip(starts, [*starts[1:], physical + 1][: len(starts)],
                                                           strict=True)]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(pieces=csv_text, block=st.integers(1, 40))
def test_records_and_fields_are_what_pythons_csv_reads(tmp_path_factory, pieces, block):
    """Records and their fields, for any text and any block size, equal `csv.reader`'s
    rows, up to a field closed where a backslash-escaping writer closed it (`escaped`,
    `"tv 32\\""`), which `csv` runs on over the records after it."""
    from sessions.fields import split_delimited

    text = "".join(pieces)
    path = tmp_path_factory.mktemp("q") / "t.csv"
    path.write_bytes(text.encode())
    df = records(path, quote='"', sep=",", block_bytes=block)
    got = df.select(split_delimited(pl.col("text"), ",", '"'))["text"].to_list()
    expected = list(csv.reader(io.StringIO(text, newline="")))
    if df["escaped"].any():  # csv's rows from the record closed so on are one
        cut = df["escaped"].arg_true()[0]
        got, expected = got[:cut], expected[:cut]
    assert [row or [""] for row in got] == [row or [""] for row in expected]


@settings(max_examples=200, deadline=None)
@given(pieces=csv_text, block=st.integers(1, 40))
def test_a_record_is_left_open_only_where_pythons_strict_csv_stops(tmp_path_factory, pieces, block):
    """`unclosed` marks a record whose quoted field is left open (at the end of the file,
    or "closed" by a quote in a later line's text): Python's csv, strict, refuses each
    such record; a text it reads whole holds none."""

    def strict_reads(text: str) -> bool:
        try:
            list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error:
            return False
        return True

    text = "".join(pieces)
    path = tmp_path_factory.mktemp("q") / "t.csv"
    path.write_bytes(text.encode())
    df = records(path, quote='"', sep=",", block_bytes=block)
    for record, left_open in zip(df["text"], df["unclosed"], strict=True):
        assert not (left_open and strict_reads(record))
    assert not (strict_reads(text) and df["unclosed"].any())
    # the same of `escaped`: a quoted field closed by a quote after a backslash, text after it
    for record, escaped in zip(df["text"], df["escaped"], strict=True):
        assert not (escaped and strict_reads(record))
    assert not (strict_reads(text) and df["escaped"].any())


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["a", ",", "\t", '"', '""', "\r", "\x00", "é", " ",
                                                                 "\ue000"]),
                                                max_size=12).map("".join)), max_size=30),
    sep=st.sampled_from([",", "\t", ";"]),
)  # fmt: skip
def test_each_record_splits_as_pythons_csv_splits_it(rows, sep):
    """Records without a quote, a CR or a NUL are split as they are, the rest by `csv`
    (a CSV block of 344,477 records went from 9.6 s to 0.3 s): the fields are `csv`'s
    for every record, a null record null. A CR outside quotes, where `csv` stops inside
    a field ("new-line character seen"; pandas and Python's `csv` write a lone CR
    unquoted) or drops it at the record's end, is the field's text as written, like any
    other character there and as in a TSV or an AOL line; in a record holding U+E000
    too (the fourth breaking helper's find: it was the CRs' one stand-in)."""
    from sessions.fields import split_delimited

    def expected(record: str | None) -> list[str] | None:
        return (
            None
            if record is None
            else next(csv.reader([record.replace("\r", "☃")], delimiter=sep, quotechar='"'), [""])
        )

    got = pl.DataFrame({"text": rows}, schema={"text": pl.String}).select(split_delimited(pl.col("text"), sep, '"'))
    assert [r if r is None else [f.replace("\r", "☃") for f in r] for r in got["text"].to_list()] == [
        expected(r) for r in rows
    ]


@settings(max_examples=100, deadline=None)
@given(pieces=csv_text, opener=st.integers(0, 60), block=st.integers(1, 90))
def test_an_unclosed_quote_ends_where_it_ends_whatever_the_blocks(tmp_path_factory, pieces, opener, block):
    """A record left open by a quote is cut at the first newline `MAX_RECORD_BYTES` past
    its start: the records are the same for every block size (the breaker's 17 MiB CSV
    gave other records with 16 MiB blocks than with 64 MiB ones)."""
    from unittest import mock

    text = "".join(pieces)
    at = min(opener, len(text))
    path = tmp_path_factory.mktemp("q") / "t.csv"
    path.write_text(text[:at] + '"' + text[at:] + "\nx,y\n" * 8, encoding="utf-8")
    with mock.patch("sessions.records.MAX_RECORD_BYTES", 24):
        whole = records(path, quote='"', block_bytes=1 << 20)
        assert records(path, quote='"', block_bytes=block).equals(whole)
