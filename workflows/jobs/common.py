"""The settings many jobs share (their inputs, output, log format, engine), one field
factory each, so every command words and checks them alike; and the reader of the
labelled pairs that `train session` and `evaluate pairs` both take (`read_pairs_table`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workflows.config import to_dict
from workflows.errors import user_error

if TYPE_CHECKING:
    import polars as pl

    from sessions.formats.options import ReadOptions

Engine = Literal["auto", "ray", "local"]
# `--engine auto` runs a job on inputs of at most this many bytes of text in one process:
# below it, starting Ray (about 10 s here), its workers and an actor pool is a large share
# of the job, and a job killed half-way loses minutes at most (the Ray engine of `score`
# resumes; the one-process engines start over). The first 60,000 rows of the AOL sample
# are 4.6 MB as text. A compressed file or a Parquet file counts COMPRESSED_TEXT_RATIO
# times its size on disk, above how much query logs compress (a 17 MB slice of the AOL
# sample: gzip 5.3x, bzip2 6.3x, zstd -19 6.7x, Parquet 5.3x; synthetic AOL logs up to
# 7.1x), so that a log of real queries is not taken for smaller than it is. It is an
# estimate: a file of a few words repeated compresses more (a 20-word vocabulary as
# Parquet, 17.5x) and may be taken for smaller.
LOCAL_MAX_BYTES = 16 << 20
COMPRESSED_TEXT_RATIO = 8
# What the jobs running now made where nothing was: (the outermost directory made, the job's own output in it,
# deleted whole on a user's error; the rest only where empty, since another job may write beside it meanwhile)
_CREATED: list[tuple[str, str]] = []
_REPLACED: list[tuple[str, set[str]]] = []  # output directories claimed by the jobs running now, with what each writes
_LOCKED: list[str] = []  # local output directories the jobs running now hold (`sessions.io.lock_output`)
FORMAT_HELP = "format of raw logs: aol, webis-smc, gayo-avello, diffusiondb, midjourney or table"
GOLD_FORMAT_HELP = (  # the formats that carry gold sessions or missions
    "webis-smc (missions), gayo-avello (sessions), table (--map ...,session=COL and/or mission=COL), aol or "
    "diffusiondb (a `synth` log: both)"
)


def inputs(
    help: str = "raw log files, directories (their files, by name) or glob patterns, local or URIs (s3://...), "
    "in order; or one `ingest` output",
) -> Any:
    """The positional inputs of a job (a tuple of locations; none by default)."""
    return field(default_factory=tuple, metadata={"help": help, "argument": True})


def output(help: str = "output directory", default: str | None = None) -> Any:
    """`--output` / `-o`, the job's output directory (`default`: None unless given)."""
    return field(default=default, metadata={"help": help, "short": "-o"})


def log_format(help: str = FORMAT_HELP) -> Any:
    """`--format` / `-f`, the format of raw logs (None by default)."""
    return field(default=None, metadata={"help": help, "short": "-f"})


# The read settings (`ReadOptions` field names) that the command line named, whatever their
# values: `workflows.cli.options` sets it around the job it runs, so that `--timezone UTC`,
# the default written out, is a setting given too (not a --config file's: `--print-config`
# writes every setting there).
NAMED_READ_SETTINGS: ContextVar[frozenset[str]] = ContextVar("named_read_settings", default=frozenset())


@contextmanager
def naming_read_settings(named: frozenset[str]) -> Iterator[None]:
    """`NAMED_READ_SETTINGS` set to `named` within: the read settings named on the command
    line of the job that runs there (none, for the steps of a demo after its ingest)."""
    token = NAMED_READ_SETTINGS.set(named)
    try:
        yield
    finally:
        NAMED_READ_SETTINGS.reset(token)


def read_settings_given(options: ReadOptions | None) -> list[str]:
    """The options of the read settings (`read_options`) set to other than their defaults,
    or named on the command line (`NAMED_READ_SETTINGS`), as flags (`--timezone`), in the
    order of `ReadOptions`' fields."""
    from sessions.formats import DEFAULT_READ

    if options is None:
        return []
    named = NAMED_READ_SETTINGS.get()
    return [f"--{f.name.replace('_', '-')}" for f in fields(options)
            if getattr(options, f.name) != getattr(DEFAULT_READ, f.name) or f.name in named]  # fmt: skip


def _they_read(flags: Sequence[str]) -> str:
    """`--a reads`, `--a and --b read`, `--a, --b and --c read`."""
    if len(flags) == 1:
        return f"{flags[0]} reads"
    return f"{', '.join(flags[:-1])} and {flags[-1]} read"


def refuse_read_options(read: ReadOptions, reads: str, needs_none: str) -> None:
    """ValueError, naming them, when read settings (`read_options`) are given to a job
    that reads no log with them: they read `reads`, and `needs_none` needs none."""
    if given := read_settings_given(read):
        raise ValueError(f"{_they_read(given)} {reads}; {needs_none} needs none")


def read_options() -> Any:
    """The read settings of a job that reads raw logs (`sessions.formats.ReadOptions`:
    --map, --time-format, --time-unit, --timezone, --unknown-user, --strict)."""
    from sessions.formats.options import ReadOptions

    return field(default_factory=ReadOptions, metadata={"prefix": ""})


FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # float32's smallest normal number


def check_learning_rate(name: str, value: float | None) -> None:
    """ValueError where a learning rate (not None) is above float32's largest number: the
    optimiser's float32 arithmetic cannot hold it (`1e300` failed in a Ray worker's
    traceback, "value cannot be converted to type float without overflow"). A rate that
    fits but drives the loss out of floats stops the run as diverged (`TrainingDiverged`)."""
    if value is not None and value > FLOAT32_MAX:
        raise ValueError(f"{name} must be at most {FLOAT32_MAX:.4g} (float32's largest: the optimiser computes in it)")


def engine() -> Any:
    """`--engine`: auto (the default: local for small inputs, `LOCAL_MAX_BYTES`), ray or local (`Engine`)."""
    return field(default="auto", metadata={
        "help": f"auto (local for inputs of at most {LOCAL_MAX_BYTES >> 20} MiB of text when neither --address "
                "nor RAY_ADDRESS names a cluster, else ray), ray (a local Ray, or the cluster of --address, "
                "RAY_ADDRESS or `ray job submit`) or local (one process)"})  # fmt: skip


