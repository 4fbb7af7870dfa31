"""`--engine auto`, the default of every data job (ingest, segment, mine, score): one
process for inputs of a few MiB of text on this machine, Ray for larger inputs or under
a cluster (`workflows.jobs.common.choose_engine`); what ran, and why, in each report."""

from __future__ import annotations

import gzip
import json
import re
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sessions.formats.options import ReadOptions
from workflows.cli import app
from workflows.distributed.runtime import require_cluster
from workflows.errors import user_error
from workflows.jobs import common

runner = CliRunner()
LOG = "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(
    f"{1 + i // 8}\tquery {i % 5}\t2006-03-01 10:{i % 60:02d}:00\t\t\n" for i in range(80)
)


def test_auto_weighs_the_inputs_as_text_and_a_named_cluster_first(tmp_path, monkeypatch):
    log = tmp_path / "log.tsv"
    log.write_text(LOG)
    size = log.stat().st_size
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    most = common.LOCAL_MAX_BYTES
    assert common.choose_engine("auto", None, [str(log), str(log)], "aol") == (  # a file named twice is read once
        "local", f"inputs of about {size:,} bytes of text, at most {most:,}: one process")  # fmt: skip
    packed = tmp_path / "later.tsv.gz"  # another log: a twin of log.tsv would be refused
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert common.text_bytes([str(packed)], "aol") == packed.stat().st_size * common.COMPRESSED_TEXT_RATIO
    (tmp_path / "U500k_README.txt").write_text("x" * (common.LOCAL_MAX_BYTES + 1))  # in the directory, never read
    assert common.text_bytes([str(tmp_path)], "aol") == size + packed.stat().st_size * common.COMPRESSED_TEXT_RATIO
    monkeypatch.setattr(common, "LOCAL_MAX_BYTES", size - 1)
    assert common.choose_engine("auto", None, [str(log)], "aol")[0] == "ray"
    assert common.choose_engine("local", None, [str(log)], "aol") == ("local", "--engine local")
    monkeypatch.setattr(common, "LOCAL_MAX_BYTES", size)
    assert common.choose_engine("auto", "10.0.0.1:6379", [str(log)], "aol") == (
        "ray", "a Ray cluster is named: 10.0.0.1:6379")  # fmt: skip
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # as `ray job submit` sets it
    assert common.choose_engine("auto", None, [str(log)], "aol")[0] == "ray"


