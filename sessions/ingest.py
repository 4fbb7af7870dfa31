"""Canonical events from raw logs: read every input in order, number the records
across inputs, split events from rejected records, and account for every one.

    >>> report = ingest(["user-ct-test-collection-01.txt.gz"], "aol", "out/aol")
    >>> report.rows_in == report.rows_ok + report.rows_rejected
    True

Outputs in the directory: `events.parquet`, `rejected.parquet`, `report.json`.
"""

from __future__ import annotations

import glob
import posixpath
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import polars as pl

from sessions import storage
from sessions.formats import Parsed, format_for, reads_as_parquet
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.formats.table import ARCHIVE_SUFFIXES, TABLE_KINDS, named_table_kind
from sessions.io import MANIFEST, REJECTED, REPORT, ParquetSink, claim_output, parquet_rows, write_report
from sessions.parallel import ordered_map
from sessions.records import DEFAULT_BLOCK_BYTES
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA

EVENTS_FILE = "events.parquet"
REJECTED_FILE = REJECTED
REPORT_FILE = REPORT  # written last: the output is complete once it is there


class AccountingError(RuntimeError):
    """Rows were lost or invented: rows_in != rows_ok + rows_rejected."""


class DamagedInputError(ValueError):
    """An input file is damaged and the job was told to be strict about it."""


@dataclass
class FileCount:
    """What one input file held: its records (events and rejected rows, by reason), the
    lines that are not records (`skipped_lines`: repeated headers, layout), the events
    whose wall time fell in an hour the zone's clocks repeat, by how they were read
    (`repeated_hour`: `sessions.times.RepeatedHour`), and, for a damaged compressed
    file, where and why its stream broke off (`damage`); `read_as`, how its fields were
    read where the file decided it (a TSV table written with CSV quoting);
    `rejected_lines_by_reason`, the physical lines the rejected rows took, by reason
    (more than their rows where a row took several: a quote left open takes every
    line up to the next one that closes it); `first_rejected`, while none of its records
    has been read, the first rejected record of each reason (`{"line_no", "raw"}`, raw
    cut to `EXAMPLE_CHARS` and one more character, which tells that it was longer): what
    a file none of whose records was read is named by and why
    (`workflows.jobs.common.why_rejected`), emptied once a record is read; `float_users`, the
    events of a CSV or TSV `table` whose user id is text in whole-float notation (`599381.0`), read as
    written (`Parsed.float_users`)."""

    path: str
    rows_in: int = 0
    rows_ok: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_lines: dict[str, int] = field(default_factory=dict)
    repeated_hour: dict[str, int] = field(default_factory=dict)
    damage: str | None = None
    read_as: str | None = None
    rejected_lines_by_reason: dict[str, int] = field(default_factory=dict)
    first_rejected: dict[str, dict] = field(default_factory=dict)
    float_users: int = 0

    def add(self, parsed: Parsed) -> None:
        """Count one parsed block of this file in."""
        self.rows_in += parsed.rows_read
        self.rows_ok += parsed.events.height
        self.rows_rejected += parsed.rejected.height
        self.rejected_by_reason = tally(
            self.rejected_by_reason, dict(parsed.rejected["reason"].value_counts().iter_rows())
        )
        self.skipped_lines = tally(self.skipped_lines, parsed.skipped)
        self.repeated_hour = tally(self.repeated_hour, parsed.repeated_hour)
        self.damage = parsed.damage or self.damage
        self.read_as = parsed.read_as or self.read_as
        self.rejected_lines_by_reason = tally(self.rejected_lines_by_reason, parsed.rejected_lines)
        self.float_users += parsed.float_users
        if self.rows_ok:
            self.first_rejected = {}
        elif parsed.rejected.height:  # none read yet: this block's first record of each reason not seen
            firsts = parsed.rejected.group_by("reason", maintain_order=True).first()
            for reason, line_no, raw in firsts.select("reason", "line_no", "raw").iter_rows():
                self.first_rejected.setdefault(reason, {"line_no": line_no, "raw": raw[: EXAMPLE_CHARS + 1]})