def check_engine(engine: str, address: str | None) -> None:
    """ValueError for `--engine local` with `--address` (a cluster it would not use), and
    for another engine on a cluster named by a Ray Client address (`ray://`, by --address
    or RAY_ADDRESS): Ray Data, which these jobs run on, fails there (Ray 2.60: "'Worker'
    object has no attribute 'core_worker'", an 82-line traceback: the change breaker's
    find), while training runs."""
    from workflows.distributed.runtime import named_cluster

    if engine == "local" and address:
        raise ValueError(f"--engine local runs in this process; --address {address} names a Ray cluster")
    cluster = named_cluster(address) if engine != "local" else None
    if cluster and cluster.lower().startswith("ray://"):
        raise ValueError(f"{cluster}: a Ray Client address, on which Ray Data (this job's engine) does not run: give "
                         "the cluster's own address (host:6379) from a machine that reaches its nodes, or run it "
                         "with `ray job submit`")  # fmt: skip


def as_run(job: Any, engine: str, why: str) -> dict[str, Any]:
    """Every setting of `job` (`workflows.config.to_dict`) with the engine that ran it
    and why (`choose_engine`): the `config` a job's report records."""
    return {**to_dict(job), "engine": engine, "engine_reason": why}


def choose_engine(engine: str, address: str | None, inputs: Sequence[str | Path], fmt: str | None) -> tuple[str, str]:
    """(engine, why): `engine` itself, or for `auto` local when `inputs` hold at most
    `LOCAL_MAX_BYTES` of text (`text_bytes`) and no cluster is named (`address`, or
    `RAY_ADDRESS`, as `ray job submit` sets it: `named_cluster`), else ray (a Ray Client
    address refused before: `check_engine`)."""
    from workflows.distributed.runtime import named_cluster

    if engine != "auto":
        return engine, f"--engine {engine}"
    cluster = named_cluster(address)
    if cluster:
        return "ray", f"a Ray cluster is named: {cluster}"
    size = text_bytes(inputs, fmt)
    if size <= LOCAL_MAX_BYTES:
        return "local", f"inputs of about {size:,} bytes of text, at most {LOCAL_MAX_BYTES:,}: one process"
    return "ray", f"inputs of about {size:,} bytes of text, over {LOCAL_MAX_BYTES:,}: Ray"


def text_bytes(inputs: Sequence[str | Path], fmt: str | None) -> int:
    """About how many bytes of text the inputs hold: raw logs in format `fmt`, each file
    that will be read once (not the READMEs and checksums of a directory,
    `sessions.ingest.expand_inputs`); an `ingest` output, its events; with `fmt` None
    a dataset (`mine`'s sessions), every file. A file named compressed
    (`sessions.storage.COMPRESSIONS`; by its name, not its first bytes, so that no file
    is opened for an estimate) or Parquet counts `COMPRESSED_TEXT_RATIO` times its size
    on disk."""
    from sessions import storage
    from sessions.ingest import EVENTS_FILE, expand_inputs
    from sessions.pipeline import is_ingest_output

    if len(inputs) == 1 and is_ingest_output(inputs[0]):
        files = storage.expand([storage.join(inputs[0], EVENTS_FILE)])
    elif fmt is None:
        files = storage.expand(inputs)
    else:
        files = expand_inputs(inputs, fmt=fmt)
    total = 0
    packed = (*storage.COMPRESSIONS, ".parquet")
    for location in dict.fromkeys(files):  # a file named twice is read once
        size = storage.size_and_mtime(location)[0]
        total += size * COMPRESSED_TEXT_RATIO if str(location).lower().endswith(packed) else size
    return total


def address() -> Any:
    """`--address`, the Ray cluster to run on (None: RAY_ADDRESS or a local Ray)."""
    return field(default=None, metadata={
        "help": "Ray cluster address (host:6379; a Ray Client's ray://host:10001 serves training, not Ray Data's "
                "jobs); none: RAY_ADDRESS or a local Ray"})  # fmt: skip


def require(value: Any, option: str, argument: bool = False) -> Any:
    """`value`, or ValueError naming the option (or positional argument) that must be given:
    missing, empty, or only spaces, or (a list: the inputs) one of its items so (a shell
    variable that was not set: `-o "$OUT "`, `segment "$LOG"`; a directory named by spaces
    is never what was meant, and '' read the working directory whole)."""
    given = option.upper() if argument else f"--{option}"
    if value in (None, "", ()):
        raise ValueError(f"missing {given} (or `{option.replace('-', '_')}:` in --config)")
    items = (value,) if isinstance(value, str) else value if isinstance(value, list | tuple) else ()
    for item in items:
        if isinstance(item, str) and not item.strip():  # '' named the working directory, read whole
            raise ValueError(f"{given} {item!r}: {'empty' if not item else 'only spaces'}; name a file or directory")
    return value


def require_rows_read(report: dict, output: str) -> None:
    """ValueError when no record of the inputs became an event (a job's `report` as a dict,
    with `rows_in`, `rows_ok`; `output`: the job's output, which holds
    `rejected.parquet`), in the line `nothing_read` gives. What the job wrote is deleted
    (`sessions.io.remove_outputs_of`: nothing there looks like output), and the
    command line deletes an output directory it created (`nothing_left_on_error`)."""
    if report["rows_ok"]:
        return
    if not report["rows_in"]:
        raise ValueError(nothing_read(report, None))
    from sessions import storage
    from sessions.ingest import REJECTED_FILE
    from sessions.io import REPORT, remove_outputs_of, scan_table

    message = nothing_read(report, scan_table(storage.join(output, REJECTED_FILE)))
    if storage.exists(storage.join(output, REPORT)):
        remove_outputs_of(output)
    else:  # a job that checks before its report is written (mine --gold): its rejected rows alone
        storage.remove(storage.join(output, REJECTED_FILE))
    raise ValueError(message)


