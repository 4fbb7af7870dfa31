"""The local (single-process) jobs: raw logs or an ingest directory in, sessions out.

`segment_logs` is what `sessionflow segment --engine local` runs; the Ray engine
distributes the same `segment` and `link_missions` functions per user partition.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sessions import storage
from sessions.formats import Parsed
from sessions.formats.options import DEFAULT_READ, ReadOptions
from sessions.ingest import EVENTS_FILE, REJECTED_FILE, REPORT_FILE, IngestReport, read_logs
from sessions.io import (
    MemorySink,
    ParquetSink,
    claim_output,
    copy_table,
    job_output,
    parquet_rows,
    read_json,
    refuse_unfinished,
    scan_table,
    write_report,
)
from sessions.lexicon import Lexicon
from sessions.missions import Embedder, MissionConfig, common_terms, link_ordered_missions, term_users
from sessions.parallel import default_workers
from sessions.records import DEFAULT_BLOCK_BYTES
from sessions.schema import EVENT_SCHEMA, REJECTED_SCHEMA
from sessions.segment import (
    PairScorer,
    SegmentConfig,
    SessionClassifier,
    map_user_chunks,
    segment_input,
    segment_ordered,
    user_time_order,
)

SESSIONS_FILE = "sessions.parquet"
SESSIONS_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),
    "user_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "query": pl.String(),
    "session_id": pl.String(),
    "session_seq": pl.Int32(),
    "mission_id": pl.String(),
}


@dataclass
class SegmentReport:
    """What a segmentation job read and wrote; `report.json` holds the same."""

    ingest: dict
    sessions: int = 0
    missions: int = 0
    rows_out: int = 0
    config: dict = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)  # wall: read, segment_and_write
    # the local engine's steps (`Profile`): seconds in each, summed over the threads that ran it
    profile_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The report as JSON-ready values (`report.json`): the ingest's keys, then the segmentation's."""
        return {**self.ingest, **{k: v for k, v in self.__dict__.items() if k != "ingest"}}


class Profile:
    """Seconds a job spends in each of its steps, summed over the threads that ran it
    (thread-safe; a step's seconds can exceed the wall time when threads run it side by
    side). `seconds` maps a step's name to its seconds.

        profile = Profile()
        with profile.step("sessions"):
            ...
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the block's wall seconds (`time.perf_counter`) to step `name`, exception or not."""
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] += time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        """`seconds`, each rounded to milliseconds (3 decimals), for a report."""
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}


def is_ingest_output(path: str | Path) -> bool:
    """A directory written by `sessionflow ingest` (events, rejected rows, and the
    report that marks them complete). IncompleteOutputError for one whose report is
    missing (its job did not finish), and for a directory a job was killed in before it
    wrote a table (`sessions.io.refuse_unfinished`). The input itself is asked first, so
    that a store that cannot be reached is named by the path the user gave (it was named
    by the `events.parquet` probed inside it)."""
    if not storage.is_dir(path):  # a file, or nothing: no job's output
        return False
    if not storage.exists(storage.join(path, EVENTS_FILE)):
        refuse_unfinished(path)  # (`job_output` makes the same check where the events are)
        return False
    return bool(job_output(path, EVENTS_FILE))


def ingest_source(inputs: Sequence[str | Path], fmt: str | None) -> str | None:
    """The `ingest` output that `inputs` name (one such directory), or None for raw logs.
    ValueError for the output of another job, a job's output given with other inputs, or
    raw logs without a format;
    IncompleteOutputError for an unfinished `ingest` output."""
    if len(inputs) == 1 and is_ingest_output(inputs[0]):
        return str(inputs[0])
    if len(inputs) == 1 and storage.exists(storage.join(inputs[0], REPORT_FILE)):
        raise ValueError(f"{inputs[0]}: the output of another job; this one reads raw logs (with --format) "
                         "or an `ingest` output")  # fmt: skip
    given = inputs[0] if len(inputs) == 1 else None  # a job's events.parquet is a directory of parts; a file, a log
    if (
        given is not None
        and storage.name(given) == EVENTS_FILE
        and storage.is_dir(given)
        and is_ingest_output(storage.parent(given))
    ):
        raise ValueError(f"{inputs[0]}: the events of an `ingest` output; give the output itself, "
                         f"{storage.parent(inputs[0])}")  # fmt: skip
    if fmt is None:
        outputs = [str(given) for given in inputs if storage.exists(storage.join(given, REPORT_FILE))]
        if outputs and len(inputs) > 1:
            raise ValueError(f"{outputs[0]}: the output of a sessionflow job, given with other inputs; this reads "
                             "one output alone, or raw logs (with --format)")  # fmt: skip
        raise ValueError("raw logs need --format")
    return None