EXAMPLE_CHARS = 160  # of a rejected record, what an example of it shows


def tally(*counts: Mapping[str, int]) -> dict[str, int]:
    """The sum of `counts`, most common first, ties by name: one order whatever the
    order counted in (the blocks of a file, the files of a job, one engine or the other)."""
    total: Counter[str] = Counter()
    for each in counts:
        total.update(each)
    return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))


@dataclass
class IngestReport:
    """What an ingest read and wrote; `report.json` holds the same.

    `skipped_files` lists the files of input directories and patterns that are not
    logs (`not_log_reason`) and were not read; `skipped_lines` counts the lines that
    are not records, `repeated_hour` the times read in an hour the clocks repeat,
    `rejected_lines_by_reason` the physical lines the rejected rows took (`FileCount`),
    over all files.
    """

    format: str
    rows_in: int = 0
    rows_ok: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_lines: dict[str, int] = field(default_factory=dict)
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    repeated_hour: dict[str, int] = field(default_factory=dict)
    rejected_lines_by_reason: dict[str, int] = field(default_factory=dict)
    files: list[FileCount] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)  # the job's settings, as the job gives them

    @classmethod
    def of_files(
        cls, fmt: str, files: Sequence[FileCount], skipped_files: Sequence[dict[str, str]], strict: bool = False
    ) -> IngestReport:
        """The report that adds up the counts of every file (both engines). With `strict`
        (`--strict`), DamagedInputError naming the first damaged file instead."""
        damaged = [f for f in files if f.damage]
        if strict and damaged:
            raise DamagedInputError(
                f"{damaged[0].path}: damaged ({damaged[0].damage}); --strict refuses a damaged input (without it, "
                "every record before the damage is read and the rest reported as truncated_stream)"
            )
        report = cls(format=fmt, files=list(files), skipped_files=list(skipped_files))
        for f in files:
            report.rows_in += f.rows_in
            report.rows_ok += f.rows_ok
            report.rows_rejected += f.rows_rejected
        report.rejected_by_reason = tally(*(f.rejected_by_reason for f in files))
        report.skipped_lines = tally(*(f.skipped_lines for f in files))
        report.repeated_hour = tally(*(f.repeated_hour for f in files))
        report.rejected_lines_by_reason = tally(*(f.rejected_lines_by_reason for f in files))
        return report

    def check(self) -> None:
        """Raise AccountingError unless every input row is an event or a rejected row."""
        if self.rows_in != self.rows_ok + self.rows_rejected:
            raise AccountingError(
                f"rows_in={self.rows_in} but rows_ok={self.rows_ok} + rows_rejected={self.rows_rejected}"
                f" = {self.rows_ok + self.rows_rejected}"
            )

    def to_dict(self) -> dict:
        """The report as JSON-ready values (`report.json`)."""
        return asdict(self)


# Files that directories of logs often hold beside the logs (the AOL collection ships
# U500k_README.txt): documentation, licences, checksums, markers of finished jobs.
_NOT_LOG_NAMES = re.compile(r"readme|^(license|licence|copying|changelog|notice|authors|md5sums|sha\d*sums)\b",
                            re.IGNORECASE)  # fmt: skip
_NOT_LOG_SUFFIXES = {".md", ".rst", ".html", ".htm", ".pdf", ".doc", ".docx", ".md5", ".sha1", ".sha256",
                     ".sha512", ".crc", ".py", ".sh", ".yaml", ".yml", ".toml", ".ini", ".cfg",
                     # archives and images: DiffusionDB's download holds images/part-*.zip beside metadata.parquet
                     *ARCHIVE_SUFFIXES, ".png", ".jpg", ".jpeg", ".webp", ".gif"}  # fmt: skip