def nothing_read(report: dict, rejected: pl.LazyFrame | pl.DataFrame | None) -> str:
    """Why no record of the inputs became an event, in one line: a file cut short or
    damaged before its first record, inputs without records, or, in `why_rejected`'s
    words, the most frequent reason of the `rejected` rows
    (`sessions.schema.REJECTED_SCHEMA`; None when `report["rows_in"]` is 0) with the
    first rejected record of that reason as an example and its usual cause. `report`:
    an ingest report as a dict (`rows_in`, `files`, `config`). Every job that reads raw
    records says it this way, whatever it keeps its rejected rows in."""
    if not report["rows_in"] or rejected is None:
        damaged = [f for f in report.get("files", []) if f.get("damage")]
        if damaged:
            return f"nothing could be read: {damaged[0]['path']}: {damaged[0]['damage']}"
        return "nothing could be read: the inputs hold no records"
    import polars as pl

    table = rejected.lazy()
    counts = dict(table.group_by("reason").len().collect().iter_rows())
    top = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
    example = table.filter(pl.col("reason") == top).head(1).collect().row(0, named=True)
    return f"nothing could be read: {why_rejected(counts, example['source_file'], example, report)}"


def none_read(count: dict) -> bool:
    """Whether one input file held records and none of them was read, short of a damaged
    stream before its first record being all it held (the summary marks that DAMAGED,
    with why). `count`: the file's `sessions.ingest.FileCount` as a dict."""
    only_damage = count.get("damage") and set(count.get("rejected_by_reason") or {}) <= {"truncated_stream"}
    return bool(count.get("rows_in")) and not count.get("rows_ok") and not only_damage


def file_not_read(count: dict, report: dict) -> str | None:
    """Why none of the records of one input file was read (`none_read`), as
    `nothing_read` would say it of the file named alone (`why_rejected`); None where one
    was. `count`: the file's `sessions.ingest.FileCount` as a dict, whose
    `first_rejected` holds the example; `report`: the job's report as a dict."""
    if not none_read(count):
        return None
    reasons = count["rejected_by_reason"]
    top = min(reasons.items(), key=lambda item: (-item[1], item[0]))[0]
    return why_rejected(reasons, count["path"], (count.get("first_rejected") or {}).get(top), report, of_file=True)


NOT_READ_SHOWN = 5  # files none of whose records was read, named each with why; the rest counted
# User ids read as written in float notation (`Parsed.float_users`), as pandas writes an integer column with a missing
# value: a table's text (`FLOAT_USERS`), or, in every format, an id of 2**53 or more whose digits the float lost (the
# only ones a built-in format counts, `LOSSY_USERS`, since it reads 599381.0 as 599381): other users than the same ids
# written as integers.
FLOAT_USERS = ("{:,} rows' user ids written as whole floats (such as 599381.0, or 1.0612563642406546e+17, whose "
               "digits past a float's 16 are lost), read as written: another user than 599381 (pandas writes an "
               "integer column with a missing value so: write it with .astype('Int64'), or as Parquet, where "
               "599381.0 is 599381; read ids of 17 digits or more as text, dtype=str, before anything writes them as "
               "floats)")  # fmt: skip
LOSSY_USERS = ("{:,} rows' user ids are floats of 2^53 or more (such as 1.0612563642406546e+17, a Discord id pandas "
               "wrote with a missing value in its column), whose digits past a float's 16 are lost: read as written, "
               "another user than the id's own rows written as integers; read such ids as text, dtype=str, before "
               "anything writes them as floats")  # fmt: skip


def reading_notes(report: dict, read_as: bool = True) -> dict[str, str]:
    """What a reading report (`IngestReport.to_dict()`) holds besides its counts, that a
    user should be told, as (what, said) in the order shown: advice for rows rejected as
    not UTF-8 or for backslash-escaped quotes, files and lines skipped (not records or
    logs), each file none of whose records was read (NOT READ, with why:
    `file_not_read`, the words the file named alone would fail with; past
    `NOT_READ_SHOWN` of them, how many more), each damaged file with where its stream
    broke off, how each table's fields were read where the file decided it (`read_as`:
    False leaves it to a caller that says it otherwise), and each file whose user ids
    are text as pandas writes floats (`FLOAT_USERS`; `LOSSY_USERS` in a built-in
    format). Every command that reads a log says them: those that write its events
    (`ingest`, `segment`, `score`, ...) and those that score against it (`evaluate
    segmentation`, `evaluate crossval`, `train segmenter`)."""
    rejected = report.get("rejected_by_reason", {})
    not_read = [f for f in report.get("files", []) if none_read(f)]
    notes: dict[str, str] = {}
    elsewhere = [f for f in report.get("files", []) if not none_read(f)]  # those named NOT READ below say theirs
    if (
        sum(f.get("rejected_by_reason", {}).get("bad_encoding", 0) for f in elsewhere)
        if "files" in report
        else rejected.get("bad_encoding")
    ):  # a file of accented rows lost them quietly
        from sessions.records import not_utf8_advice

        notes["bad_encoding: records not UTF-8 text"] = not_utf8_advice(b"")
    if rejected.get("backslash_escape"):  # Spark's, R's rows in an RFC 4180 file
        notes["backslash_escape: quotes escaped with a backslash"] = BACKSLASH_ADVICE
    for skipped in report.get("skipped_files", []):
        notes[f"skipped {skipped['path']}"] = skipped["reason"]
    notes.update({f"NOT READ {f['path']}": file_not_read(f, report) or "" for f in not_read[:NOT_READ_SHOWN]})
    if len(not_read) > NOT_READ_SHOWN:  # a directory of many: the first ones tell what the rest most likely are
        notes[f"NOT READ {len(not_read) - NOT_READ_SHOWN:,} more files"] = (
            "none of their records read either: each is in report.json's files, rows_ok 0, with its first_rejected"
        )
    read_as_by: dict[str, list[str]] = {}  # how a TSV table was read: each file's, a count where many read alike
    floats: dict[str, int] = {}  # user ids as pandas' floats, by file: each file's, a count where many
    for f in report.get("files", []):
        if f.get("damage"):
            notes[f"DAMAGED {f['path']}"] = f"read up to the damage: {f['damage']}"
        if f.get("read_as") and read_as:
            read_as_by.setdefault(f["read_as"], []).append(f["path"])
        if f.get("float_users"):  # a table's text is its text: 599381.0 is not the user 599381 of another file
            floats[f["path"]] = f["float_users"]
    for how, paths in read_as_by.items():
        named = paths if len(paths) <= 3 else [f"{len(paths):,} files ({paths[0]}, ...)"]
        notes.update(dict.fromkeys(named, how))
    if len(floats) > 3:
        first = next(iter(floats))
        floats = {f"{len(floats):,} files ({first}, ...)": sum(floats.values())}
    said = FLOAT_USERS if report.get("format") in (None, "table") else LOSSY_USERS  # a built-in format: ids >= 2**53
    notes.update({f"{path}: user ids": said.format(n) for path, n in floats.items()})
    return notes