def load_events(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str,
    *,
    options: ReadOptions = DEFAULT_READ,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    on_block: Callable[[str, Parsed], None] | None = None,
    columns: Sequence[str] = ("row_id", "user_id", "ts", "query"),
) -> tuple[pl.DataFrame, dict]:
    """`columns` of the canonical events of raw logs (parsed into memory) or of an ingest
    directory, and the ingest accounting. Rejected rows end up in
    `output/rejected.parquet` either way."""
    columns = list(columns)
    if (source := ingest_source(inputs, fmt)) is not None:
        report = read_json(storage.join(source, REPORT_FILE))
        copy_table(storage.join(source, REJECTED_FILE), storage.join(output, REJECTED_FILE))
        return scan_table(storage.join(source, EVENTS_FILE)).select(columns).collect(), report
    events = MemorySink(columns)
    with ParquetSink(storage.join(output, REJECTED_FILE), REJECTED_SCHEMA) as rejected:
        report = read_logs(
            inputs, fmt, events, rejected, options=options, block_bytes=block_bytes, on_block=on_block,
            files_at_once=default_workers(),  # every event is kept in memory anyway
        )  # fmt: skip
    return events.frame({c: EVENT_SCHEMA[c] for c in columns}), ingest_summary(report)


def ingest_summary(report: IngestReport) -> dict:
    """The accounting of an ingest report, as a segmentation report repeats it."""
    d = report.to_dict()
    keys = ("format", "rows_in", "rows_ok", "rows_rejected", "rejected_by_reason", "rejected_lines_by_reason",
            "skipped_lines", "skipped_files", "repeated_hour", "files")  # fmt: skip
    return {k: d[k] for k in keys}


def iter_sessions(
    events: pl.DataFrame,
    seg: SegmentConfig,
    missions: MissionConfig,
    scorer: PairScorer | None = None,
    chunk_rows: int | None = None,
    common: pl.Series | None = None,
    workers: int | None = None,
    embedder: Embedder | None = None,
    profile: Profile | None = None,
) -> Iterator[pl.DataFrame]:
    """Sessions and missions of canonical events (`SESSIONS_SCHEMA`), a chunk of whole
    users at a time, in user order.

    Users are independent, so the events are cut into chunks of whole users
    (`chunk_rows` rows or so, `segment.chunk_rows` by default) that `workers` threads
    work on side by side; memory for the work follows the chunk, not the log.
    `common` is the log's common terms (`missions.common_terms`), computed from these
    events when not given: a caller holding only part of a log passes the log's.
    A session model takes part as `scorer` (segmentation) and `embedder` (missions).
    `profile` takes the seconds of each step: order (by user and time), lexicon (the
    queries' terms and 3-grams, and the common terms), sessions (pair features, session
    ids), missions.
    """
    profile = profile or Profile()  # a caller that keeps none: unread
    with profile.step("order"):
        ordered = user_time_order(segment_input(events))
    with profile.step("lexicon"):
        lexicon = Lexicon(ordered["query"])  # the log's, shared by every chunk (each text processed once)
        _ = lexicon.tables  # every per-text table (`map_user_chunks` would build them unprofiled)
        if common is None:
            common = common_terms(term_users(lexicon, ordered["user_id"]), ordered["user_id"].n_unique(), missions)

    def run(part: pl.DataFrame, part_lexicon: Lexicon | None) -> pl.DataFrame:
        with profile.step("sessions"):
            sessions = segment_ordered(part, seg, scorer, part_lexicon)
        with profile.step("missions"):
            linked = link_ordered_missions(sessions, missions, part_lexicon, common, embedder)  # segment's order
        return linked.select(list(SESSIONS_SCHEMA))

    yield from map_user_chunks(run, ordered, lexicon, chunk_rows, workers)