HIDDEN_REASON = "a hidden file (a name on its path starts with '.' or '_'): name it to read it"
FOLDER_MARKER_REASON = "an object named like a folder (its key ends with '/'): a marker, not a log"


NOT_A_TABLE_REASON = f"no table by its name (--format table reads {', '.join(TABLE_KINDS)}, compressed or not)"
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")  # a workbook (xlsx and ods are zip archives)
SPREADSHEET_REASON = "a spreadsheet, which is not read: save its sheet as CSV and give that"


def not_log_reason(path: str, fmt: str | None = None) -> str | None:
    """Why a file found in an input directory or pattern is not a log (and is skipped),
    or None: a README, a licence or a checksum, by its name or suffix, and a spreadsheet
    (`SPREADSHEET_REASON`); never a file named for a table (`.csv`, `.tsv`, `.jsonl`,
    `.parquet`, ...), whatever its stem, but for a Parquet file under a `fmt` that reads
    text (aol, webis-smc, gayo-avello, midjourney: `reads_as_parquet`), which would be read
    as lines of binary, every one rejected; with `fmt` table (which tells a table's kind
    by its name), any other file (`NOT_A_TABLE_REASON`). Files named one by one are
    always read."""
    name = storage.name(path)
    if named_table_kind(name) == "parquet" and fmt is not None and not reads_as_parquet(fmt, name):
        return f"a Parquet file, which --format {fmt} does not read (it reads text): read it with --format table"
    if named_table_kind(name):  # named for a table (`notice-board.csv`, `x.tsv.bz2`): a log, whatever its stem
        return None
    stem, suffix = posixpath.splitext(storage.uncompressed_name(name))  # `NOTES.pdf.bz2` is a .pdf
    if _NOT_LOG_NAMES.search(stem) or name in ("_SUCCESS", "_SUCCESS.crc"):
        return "documentation or a marker, by its name"
    if suffix.lower() in SPREADSHEET_SUFFIXES:
        return SPREADSHEET_REASON
    if suffix.lower() in _NOT_LOG_SUFFIXES:
        return f"a {suffix} file"
    return NOT_A_TABLE_REASON if fmt == "table" else None