def why_rejected(
    counts: Mapping[str, int], source: str, example: Mapping | None, report: dict, of_file: bool = False
) -> str:
    """Why every one of some records was rejected, in words: how many, the most frequent
    reasons (of `counts`, rejected rows by reason), the `example` (the first rejected
    record of the most frequent reason, of the file `source`: `line_no`, `raw`; None,
    none shown: a report of an older sessionflow kept none) and its usual cause: a
    wrong --format or --map, times that need --time-format, text that is not UTF-8
    (UTF-16's control bytes), Parquet read as text (told by its file's first bytes), a
    spreadsheet (by its name); for a `truncated_stream` what the file's reader said of
    it (a cut, corrupt data, an archive, in `report["files"]`), and of a file named
    compressed that holds no compressed data, that its name says so. `report`: the
    job's report as a dict (`format`, `files`, `config`). `of_file`: the records of one
    file, which is not named again. `nothing_read` (the whole inputs) and
    `file_not_read` (one file of several, in the summary) both say it so."""
    from sessions import storage
    from sessions.formats import reads_as_parquet
    from sessions.formats.base import near_names
    from sessions.ingest import EXAMPLE_CHARS, SPREADSHEET_REASON, SPREADSHEET_SUFFIXES

    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    (reason, count), others = ranked[0], ranked[1:4]
    full = example["raw"] if example else ""
    raw = full if len(full) <= EXAMPLE_CHARS else full[:EXAMPLE_CHARS] + "..."
    also = "".join(f", {r} ({n:,})" for r, n in others)
    cause = _NOTHING_READ_CAUSE.get(reason, "a wrong --format, --map or time format is the usual cause")
    if reason == "truncated_stream":  # what the file's reader said of it (a cut, corrupt data, an archive)
        said = [f["damage"] for f in report.get("files", []) if f.get("path") == source]
        cause = next((damage for damage in said if damage), cause)
    named = storage.compression_of(source)
    if named and reason in ("bad_encoding", "control_chars"):  # read as stored: its data are not what its name says
        cause = f"its name says {named}, but it does not hold {named} data (damaged, or never compressed); {cause}"
    text = not reads_as_parquet(report.get("format"), source)
    if reason in _BINARY_REASONS and text and (held := _other_layout(source)):  # Parquet or JSON read as delimited
        cause = held
    if storage.uncompressed_name(source).lower().endswith(SPREADSHEET_SUFFIXES):
        cause = f"it is {SPREADSHEET_REASON}"
    if reason == "wrong_field_count" and example and example.get("line_no") == 1 and full[:1] in ("\t", ",", ";"):
        cause = ("its first line begins with a column without a name, as pandas writes a frame's index (to_csv "
                 "without index=False): write it again with index=False")  # fmt: skip
    read = (report.get("config") or {}).get("read") or {}
    keys = _json_keys(full)
    if absent := _absent_keys(keys, read.get("map")):  # a JSON line without a mapped key
        held = ", ".join(map(repr, keys)) + (f"; {near}" if (near := near_names(keys, absent)) else "")
        cause = (
            f"its line has no key {', '.join(map(repr, absent))} (its keys: {held}); JSON lines are read by their "
            "top-level keys: flatten a nested one first (jq, or polars' unnest)"
        )
    given = read.get("time_format")
    if reason == "bad_time" and given:  # the usual cause's advice would be to give one
        cause = (
            f"the --time-format given ({given!r}) does not read its time, or a wrong --format or --map (another "
            "column read as the time): without --time-format, ISO 8601 and epoch numbers are read"
        )
    n = sum(counts.values())
    everything = "its one record was rejected" if n == 1 else f"all {n:,} records were rejected"
    most = f"as {reason}" if n == 1 else f"most as {reason} ({count:,}){also}"
    where = f"line {example['line_no']}" + ("" if of_file else f" of {source}") if example else ""
    return f"{everything}, {most}{f', e.g. {where}: {raw!r}' if where else ''}; {cause}"


_BINARY_REASONS = ("bad_encoding", "control_chars", "empty_line", "wrong_field_count")  # binary data read as text


def _other_layout(location: str) -> str | None:
    """What the file at `location`, read as delimited text, holds instead, once decompressed
    (a `.parquet.gz`), and how to read it (`sessions.records.other_layout`: Parquet, JSON
    lines); None for anything else, or where it cannot be read now."""
    from sessions import storage
    from sessions.records import other_layout

    try:
        with storage.open_input(location) as stream:
            return other_layout(stream.read(1 << 16).split(b"\n", 1)[0], location)
    except OSError:  # StorageError, DamagedStreamError: then nothing is told of it
        return None


def _json_keys(raw: str) -> list[str]:
    """The top-level keys of a JSON object's text; none where `raw` is no JSON object."""
    import json

    try:
        held = json.loads(raw)
    except ValueError:
        return []
    return list(held) if isinstance(held, dict) else []


def _absent_keys(keys: list[str], spec: str | None) -> list[str]:
    """The columns of the `--map` `spec` that a JSON object of top-level `keys` has no key
    for (none where there is no map, or no object: no keys)."""
    from sessions.formats.table import ColumnMap

    if not spec or not keys:
        return []
    return [column for column in ColumnMap.parse(spec).columns() if column not in keys]