def embedder_of(model: PairScorer | SessionClassifier | None) -> Embedder | None:
    """What of a segmentation model mission linking takes: a session model's vectors
    (it is an `Embedder`); a segmenter model (a `SessionClassifier`) has none."""
    return None if model is None or isinstance(model, SessionClassifier) else model  # type: ignore[return-value]


def sessions_with_missions(
    events: pl.DataFrame,
    seg: SegmentConfig,
    missions: MissionConfig,
    scorer: PairScorer | None = None,
    embedder: Embedder | None = None,
) -> pl.DataFrame:
    """`iter_sessions`, as one frame."""
    parts = list(iter_sessions(events, seg, missions, scorer, embedder=embedder))
    return pl.concat(parts) if parts else pl.DataFrame(schema=SESSIONS_SCHEMA)


def segment_logs(
    inputs: Sequence[str | Path],
    fmt: str | None,
    output: str | Path,
    seg: SegmentConfig,
    missions: MissionConfig,
    *,
    options: ReadOptions = DEFAULT_READ,
    scorer: PairScorer | None = None,
    embedder: Embedder | None = None,
    config: dict | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    on_block: Callable[[str, Parsed], None] | None = None,
) -> SegmentReport:
    """Raw logs (any ingest format) or an ingest directory -> `output/sessions.parquet`
    (a dataset of `SESSIONS_SCHEMA`, one row per accepted event, written as chunks
    finish), `rejected.parquet`, `report.json`. A session model takes part as `scorer`
    and `embedder` (see `iter_sessions`); `config` is what the report records of the
    job's settings (by default the two configs)."""
    start = time.perf_counter()
    out = claim_output(output, SESSIONS_FILE, inputs=inputs)
    events, ingest_report = load_events(inputs, fmt, out, options=options, block_bytes=block_bytes, on_block=on_block)
    read_done = time.perf_counter()
    totals = {"rows": 0, "sessions": 0, "missions": 0}
    profile = Profile()
    profile.seconds["read"] = read_done - start  # parse and validation
    sink = ParquetSink(storage.join(out, SESSIONS_FILE), SESSIONS_SCHEMA)
    with sink:
        for part in iter_sessions(events, seg, missions, scorer, embedder=embedder, profile=profile):
            with profile.step("write"):  # what writing holds the job up: the sink writes in the background
                sink.write(part)
            totals["rows"] += part.height
            totals["sessions"] += part["session_id"].n_unique()  # users, hence sessions, never span chunks
            totals["missions"] += part["mission_id"].n_unique()
        write_started = time.perf_counter()
    profile.seconds["write"] += time.perf_counter() - write_started  # the last parts and the manifest
    config = config or {"segment": seg.to_dict(), "missions": missions.to_dict(), "engine": "local"}
    return write_segment_report(out, ingest_report, totals, config, start, read_done, profile.rounded())


def write_segment_report(
    out: str,
    ingest: dict,
    totals: dict[str, int],
    config: dict,
    start: float,
    read_done: float,
    profile: dict[str, float] | None = None,
) -> SegmentReport:
    """The report of a segmentation, checked and written to `out/report.json` (both engines).

    `totals`: rows, sessions and missions written (parts never split a user, so the
    parts' counts add up); `start`, `read_done`: `time.perf_counter()` readings;
    `profile`: seconds by step (`Profile`), when the engine keeps one.
    Raises RuntimeError when the session rows are not the accepted events.
    """
    rows_out = parquet_rows(storage.join(out, SESSIONS_FILE))
    if not totals["rows"] == rows_out == ingest["rows_ok"]:
        raise RuntimeError(f"{rows_out} session rows for {ingest['rows_ok']} accepted events")
    end = time.perf_counter()
    report = SegmentReport(
        ingest=ingest,
        sessions=totals["sessions"],
        missions=totals["missions"],
        rows_out=rows_out,
        config=config,
        outputs={name: storage.join(out, name) for name in (SESSIONS_FILE, REJECTED_FILE, REPORT_FILE)},
        seconds=round(end - start, 3),
        phase_seconds={"read": round(read_done - start, 3), "segment_and_write": round(end - read_done, 3)},
        profile_seconds=profile or {},
    )
    write_report(report.to_dict(), out)
    return report