def expand_inputs(
    inputs: Sequence[str | Path], skipped: list[dict[str, str]] | None = None, fmt: str | None = None
) -> list[str]:
    """Input files in the order given, local paths or URIs (`sessions.storage.expand`:
    a directory stands for its files, sorted by name; a glob pattern for its matches).

    Files of a directory or pattern that are not logs (`not_log_reason`: a README, a
    checksum file, a spreadsheet; a Parquet file for a `fmt` that reads text; for `fmt`
    table, any file not named for a table) are left out, and
    so are a directory's hidden files (a name on the path starting with `.` or `_`:
    `.DS_Store`, Spark's `_SUCCESS`); a file named on its own is always kept. A file the
    inputs take in twice (named twice, named and in a directory named, linked to) is
    read once, at its first place; a link in a directory that leads nowhere is no
    file. Each of those is appended to `skipped` as `{"path", "reason"}`. ValueError
    when a directory or pattern takes in a log beside its compressed twin
    (`refuse_compressed_twins`: `x.txt` and `x.txt.gz`), and when the inputs take in a
    sessionflow job's output (its report.json, or the parts of a dataset with a
    manifest): an output is read as a whole, never parsed as a log;
    FileNotFoundError when nothing but non-logs is left."""
    files: list[str] = []
    listed: set[str] = set()  # the files read that a directory or pattern brought in, not named on their own
    left_out: list[dict[str, str]] = []
    first_place: dict[str, str] = {}  # storage.file_identity -> the input file read for it
    for item in inputs:
        hidden: list[str] = []  # a directory's
        found = storage.expand([item], hidden)
        named = found == [storage.absolute(item)]  # a file named on its own
        for f in found:
            if not named and (reason := not_log_reason(f, fmt)) is not None:
                left_out.append({"path": f, "reason": reason})
            elif (same := storage.file_identity(f)) in first_place:
                left_out.append({"path": f, "reason": f"the same file as {first_place[same]}: read once"})
            else:
                first_place[same] = f
                files.append(f)
                if not named:
                    listed.add(f)
        left_out += [{"path": f, "reason": FOLDER_MARKER_REASON if f.endswith("/") else HIDDEN_REASON} for f in hidden]
        if (
            not named
            and (local := storage.local_path(item)) is not None
            and (local.is_dir() or storage.is_pattern(item))
        ):
            # a directory's links that lead nowhere, and a pattern's (glob.glob lists them; `expand` does not)
            links = local.rglob("*") if local.is_dir() else map(Path, glob.glob(str(local), recursive=True))
            broken = sorted(p for p in links if p.is_symlink() and not p.exists())
            left_out += [{"path": str(p), "reason": "a link to nothing"} for p in broken]
    refuse_compressed_twins(files, listed)
    if skipped is not None:  # each once, though a directory be named twice
        skipped += list({entry["path"]: entry for entry in left_out}.values())
    datasets = {storage.parent(f) for f in files if f.endswith(".parquet")}
    for location in [*(f for f in files if storage.name(f) == REPORT), *sorted(datasets)]:
        if storage.name(location) == REPORT or storage.exists(storage.join(location, MANIFEST)):
            where = storage.parent(location) if storage.name(location) == REPORT else location
            if all(f.startswith(f"{where}/") for f in files):  # an output alone
                raise ValueError(f"{where}: the output of a sessionflow job, not a raw log; give raw logs, or an "
                                 "output directory to a command that reads it (without --format)")  # fmt: skip
            raise ValueError(
                f"{where}: the output of a sessionflow job among the raw logs; give an output alone, and raw logs "
                "without outputs"
            )
    if not files:
        raise FileNotFoundError(f"{', '.join(map(str, inputs))}: no log files, only files that are not logs")
    return files