BACKSLASH_ADVICE = (
    "quotes escaped with a backslash (\\\"), as Spark's CSV and R's write.table write them, in a file whose "
    "other quoted texts read as RFC 4180 (quotes doubled), as it was read: write it one way, with quotes "
    """doubled (Spark: .option("escape", '"'); R: write.table(..., qmethod = "double"), or write.csv)"""
)
_NOTHING_READ_CAUSE = {  # why no record of a log was read, by the reason most of them were rejected for
    "bad_time": "a wrong --format or --map (another column read as the time) is the usual cause, or times "
    "in a form read only with a --time-format (e.g. --time-format '%d/%m/%Y %H:%M' for 05/01/2023 10:00)",
    "truncated_line": "the input ends inside its first record: it is cut short",
    "truncated_stream": "the compressed input is cut short or damaged before its first whole record",
    "bad_encoding": "the input is not UTF-8 text (convert it, e.g. with iconv)",
    "backslash_escape": BACKSLASH_ADVICE,
    "unclosed_quote": "a quote in its first record opens a field that nothing closes, so the rest of the file "
    "ran into it: close that quote (inside a quoted field CSV doubles a quote)",
    "control_chars": "text full of control bytes is often UTF-16 (Excel's Unicode Text): convert it to UTF-8, "
    "e.g. with iconv -f UTF-16",
}


def check_format(fmt: str | None, options: ReadOptions | None = None, inputs: Sequence[str] = ()) -> None:
    """ValueError for a format that no reader knows, and with the job's read `options`
    for a `table` without --map or a --map of another format
    (`sessions.formats.check_format`); None: no format given, fine. Where `inputs` are one
    job's output (an `ingest` output, whose events were read already), nothing: the job's
    `check_log_inputs` says to leave the format out (`--format table` there was told to add
    a --map, then refused with it: the new user's find)."""
    from sessions import storage
    from sessions.formats import DEFAULT_READ
    from sessions.formats import check_format as check
    from sessions.ingest import EVENTS_FILE, REPORT_FILE

    if fmt is None:
        return
    given = str(inputs[0]) if len(inputs) == 1 else None
    if given is not None and (  # a job's output, or its events (`ingest_source` names the output to give)
        storage.exists(storage.join(given, REPORT_FILE))
        or (storage.name(given) == EVENTS_FILE and storage.exists(storage.join(storage.parent(given), REPORT_FILE)))
    ):
        return
    check(fmt, options or DEFAULT_READ)


def experiment(default: str) -> Any:
    """`--experiment`, the MLflow experiment of the run (`default`: the job's own; `check_experiment`)."""
    return field(default=default, metadata={"help": "MLflow experiment of the run"})


EXPERIMENT_NAME_MAX = 500  # MLflow's limit on an experiment's name (`mlflow.utils.validation`)


def check_experiment(name: str, own: str) -> None:
    """ValueError in one line for an --experiment MLflow would refuse (empty, blank, over
    500 characters), checked when a job is set up: MLflow refused it only when the run
    started, after a segmenter's nested CV or Ray's start, with a traceback; and for the
    experiment of another kind of model (`workflows.tracking.uri.NOTES`: session-model,
    hierarchy-model, segmenter-model, whose runs `compare` lays side by side), which
    this job's runs (of experiment `own` by default) would be mixed into."""
    from workflows.tracking.uri import NOTES  # not `store`: no mlflow import before a job's checks

    if name in NOTES and name != own:
        raise ValueError(f"--experiment {name}: the experiment of another kind of model, whose runs `compare` "
                         f"lays side by side; give a name of your own, or leave it out ({own})")  # fmt: skip
    if not name.strip():
        raise ValueError(f"--experiment {name!r}: empty; give a name, or leave it out for the job's own")
    if len(name) > EXPERIMENT_NAME_MAX:
        raise ValueError(f"--experiment: {len(name):,} characters; MLflow takes at most {EXPERIMENT_NAME_MAX}")


def register() -> Any:
    """`--register`, whether a trained model is registered (and made `champion` when best); True by default."""
    return field(default=True, metadata={
        "help": "register the model and move `champion` to it if it is the best on the same data"})  # fmt: skip


def storage() -> Any:
    """`--storage`, where Ray Train keeps checkpoints (None: ~/ray_results)."""
    return field(
        default=None,
        metadata={
            "help": "where Ray Train keeps checkpoints (a path or s3://..., seen by all nodes; none: ~/ray_results)"
        },
    )


def overwrite() -> Any:
    """`--overwrite`, False by default: whether a job may write over another kind of job's output."""
    help = (
        "write where another kind of job's output is, deleting the files its report.json lists first, or "
        "the tables (and a Ray score's .score-work) a killed job of another kind left there (this command's "
        "own earlier output is replaced without it; a directory of other files keeps them)"
    )
    return field(default=False, metadata={"help": help})


def check_log_inputs(
    inputs: Sequence[str], fmt: str | None, ingested: bool = True, options: ReadOptions | None = None
) -> None:
    """Raw logs (or, when `ingested`, one `ingest` output) as a job reads them, checked
    before the job touches its output: ValueError / FileNotFoundError as the readers raise,
    and `refuse_read_settings` for an `ingest` output given a format or read `options`."""
    from sessions.ingest import expand_inputs
    from sessions.pipeline import ingest_source

    if not ingested or ingest_source(inputs, fmt) is None:
        expand_inputs(inputs, fmt=fmt)
    else:
        refuse_read_settings(inputs[0], "an `ingest` output", fmt, options)


def refuse_read_settings(
    source: str,
    kind: str,
    fmt: str | None,
    options: ReadOptions | None,
    by: str = "with the settings that job was given",
) -> None:
    """ValueError, naming the settings, where a job reading `source`, the output of a job
    (`kind`: "an `ingest` output") or a table of events read already (`by` whatever wrote
    it), is given a --format or read `options` other than the defaults: the events there
    were read already, and these would change nothing (a --timezone given there shifted no
    time, silently)."""
    given = ([f"--format {fmt}"] if fmt is not None else []) + read_settings_given(options)
    if given:
        raise ValueError(f"{source}: {kind}, its events read already {by}; "
                         f"{_they_read(given)} raw logs: leave them out, or read the raw logs again "
                         "with them")  # fmt: skip