def test_a_small_log_is_ingested_segmented_and_mined_in_this_process(tmp_path, monkeypatch):
    """No flag: no Ray is started, and each report names the engine and why; the
    sessions are those `--engine local` gives."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "log.tsv").write_text(LOG)
    log, at = str(tmp_path / "log.tsv"), lambda name: str(tmp_path / name)
    for args in (["ingest", log, "-f", "aol", "-o", at("events")], ["segment", log, "-f", "aol", "-o", at("sessions")],
                 ["segment", at("events"), "-o", at("from-events")], ["mine", at("sessions"), "-o", at("pairs")],
                 ["segment", log, "-f", "aol", "-o", at("local"), "--engine", "local"]):  # fmt: skip
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        assert "one process" in done.output or "--engine local" in done.output, done.output
    assert not ray.is_initialized()
    for name in ("events", "sessions", "from-events", "pairs"):
        config = json.loads((tmp_path / name / "report.json").read_text())["config"]
        assert config["engine"] == "local" and config["engine_reason"].endswith(": one process"), name
    tables = {p.relative_to(tmp_path): p.is_dir() and (p / "_manifest.json").is_file()
              for p in tmp_path.glob("*/*.parquet")}  # fmt: skip
    assert len(tables) == 9 and all(tables.values()), tables  # a dataset, whatever its engine (pairs were a file)
    # an ingest output weighs its events alone (not its rejected rows or report); a dataset every file
    events = [p for p in (tmp_path / "events" / "events.parquet").rglob("*") if p.is_file() and p.name[0] not in "._"]
    weight = sum(p.stat().st_size * (common.COMPRESSED_TEXT_RATIO if p.suffix == ".parquet" else 1) for p in events)
    assert common.text_bytes([at("events")], None) == common.text_bytes([at("events/events.parquet")], None) == weight
    from sessions.io import read_table

    by_default, local = (read_table(tmp_path / d / "sessions.parquet").sort("row_id") for d in ("sessions", "local"))
    assert by_default.equals(local)


COMMANDS = [["ingest", "x.tsv", "-f", "aol"], ["segment", "x.tsv", "-f", "aol"], ["mine", "sessions"],
            ["score", "x.tsv", "-f", "aol"]]  # fmt: skip


@pytest.mark.parametrize("args", COMMANDS)
def test_engine_local_with_an_address_is_refused_in_one_line(args, tmp_path):
    done = runner.invoke(app, [*args, "-o", str(tmp_path / "o"), "--engine", "local", "--address", "10.0.0.1:6379"])
    assert done.exit_code == 2 and "--engine local runs in this process" in done.output, done.output
    assert "Traceback" not in done.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args", COMMANDS)
@pytest.mark.parametrize("named_by", ["--address", "RAY_ADDRESS"])
def test_a_ray_client_address_is_refused_in_one_line_by_the_ray_data_jobs(args, named_by, tmp_path, monkeypatch):
    """Ray Data fails on a Ray Client connection (`ray://`: "'Worker' object has no
    attribute 'core_worker'", 82 lines; the change breaker's find), which --help offered:
    the jobs that run on it say so before they connect. Training runs there, and keeps it."""
    log = tmp_path / "x.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    words = [str(log) if a == "x.tsv" else str(sessions) if a == "sessions" else a for a in args]
    address = f"ray://127.0.0.1:{_closed_port()}"
    given = ["--address", address] if named_by == "--address" else []
    if named_by == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    done = runner.invoke(app, [*words, "-o", str(tmp_path / "o"), *given])
    said = done.output.strip()
    assert done.exit_code == 2 and said.startswith(f"error: {address}: a Ray Client address, on which Ray Data"), said
    assert len(said.splitlines()) == 1 and not (tmp_path / "o").exists()


def _closed_port() -> int:
    """A loopback port at which nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_require_cluster_passes_a_listener_and_refuses_silence():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", f"localhost:{port}"):
            require_cluster(address, "--address")
    port = _closed_port()
    for address in (f"127.0.0.1:{port}", f"ray://localhost:{port}", "no-such-host.invalid:6379"):
        with pytest.raises(ConnectionError, match=f"no Ray cluster answers at {address} \\(RAY_ADDRESS: "):
            require_cluster(address, "RAY_ADDRESS")
    for left_to_ray in ("auto", "local", "http://127.0.0.1:8265", "127.0.0.1"):
        require_cluster(left_to_ray, "--address")


@pytest.mark.parametrize("args", COMMANDS[:3])  # score's models would need training; it joins Ray the same way
@pytest.mark.parametrize("named_by", ["--address", "RAY_ADDRESS"])
def test_an_address_where_no_cluster_listens_is_refused_in_one_line(args, named_by, tmp_path, monkeypatch):
    """Ray retries such an address for minutes (127.0.0.1:9: over 200 s); every job that
    would join it says so in one line instead, and leaves no output behind."""
    import ray

    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.tsv").write_text(LOG)
    assert runner.invoke(app, ["segment", "x.tsv", "-f", "aol", "-o", "sessions", "--engine", "local"]).exit_code == 0
    address = f"127.0.0.1:{_closed_port()}"
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    given = ["--address", address] if named_by == "--address" else []
    if named_by == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    started = time.monotonic()
    done = runner.invoke(app, [*args, "-o", "o", *given])
    assert done.exit_code == 2, done.output
    assert f"no Ray cluster answers at {address} ({named_by}: connection refused)" in done.output
    assert "Traceback" not in done.output and not (tmp_path / "o").exists() and not ray.is_initialized()
    assert time.monotonic() - started < 60


def test_a_users_error_raised_in_a_ray_task_is_that_error_without_rays_wrapping():
    from ray.exceptions import RayTaskError

    raised = ValueError("log.csv: no column 'who'")
    raised.args = (raised.args[0] + "\nFailed to apply UDF transform after 1/1 attempts (total backoff 0.0s).",)
    wrapped = RayTaskError("MapBatches(parse)", "Traceback (most recent call last): ...", raised).as_instanceof_cause()
    assert isinstance(wrapped, ValueError) and str(wrapped) != str(raised)  # what a job would have printed
    assert user_error(wrapped) is raised and str(raised) == "log.csv: no column 'who'"
    assert user_error(RayTaskError("f", "...", RuntimeError("a bug")).as_instanceof_cause()) is None
    assert user_error(KeyError("a bug")) is None and user_error(raised) is raised


def test_a_jobs_api_address_names_no_cluster(tmp_path, monkeypatch):
    """The README's cluster section exports RAY_ADDRESS=http://127.0.0.1:8265 for `ray job
    submit`; a command run in that shell is not under a cluster: it runs here. Given as
    --address, that URL is refused in one line (Ray would blame RAY_ADDRESS)."""
    from workflows.distributed.runtime import named_cluster

    (tmp_path / "log.tsv").write_text(LOG)
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    assert named_cluster(None) is None and named_cluster("10.0.0.1:6379") == "10.0.0.1:6379"
    monkeypatch.setenv("RAY_ADDRESS", "local")  # Ray's word for "start a new local Ray"
    assert named_cluster(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    assert common.choose_engine("auto", None, [str(tmp_path / "log.tsv")], "aol")[0] == "local"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # as `ray job submit` sets it for its job
    assert named_cluster(None) == "10.0.0.1:6379"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.tsv").write_text(LOG)
    assert runner.invoke(app, ["segment", "x.tsv", "-f", "aol", "-o", "sessions", "--engine", "local"]).exit_code == 0
    for args in COMMANDS[:3]:
        done = runner.invoke(app, [*args, "-o", str(tmp_path / "o"), "--address", "https://head:8265"])
        assert done.exit_code == 2 and "--address https://head:8265: that is the Jobs API's address" in done.output
        assert len(done.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> str:
    """An `ingest` output of LOG."""
    where = tmp_path_factory.mktemp("ingested")
    (where / "log.tsv").write_text(LOG)
    done = runner.invoke(app, ["ingest", str(where / "log.tsv"), "-f", "aol", "--engine", "local", "-o",
                               str(where / "out")])  # fmt: skip
    assert done.exit_code == 0, done.output
    return str(where / "out")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changed=st.sets(st.sampled_from(["map", "time_format", "time_unit", "timezone", "unknown_user", "strict"])),
    fmt=st.sampled_from([None, "aol", "table"]),
)
def test_every_read_setting_given_with_an_ingest_output_is_named(ingested, changed, fmt):
    """The kind of `test_an_ingest_output_given_read_settings_is_refused_naming_them`:
    whichever read settings differ from the defaults (and a format) are named in one
    ValueError; none given, the output is read as it is."""
    values = {"map": "user=u,time=t,text=q", "time_format": "%Y", "time_unit": "ms", "timezone": "Asia/Tokyo",
              "unknown_user": ("nobody",), "strict": True}  # fmt: skip
    options = ReadOptions(**{name: values[name] for name in changed})
    flags = ([f"--format {fmt}"] if fmt else []) + [f"--{n.replace('_', '-')}" for n in sorted(changed)]
    if not flags:
        common.check_log_inputs([ingested], fmt, options=options)
        return
    with pytest.raises(ValueError) as refused:
        common.check_log_inputs([ingested], fmt, options=options)
    said = str(refused.value)
    assert "\n" not in said and said.startswith(f"{ingested}: an `ingest` output")
    named = re.split(r" reads? raw logs", said.split("; ")[1])[0]
    assert sorted(flags) == sorted(re.split(r", | and ", named)), said