def compressed_twins(files: Sequence[str]) -> list[list[str]]:
    """The groups of `files` that are one name with and without a compression, or under
    several (`x.txt` and `x.txt.gz`, `x.txt.bz2`: `storage.COMPRESSIONS`), in one
    directory, in the order of `files`: what `gzip -k` and `gunzip -k` leave beside
    each other. Told by name alone: no file is opened (a log's twin is as big as it)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in files:
        groups.setdefault((storage.parent(f), storage.uncompressed_name(f)), []).append(f)
    return [group for group in groups.values() if len(group) > 1]


def refuse_compressed_twins(files: Sequence[str], listed: set[str]) -> None:
    """ValueError, one line, where the input `files` hold compressed twins
    (`compressed_twins`) one of which a directory or pattern brought in (`listed`):
    each record would be read twice, silently (a new user's `gzip -k`'d AOL file beside
    its original: 6,086 rows for 3,043). Twins named each on its own are read: the user
    said so. The first pair is named, with how many more there are."""
    twins = [group for group in compressed_twins(files) if listed.intersection(group)]
    if not twins:
        return
    first = twins[0]
    more = f" (and {len(twins) - 1:,} more such names)" if len(twins) > 1 else ""
    shown = " and ".join(storage.name(f) for f in first)
    raise ValueError(
        f"{storage.parent(first[0])}: holds {shown}{more}, most likely one log with and without its compression "
        "(what gzip -k and gunzip -k leave), whose records would all be read twice: remove one, or name the files "
        "to read (a file named is read)"
    )


def iter_parsed(
    paths: Sequence[str],
    fmt: str,
    *,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    files_at_once: int = 1,
) -> Iterator[tuple[str, Parsed]]:
    """Parsed blocks of the files at `paths` (as `expand_inputs` gives them) with global
    row ids: 0-based across the files.

    With `files_at_once` > 1, that many files are parsed side by side, each held in
    memory until its turn comes (for callers that keep every row anyway); with 1,
    blocks stream and memory stays bounded by the block size.
    """

    def parse(path: str) -> Iterator[Parsed]:
        return format_for(fmt, path, options).parse_file(path, block_bytes=block_bytes)

    per_file = map(parse, paths) if files_at_once <= 1 else ordered_map(lambda p: list(parse(p)), paths, files_at_once)
    offset = 0  # records in the files before this one
    for path, blocks in zip(paths, per_file, strict=True):
        in_file = 0
        for parsed in blocks:
            yield path, parsed.shifted(offset)
            in_file += parsed.n_records
        offset += in_file


class Sink(Protocol):
    """Where blocks of rows go: a Parquet dataset (`io.ParquetSink`) or memory (`io.MemorySink`)."""

    rows: int

    def write(self, frame: pl.DataFrame) -> None:
        """Take `frame` (rows of the sink's schema) and add its rows to `rows`."""
        ...


def read_logs(
    inputs: Sequence[str | Path],
    fmt: str,
    events: Sink,
    rejected: Sink,
    *,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    on_block: Callable[[str, Parsed], None] | None = None,
    files_at_once: int = 1,
) -> IngestReport:
    """Parse every input into the two sinks and account for every row (`files_at_once`:
    see `iter_parsed`).

    Raises AccountingError if what the sinks received does not add up to the rows
    read; call it inside the sinks' `with` so that nothing is published then.
    """
    start = time.perf_counter()
    skipped_files: list[dict[str, str]] = []
    files = {path: FileCount(path) for path in expand_inputs(inputs, skipped_files, fmt)}
    parsed_blocks = iter_parsed(list(files), fmt, options=options, block_bytes=block_bytes,
                                files_at_once=files_at_once)  # fmt: skip
    for path, parsed in parsed_blocks:
        files[path].add(parsed)
        events.write(parsed.events)
        rejected.write(parsed.rejected)
        if on_block is not None:
            on_block(path, parsed)
    report = IngestReport.of_files(fmt, list(files.values()), skipped_files, options.strict)
    report.rows_ok, report.rows_rejected = events.rows, rejected.rows
    report.seconds = round(time.perf_counter() - start, 3)
    report.check()
    return report


def ingest(
    inputs: Sequence[str | Path],
    fmt: str,
    output: str | Path,
    *,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    on_block: Callable[[str, Parsed], None] | None = None,
    config: dict | None = None,
) -> IngestReport:
    """Read logs of one format into `output/{events,rejected}.parquet` and `report.json`
    (which records `config`, the job's settings).

    Streams block by block (memory stays bounded by `block_bytes`), writes
    atomically, and raises AccountingError if the rows written do not add up to the
    rows read.
    """
    start = time.perf_counter()
    out = claim_output(output, EVENTS_FILE, inputs=inputs)
    with (
        ParquetSink(storage.join(out, EVENTS_FILE), EVENT_SCHEMA) as events,
        ParquetSink(storage.join(out, REJECTED_FILE), REJECTED_SCHEMA) as rejected,
    ):
        report = read_logs(inputs, fmt, events, rejected, options=options, block_bytes=block_bytes, on_block=on_block)
    finish_ingest(report, out, config or {"engine": "local"}, start)
    return report


def finish_ingest(report: IngestReport, out: str, config: dict, start: float) -> None:
    """Check what landed in `out` against the report, and write the report last (both
    engines); `start`: a `time.perf_counter()` reading. Raises AccountingError."""
    events, rejected = storage.join(out, EVENTS_FILE), storage.join(out, REJECTED_FILE)
    report.rows_ok, report.rows_rejected = parquet_rows(events), parquet_rows(rejected)  # what landed must add up too
    report.check()
    report.outputs = {name: storage.join(out, name) for name in (EVENTS_FILE, REJECTED_FILE, REPORT_FILE)}
    report.config = config
    report.seconds = round(time.perf_counter() - start, 3)
    write_report(report.to_dict(), out)