def no_labels(log: str, levels: Sequence[str], fmt: str | None, options: ReadOptions | None = None) -> str:
    """Why a labelled log's rows give nothing to score or mine, in words: none of them has
    a label at `levels` ("session", "mission"), and, for a `table`, where its labels come
    from (`--map ...,session=COLUMN`), the setting a user most likely left out, or, where
    `options`' --map names such a column, that it holds no value; for another format,
    which one the file was read as."""
    said = " or ".join(levels)
    if fmt != "table":
        return f"no row of {log} has a {said} label (format {fmt})"
    mapping = options.mapping if options is not None else None
    if mapped := [(level, getattr(mapping, level)) for level in levels if getattr(mapping, level, None) is not None]:
        named = " and ".join(f"{column!r} ({level}=)" for level, column in mapped)
        columns, hold = ("columns", "hold") if len(mapped) > 1 else ("column", "holds")
        return f"no row of {log} has a {said} label: the {columns} mapped, {named}, {hold} no value"
    columns = " or ".join(f"{level}=COLUMN" for level in levels)
    return f"no row of {log} has a {said} label; a table's come from its column named by --map ...,{columns}"


def gold_log(value: str | None) -> str:
    """`--gt`, a labelled log as written (the Gayo-Avello or Webis-SMC-12 file, a table
    mapped with session= or mission=): ValueError in one line when it is missing, or is
    the output of a sessionflow job (an `ingest` of it), said before its `--format` is
    asked for (that error, then the raw-log reader's "without --format", contradicted
    each other)."""
    from sessions import storage

    gt = require(value, "gt")
    if storage.is_dir(gt) and storage.exists(storage.join(gt, "report.json")):
        raise ValueError(f"--gt {gt}: the output of a sessionflow job; --gt takes the labelled log itself (the "
                         "Gayo-Avello or Webis-SMC-12 file, a table mapped with session= or mission=) with its "
                         "--format")  # fmt: skip
    return gt


def check_output(value: str | None, inputs: Sequence[str] = ()) -> str:
    """The checks of `output_dir` that change nothing: the output is given, is not a file
    nor in the temporary working directory of a `ray job submit` (`workflows.submitted`),
    every input is there (none a directory a job was killed in: `sessions.io.refuse_unfinished`)
    and none overlaps the output. Returns the output location."""
    from sessions import storage
    from sessions.io import check_apart, refuse_a_file, refuse_unfinished
    from workflows.submitted import in_submitted_working_dir

    location = storage.absolute(require(value, "output"))
    if storage.is_local(location) and in_submitted_working_dir(location):
        raise ValueError(f"--output {value}: in this job's temporary working directory (`ray job submit "
                         "--working-dir`), which Ray deletes with the job; give a URI every node reaches "
                         "(s3://BUCKET/...) or a path outside it")  # fmt: skip
    refuse_a_file(location)
    for given in inputs:
        refuse_unfinished(given)
    storage.expand(inputs)  # every input is there before anything of the output changes
    check_apart(location, inputs)
    return location


def output_dir(value: str | None, produces: str | None = None, overwrite: bool = False,
               inputs: Sequence[str] = (), also: Sequence[str] = ()) -> str:  # fmt: skip
    """The output directory of a job (a local path or a URI: `sessions.storage`), claimed
    for a job that reads `inputs` and writes `produces` (and `also`) there (`sessions.io.claim_output`:
    until the job writes its report nothing there looks complete). An earlier output it
    replaces is kept aside until the job is done, and put back when
    it fails on a user's error (`nothing_left_on_error`). Call it after the
    job's other settings are checked, so a job refused for them leaves the output as it
    was. ValueError when it is not given, is an existing file, overlaps an input or
    holds another job's output or other files (unless `overwrite`: `sessions.io.
    refuse_other_files`); FileNotFoundError when an input is missing; StorageError
    when a filesystem cannot be reached."""
    from sessions import storage
    from sessions.io import JOB_WORK, LOCK, REJECTED, REPORT, claim_output, lock_output, refuse_other_files

    location = check_output(value, inputs)
    created = _first_missing(location)  # what a failure deletes again (`nothing_left_on_error`)
    if lock_output(location):  # first: another job's output is never judged, restored or deleted by this one
        _LOCKED.append(location)
    if created and any(name != LOCK for name in storage.hidden_names(location, storage.ANY_NAME)):
        created = None  # made by another job before this one's lock, not this one's to delete (a breaker's find)
    if created:
        _CREATED.append((created, location))
    if produces:
        refuse_other_files(location, produces, overwrite)
        # before the claim: what it sets aside comes back if it then fails on a user's error too
        _REPLACED.append((storage.absolute(location), {produces, *also, REJECTED, REPORT} - set(JOB_WORK)))
        location = claim_output(location, produces, overwrite, inputs, also, keep_previous=True)
    return location


def output_file(location: str, what: str = "--output", inputs: Sequence[str] = ()) -> str:
    """A job's output file, checked before the work that ends in writing it: apart from
    the job's `inputs` (`sessions.io.check_apart`: not one of them, through a link
    either, nor inside one; `--figure` over its own `--gt` destroyed it), and writable
    (`sessions.storage.check_writable_file`, which makes its directory where none is).
    ValueError / StorageError in one line naming `what`; FileNotFoundError when an
    input is missing. The directories made for it are deleted again when the job fails
    on a user's error (`nothing_left_on_error`), as an `output_dir`'s are: `--figure
    new/f.png` left `new/` behind. Returns `location`."""
    from sessions import storage
    from sessions.io import check_apart

    check_apart(storage.absolute(location), inputs, what, lasting=False)  # memory:// refused for output directories

    try:
        created = _first_missing(storage.parent(storage.written_at(location)))
    except storage.StorageError:  # out of reach: told by the check, naming `what`
        created = None
    if created:
        _CREATED.append((created, location))  # the file: in a directory this job made, no one else's
    storage.check_writable_file(location, what)
    return location


def kept_aside(location: str, names: Sequence[str]) -> None:
    """Have the entries `names` of the directory `location` (an earlier run's, which the
    running job writes again) moved aside now and put back when the job fails on a user's
    error, or deleted when it ends well (`nothing_left_on_error`), as `output_dir` keeps an
    earlier output: `sessionflow demo`'s summary and figures."""
    from sessions.io import set_aside

    if not names:
        return
    set_aside(location, names)
    _REPLACED.append((location, set(names)))


def removed_on_error(locations: Sequence[str]) -> None:
    """Have `nothing_left_on_error` delete `locations` too when the running job fails with
    a user's error, as it deletes the output directories the job created: what a job
    writes into an existing empty directory (`sessionflow demo`'s steps)."""
    _CREATED.extend((location, location) for location in locations)


def _first_missing(location: str) -> str | None:
    """The outermost directory that writing `location` creates: `location` itself, or the
    first of its parents that is not there (`-o new/a/b`: new); None when it is there."""
    from sessions import storage

    if storage.exists(location):
        return None
    while (parent := storage.parent(location)) != location and not storage.exists(parent):
        location = parent
    return location


@contextmanager
def nothing_left_on_error() -> Iterator[None]:
    """Run a job so that, when it fails with a user's error (`USER_ERRORS`: bad settings or
    inputs, nothing read, storage out of reach), every output directory it created
    (`output_dir` where nothing was, with the parents it created; the directories made
    for an `output_file`) is deleted again: a
    failed command leaves nothing that looks like output. A directory that was there
    gets back the earlier output the claim kept aside (`sessions.io.restore_previous`),
    or else keeps what it held, less the report the claim removed, so
    it does not look complete either. Other exceptions (a crash, an interrupt) put the
    earlier output back the same way, but where the job left work to resume from (a Ray
    `score`'s `.score-work`: `sessions.io.holds_job_work`), which stays with the earlier
    output aside (`.previous-<12 hex>`, until the next run there is done); the
    directories it created that are still empty go (a `segment` stopped before its first
    table left an empty output directory). A job that ends well deletes the earlier
    output it kept aside. An S3 output whose lock the job has lost (it stalled past its
    lease and another job took the output over: `sessions.io.lock_lost`) is left as it
    is, and that loss is the error the job ends with."""
    from sessions import storage
    from sessions.io import discard_previous, holds_job_work, lock_lost, restore_previous, unlock_output

    start, replaced, locked = len(_CREATED), len(_REPLACED), len(_LOCKED)

    def unlock() -> None:
        for location in _LOCKED[locked:]:
            unlock_output(location)

    try:
        yield
    except BaseException as err:
        cause = user_error(err)
        # an S3 output whose lock another job took over (this job stalled) may be that job's now: left alone
        lost = {location: why for location in _LOCKED[locked:] if (why := lock_lost(location))}
        created = [(top, own) for top, own in reversed(_CREATED[start:])
                   if not any(storage.contains(location, own) for location in lost)]  # fmt: skip
        replaced_here = [(location, writes) for location, writes in reversed(_REPLACED[replaced:])
                         if not any(storage.contains(out, location) for out in lost)]  # fmt: skip
        if cause is None:
            for location, writes in replaced_here:  # what a stopped run wrote is no use to a rerun
                if not holds_job_work(location):
                    restore_previous(location, writes)
            unlock()  # before an empty directory it made goes: its lock is all it holds
            for top, _ in created:
                storage.remove_empty_dirs(top)
            raise
        for location, writes in replaced_here:
            restore_previous(location, writes)
        for _, own in created:
            storage.remove(own)  # its lock with it: no other job takes the output before it is gone
        unlock()
        for top, _ in created:
            storage.remove_empty_dirs(top)  # the parents it made, unless another job wrote there meanwhile
        if lost:  # what the job then met (a table taken from under it, its lock refused) follows from it
            raise OSError(next(iter(lost.values()))) from None
        raise cause from None
    else:
        for location, _ in _REPLACED[replaced:]:
            discard_previous(location)
    finally:
        unlock()
        del _CREATED[start:], _REPLACED[replaced:], _LOCKED[locked:]


PAIR_COLUMNS = ("query_a", "query_b", "label")  # what every reader of labelled pairs needs


def pairs_location(path: str) -> str:
    """The pairs table that `path` names: a finished `mine` output's pairs.parquet (or a
    pairs.parquet file in the directory), or `path` itself (a file of pairs, Parquet or
    CSV, or a published Parquet dataset of them). FileNotFoundError when nothing is
    there (`IncompleteOutputError` for a `mine` output without its report); ValueError
    in one line for a directory that holds no pairs, naming what it holds when it is a
    sessionflow job's output (a `segment` output: mine it first)."""
    from sessions import storage
    from sessions.io import JOB_TABLES, is_complete, job_output, refuse_unfinished
    from workflows.jobs.mine import PAIRS_FILE

    if not storage.exists(path):
        raise FileNotFoundError(f"{path}: " + storage.why_missing(path, "no pairs here; run `sessionflow mine` first"))
    if not storage.is_dir(path) or is_complete(path):
        return path
    refuse_unfinished(path)
    if storage.exists(storage.join(path, PAIRS_FILE)):  # a `mine` output, refused without its report, or a file
        return job_output(path, PAIRS_FILE, own_file=True)
    if storage.exists(storage.join(path, "pairs", PAIRS_FILE)):  # a `demo` output
        raise ValueError(f"{path}: not a `mine` output (no {PAIRS_FILE} here); its pairs are in "
                         f"{storage.join(path, 'pairs')}")  # fmt: skip
    known = [(job, name.removesuffix(".parquet")) for name, job in JOB_TABLES.items()
             if name != PAIRS_FILE and storage.exists(storage.join(path, name))]  # fmt: skip
    if not known:
        raise ValueError(f"{path}: not a `mine` output (no {PAIRS_FILE} here); give the output directory of "
                         "`sessionflow mine`, or a file of pairs")  # fmt: skip
    job, held = known[0]
    then = f"give `mine`'s output of it (`sessionflow mine {path} -o DIR`)" if job == "segment" else (
        "segment it and mine the sessions" if job == "ingest" else "give `mine`'s output")  # fmt: skip
    raise ValueError(f"{path}: {'an' if job[0] in 'aeiou' else 'a'} `{job}` output ({held}), not a `mine` output "
                     f"(pairs); {then}")  # fmt: skip


def _csv_fault(data: bytes, separator: str) -> str | None:
    """Where and why Python's `csv` (strict) finds `data` no table: the first record whose
    field count is not the header's, or a quote left open, by line; None where it finds
    none (or the bytes are not UTF-8)."""
    import csv
    import io

    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=separator, strict=True)
        header = next(reader, [])
        for record in reader:
            if record and len(record) != len(header):
                return f"line {reader.line_num}: {len(record)} fields where the header has {len(header)}"
    except csv.Error as err:
        return f"line {reader.line_num}: {err}"
    except UnicodeDecodeError:
        return None
    return None


def read_pairs_table(path: str, columns: Sequence[str] = PAIR_COLUMNS) -> tuple[pl.DataFrame, str]:
    """(the pairs, their location) of `path` (`pairs_location`: a `mine` output, a Parquet
    file or dataset, or a .csv/.tsv/.csv.gz file of text), every one of their rows checked
    (`check_pairs`): the one reader of labelled pairs, which `train session` and
    `evaluate pairs` use before anything starts. ValueError in one line naming the file
    for an empty file, an unreadable CSV, or a table without one of `columns` or with
    bad pairs; FileNotFoundError when nothing is there."""
    import polars as pl

    from sessions import storage
    from sessions.io import read_table

    location = pairs_location(path)
    if storage.is_file(location) and storage.size_and_mtime(location)[0] == 0:
        raise ValueError(f"{location}: an empty file (0 bytes), no pairs; `mine` writes its pairs to pairs.parquet")
    name = storage.name(location).lower()
    if name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        separator = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
        data = storage.read_bytes(location)
        try:
            pairs = pl.read_csv(data, separator=separator, infer_schema=False, empty_string_is_null=False)
        except pl.exceptions.NoDataError:
            raise ValueError(
                f"{location}: an empty CSV, no pairs (a header query_a,query_b,label, then a pair a line)"
            ) from None
        except pl.exceptions.PolarsError as err:
            reason = _csv_fault(data, separator) or (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(f"{location}: not a CSV of pairs ({reason})") from None
    else:
        pairs = read_table(location)
    missing = [c for c in columns if c not in pairs.columns]
    if missing:
        header = ", ".join(map(repr, pairs.columns[:8])) + (", ..." if len(pairs.columns) > 8 else "")
        other = next((sep for sep in ("\t", ",", ";", "|") if any(sep in c for c in pairs.columns)), None)
        hint = {"\t": ": a tab-separated file (name it .tsv)", ",": ": a comma-separated file (name it .csv)"}.get(
            other or "", f": split by {other!r}, where pairs are a CSV (,) or a TSV (tab)" if other else ""
        )
        if not hint and any(c.strip() != c and c.strip() in columns for c in pairs.columns):
            hint = ": spaces around its names (write the header without them)"
        raise ValueError(f"{location}: missing column(s) {', '.join(missing)}; this reads {', '.join(columns)} "
                         f"(its columns: {header}{hint})")  # fmt: skip
    return check_pairs(pairs, location), location


def check_pairs(pairs: pl.DataFrame, name: str) -> pl.DataFrame:
    """`pairs` (query_a, query_b, label, any other columns) with the texts as String and
    the labels as Int8, after checking every row: ValueError in one line naming `name`
    (the file), the column, how many pairs are bad and the first of them (row N: the
    Nth pair, from 1, a CSV's header not counted) when there are no pairs, when a text
    is missing, empty or only whitespace (no text; "NaN" is text), or when a label is
    not exactly 0 or 1. Labels may be integers, booleans, floats or strings (CSV) whose
    value is exactly 0 or 1 ("1", "1.0", " 0 "); anything else ("yes", 0.5, 2, -1,
    NaN, empty) is refused, not guessed. A text column `kind` is read as `mine` names
    its kinds (`sessions.pairs.mined_kind`: `"Same User"` is `same_user`). What `mine`
    writes always passes."""
    import polars as pl

    from sessions.fields import is_blank
    from sessions.pairs import mined_kind

    if not pairs.height:
        raise ValueError(f"{name}: no pairs (a table of 0 rows)")

    def refuse(bad: pl.Series, values: pl.Series, what: str, then: str) -> None:
        count = int(bad.sum())
        if count:
            row = int(bad.arg_true()[0])
            value = "null" if values[row] is None else repr(values[row])
            raise ValueError(f"{name}: {count:,} {'pair' if count == 1 else 'pairs'} with {what} (first: row "
                             f"{row + 1}, {value}); {then}")  # fmt: skip

    texts = {}
    for column in ("query_a", "query_b"):
        try:
            texts[column] = pairs[column].cast(pl.String)
        except pl.exceptions.PolarsError:
            raise ValueError(f"{name}: {column} holds {pairs[column].dtype}, not text") from None
        blank = pl.select(is_blank(pl.lit(texts[column]))).to_series()
        refuse(blank, pairs[column], f"no text in {column}", "every pair needs two texts (`mine` writes no others)")
    label = pairs["label"]
    if label.dtype == pl.String:
        value = label.str.strip_chars().cast(pl.Float64, strict=False)
    elif label.dtype.is_numeric() or label.dtype == pl.Boolean:
        value = label.cast(pl.Float64)
    else:
        raise ValueError(f"{name}: label holds {label.dtype}, not 0 or 1")
    bad = (value.is_null() | ~value.is_in([0.0, 1.0])).fill_null(True)
    refuse(bad, label, "a label other than 0 or 1", "label is 1 for a pair of one session, 0 for a pair of two "
           "(`mine` writes no others)")  # fmt: skip
    pairs = pairs.with_columns(texts[c].alias(c) for c in texts).with_columns(value.cast(pl.Int8).alias("label"))
    if "kind" in pairs.columns and pairs.schema["kind"] in (pl.String, pl.Categorical, pl.Enum):
        pairs = pairs.with_columns(mined_kind(pl.col("kind").cast(pl.String)))
    return pairs


def rows_digest(frame: pl.DataFrame) -> str:
    """A digest of a table's rows, in their order: the SHA-256 of its cells as text (tab
    between cells, a line a row, `\\N` for a missing one), its first 16 hex digits. Two
    runs that read the same rows have the same digest, whatever file or settings they
    read them from (a champion is compared only with a run on the same data)."""
    import hashlib

    import polars as pl

    cells = [pl.col(name).cast(pl.String).fill_null("\\N") for name in frame.columns]
    rows = frame.select(pl.concat_str(cells, separator="\t"))
    return hashlib.sha256("\n".join(rows.to_series().to_list()).encode()).hexdigest()[:16]
