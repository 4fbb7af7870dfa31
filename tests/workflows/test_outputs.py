"""A job's output directory, through the command line: never where the job reads, left
as it was when the job is refused, replaced whole only with --overwrite, complete only
with its report, and cleaned of what killed runs left there."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import polars as pl
import pytest
from typer.testing import CliRunner

from sessions import storage
from sessions.io import read_table
from workflows.cli import app
from workflows.figures import save_figure, writable_formats

runner = CliRunner()
LOG = "".join(f"{u}\tquery {u} {i}\t2006-03-01 0{i}:10:00\t\t\n" for u in (1, 2) for i in range(4))


def sessionflow(*args: str):
    return runner.invoke(app, [*map(str, args)])


@pytest.fixture
def done(tmp_path) -> Path:
    """A log and the finished outputs of ingest, segment and mine on it (local engine)."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    for args in (("ingest", tmp_path / "logs", "-f", "aol", "-o", tmp_path / "events"),
                 ("segment", tmp_path / "logs", "-f", "aol", "-o", tmp_path / "sessions"),
                 ("mine", tmp_path / "sessions", "-o", tmp_path / "pairs")):  # fmt: skip
        result = sessionflow(*args, "--engine", "local")
        assert result.exit_code == 0, result.output
    return tmp_path


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("job", "output"),
    [
        (["ingest", "logs", "-f", "aol"], "logs"),  # the input itself
        (["segment", "logs", "-f", "aol"], "logs/out"),  # inside it: a rerun would read its own output
        (["segment", "logs/part-1.tsv", "-f", "aol"], "."),  # holding it: --overwrite would delete it
        (["segment", "logs/**", "-f", "aol"], "logs/x"),  # a pattern that could match the output's files
        (["mine", "sessions"], "sessions"),
        (["annotate", "sessions"], "sessions/annotated"),
        (["score", "logs", "-f", "aol"], "logs"),
    ],
)  # fmt: skip
def test_an_output_overlapping_an_input_is_refused_and_the_input_kept(done, monkeypatch, job, output):
    monkeypatch.chdir(done)
    before = {d: snapshot(done / d) for d in ("logs", "sessions")}
    result = sessionflow(*job, "-o", output, "--overwrite")
    assert result.exit_code == 2 and "overlaps the input" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert {d: snapshot(done / d) for d in ("logs", "sessions")} == before


@pytest.mark.parametrize(
    "job",
    [
        ["ingest", "logs", "-f", "nope", "-o", "events"],  # an unknown format
        ["ingest", "missing.tsv", "-f", "aol", "-o", "events"],  # a missing input
        ["segment", "logs", "-f", "aol", "-o", "sessions", "--method", "learned", "--model", "models:/none/1",
         "--engine", "local"],  # a model that is not there
        ["mine", "nothing", "-o", "pairs"],
        ["mine", "events", "-o", "pairs"],  # no sessions.parquet there: an ingest output
        ["mine", "logs/part-1.tsv", "-o", "pairs"],  # no sessions table
        # missing models, each with --overwrite: checked before anything of the output goes
        ["segment", "logs", "-f", "aol", "-o", "sessions", "--method", "learned", "--model", "models:/none/1",
         "--engine", "ray", "--overwrite"],
        ["score", "logs", "-f", "aol", "-o", "sessions", "--session-model", "models:/none/1", "--overwrite"],
        ["annotate", "sessions", "-o", "pairs", "--model", "models:/none@champion", "--overwrite"],
        ["segment", "events", "logs", "-f", "aol", "-o", "sessions", "--engine", "local"],  # an output among logs
    ],
)  # fmt: skip
def test_a_refused_job_leaves_the_last_output_complete(done, monkeypatch, job):
    monkeypatch.chdir(done)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{done / 'mlflow.db'}")
    target = done / job[job.index("-o") + 1]
    before = snapshot(target)
    result = sessionflow(*job)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert snapshot(target) == before and (target / "report.json").exists()


def test_a_pattern_that_cannot_match_the_output_is_fine(done, monkeypatch):
    monkeypatch.chdir(done / "logs")
    result = sessionflow("ingest", "*.tsv", "-f", "aol", "-o", "out", "--engine", "local")
    assert result.exit_code == 0, result.output
    again = sessionflow("ingest", "*.tsv", "-f", "aol", "-o", "out", "--engine", "local")  # reads no output back
    assert again.exit_code == 0 and json.loads((done / "logs" / "out" / "report.json").read_text())["rows_in"] == 8


def test_overwrite_deletes_what_the_other_job_wrote_and_nothing_else(tmp_path, done):
    (done / "events" / "notes.txt").write_text("mine")  # a user's file beside an output
    replaced = sessionflow(
        "segment", done / "logs", "-f", "aol", "-o", done / "events", "--engine", "local", "--overwrite"
    )
    assert replaced.exit_code == 0, replaced.output
    assert (done / "events" / "notes.txt").read_text() == "mine" and not (done / "events" / "events.parquet").exists()
    home = tmp_path / "home"  # a directory with a report.json sessionflow did not write
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "thesis.txt").write_text("precious")
    (home / "report.json").write_text('{"mine": 1}')
    refused = sessionflow("ingest", done / "logs", "-f", "aol", "-o", home, "--engine", "local", "--overwrite")
    assert refused.exit_code == 2 and "not a sessionflow job's report" in refused.output, refused.output
    assert (home / "docs" / "thesis.txt").read_text() == "precious"


def test_an_input_reached_through_a_link_into_the_output_is_refused(done, tmp_path):
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "x.tsv").symlink_to(done / "sessions" / "report.json")
    result = sessionflow("ingest", tmp_path / "linked", "-f", "aol", "-o", done / "sessions", "--overwrite")
    assert result.exit_code == 2 and "overlaps the input" in result.output, result.output
    assert (done / "sessions" / "report.json").exists()


def test_outputs_that_would_not_last_or_name_another_host_are_refused(done):
    memory = sessionflow("ingest", done / "logs", "-f", "aol", "-o", "memory://x/y", "--engine", "local")
    assert memory.exit_code == 2 and "memory:// lives only as long as this process" in memory.output
    here = sessionflow("ingest", f"file://localhost{done}/logs", "-f", "aol", "-o", f"file://localhost{done}/ev2",
                       "--engine", "local")  # fmt: skip
    assert here.exit_code == 0, here.output
    assert (done / "ev2" / "report.json").exists()
    other = sessionflow("ingest", "file://elsewhere/logs", "-f", "aol", "-o", done / "ev3", "--engine", "local")
    assert other.exit_code == 2 and "another host" in other.output, other.output


def test_overwrite_replaces_another_jobs_output_whole(done):
    refused = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    replaced = sessionflow(
        "segment", done / "logs", "-f", "aol", "-o", done / "events", "--engine", "local", "--overwrite"
    )
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in (done / "events").iterdir()) == ["rejected.parquet", "report.json",
                                                                     "sessions.parquet"]  # fmt: skip


def test_what_a_killed_job_of_another_kind_left_is_refused_unless_overwrite_which_deletes_it(done):
    """A `segment` killed while writing its sessions (their parts there, no manifest, no
    report; its rejected rows finished): `mine` wrote its pairs beside them (exit 0)."""
    killed = done / "sessions"
    (killed / "report.json").unlink()
    (killed / "sessions.parquet" / "_manifest.json").unlink()
    before = snapshot(killed)
    assert sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "s2", "--engine", "local").exit_code == 0
    refused = sessionflow("mine", done / "s2", "-o", killed)
    assert refused.exit_code == 2, refused.output
    assert f"--output {killed} holds what another job left unfinished (sessions.parquet, no report.json" in (
        refused.output
    )
    assert snapshot(killed) == before
    mined = sessionflow("mine", done / "s2", "-o", killed, "--overwrite")
    assert mined.exit_code == 0, mined.output
    assert sorted(p.name for p in killed.iterdir()) == ["pairs.parquet", "report.json"]  # its rejected rows too


def test_the_work_a_killed_ray_score_left_is_refused_unless_overwrite_which_deletes_it(done):
    """A Ray `score` killed before its first scores part leaves only its hidden work
    (`.score-work/`: staged events, encoded texts) for a run again to resume from:
    `segment` wrote its sessions beside it (exit 0) and kept it, however large."""
    killed = done / "scored"
    (killed / ".score-work" / "staging").mkdir(parents=True)
    (killed / ".score-work" / "job.json").write_text("{}")
    before = snapshot(killed)
    refused = sessionflow("segment", done / "logs", "-f", "aol", "-o", killed, "--engine", "local")
    assert refused.exit_code == 2 and f"--output {killed} holds what another job left unfinished (.score-work, no" in (
        refused.output
    ), refused.output
    assert snapshot(killed) == before
    written = sessionflow("segment", done / "logs", "-f", "aol", "-o", killed, "--engine", "local", "--overwrite")
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in killed.iterdir()) == ["rejected.parquet", "report.json", "sessions.parquet"]


def test_a_users_score_work_is_no_jobs_work_and_is_kept(done):
    """A user's own `.score-work/` was taken for a killed score's work: --overwrite deleted
    it whole, and score would have."""
    from sessions.io import claim_output

    (done / "mine" / ".score-work").mkdir(parents=True)
    (done / "mine" / ".score-work" / "thesis.txt").write_text("precious")
    written = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "mine", "--engine", "local", "--overwrite")
    assert written.exit_code == 0, written.output
    assert (done / "mine" / ".score-work" / "thesis.txt").read_text() == "precious"
    with pytest.raises(ValueError, match=r"its \.score-work is no job's work \(no job\.json\)"):
        claim_output(done / "mine", "scores.parquet", overwrite=True, also=[".score-work"])  # as score claims it
    assert (done / "mine" / ".score-work" / "thesis.txt").read_text() == "precious"


def test_a_job_killed_after_its_tables_before_its_report_is_caught_and_a_users_tables_kept(done):
    """Killed between its tables' manifests and its report, a `segment` output looks
    finished but for the report: `mine` wrote beside it, and a later `mine` of that
    directory read its sessions. A user's own `mydata.parquet/` is no job's: kept."""
    killed = done / "sessions"
    (killed / "report.json").unlink()
    (killed / "mydata.parquet").mkdir()
    (killed / "mydata.parquet" / "part-0.parquet").write_bytes(b"PAR1")
    assert sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "s2", "--engine", "local").exit_code == 0
    refused = sessionflow("mine", done / "s2", "-o", killed)
    assert refused.exit_code == 2 and "holds what another job left unfinished (sessions.parquet, no report" in (
        refused.output
    ), refused.output
    (done / "pairs" / "sessions.parquet").mkdir()  # a finished mine output with such a table beside it
    (done / "pairs" / "sessions.parquet" / "_manifest.json").write_text("{}")
    read = sessionflow("mine", done / "pairs", "-o", done / "p3")
    assert read.exit_code == 2 and "its sessions.parquet is no finished output (report.json does not list it)" in (
        read.output
    ), read.output
    overwritten = sessionflow("mine", done / "s2", "-o", killed, "--overwrite")
    assert overwritten.exit_code == 0, overwritten.output
    assert sorted(p.name for p in killed.iterdir()) == ["mydata.parquet", "pairs.parquet", "report.json"]


def test_a_finished_output_is_another_jobs_by_its_report_not_by_its_file_names(done):
    """A `mine` output that also holds a `sessions.parquet` directory: `segment` took it
    for its own output (its product was there beside a report) and wrote into it."""
    (done / "pairs" / "sessions.parquet").mkdir()
    result = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "pairs", "--engine", "local")
    assert result.exit_code == 2 and "holds another job's output (report.json lists pairs.parquet, report.json)" in (
        result.output
    ), result.output
    assert (done / "pairs" / "pairs.parquet" / "_manifest.json").exists()
    # an `annotate` output lists sessions.parquet too, and annotations that `segment` does not write
    annotated = done / "annotated"
    annotated.mkdir()
    (annotated / "annotations.parquet").mkdir()
    (annotated / "report.json").write_text(json.dumps({"outputs": {n: str(annotated / n) for n in (
        "sessions.parquet", "rejected.parquet", "annotations.parquet", "report.json")}}))  # fmt: skip
    result = sessionflow("segment", done / "logs", "-f", "aol", "-o", annotated, "--engine", "local")
    assert result.exit_code == 2 and "holds another job's output (report.json lists annotations.parquet" in (
        result.output
    ), result.output


def test_an_unfinished_output_is_not_read_as_finished(done):
    (done / "sessions" / "report.json").unlink()  # as while segment reruns there, or after it was killed
    for args in (("mine", done / "sessions", "-o", done / "p2"), ("annotate", done / "sessions", "-o", done / "a")):
        result = sessionflow(*args)
        assert result.exit_code == 2 and "an unfinished output (no report.json" in result.output, result.output
    evaluated = sessionflow("evaluate", "segmentation", "--gt", done / "logs" / "part-1.tsv", "-f", "aol",
                            "--pred", done / "sessions")  # fmt: skip
    assert evaluated.exit_code == 2 and "an unfinished output" in evaluated.output


def test_a_table_of_ones_own_named_as_a_job_names_its_output_is_read(done):
    """The new user's find: sessions filtered in pandas and written back with `to_parquet`
    into a directory of their own (`edited/sessions.parquet`, a file: a job writes a
    directory of parts) was "an unfinished output (no report.json: its job is still
    running, failed or was killed); run that job again", of a job that never ran. It is
    read, as a pairs.parquet file is by `train session`; a job's dataset without its
    report is still refused."""
    from sessions.io import read_table

    sessions = read_table(done / "sessions" / "sessions.parquet")
    edited = done / "edited"
    edited.mkdir()
    sessions.filter(pl.col("user_id") != sessions["user_id"][0]).write_parquet(edited / "sessions.parquet")
    kept = pl.read_parquet(edited / "sessions.parquet").height
    result = sessionflow("mine", edited, "-o", done / "p2", "--engine", "local")
    assert result.exit_code == 0, result.output
    assert json.loads((done / "p2" / "report.json").read_text())["rows_in"] == kept < sessions.height
    evaluated = sessionflow("evaluate", "segmentation", "--gt", done / "logs" / "part-1.tsv", "-f", "aol",
                            "--pred", edited)  # fmt: skip
    assert "has a session or mission label (format aol)" in evaluated.output  # its --pred was read: the log's turn
    # a log of one's own named events.parquet is no `ingest` output, and is read as itself (the change breaker's
    # find: its directory counted as one, and the advice went round: "give the output itself", "no report.json")
    raw = done / "raw"
    raw.mkdir()
    log = pl.DataFrame({"u": ["1", "1"], "t": ["2006-03-01 00:00:00"] * 2, "q": ["a", "b"]})
    log.write_parquet(raw / "events.parquet")
    said = " ".join(sessionflow("segment", raw, "-o", done / "s2").output.split())
    assert "its events.parquet is a file no job wrote" in said, said
    assert f"give the file itself, {raw / 'events.parquet'}" in said, said
    result = sessionflow("segment", raw / "events.parquet", "-f", "table", "--map", "user=u,time=t,text=q", "-o",
                         done / "s2", "--engine", "local")  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("tables", [False, True], ids=["lock alone", "lock and empty tables"])
def test_a_directory_a_job_was_killed_in_before_its_tables_is_named_unfinished_by_every_reader(done, tables):
    """The kill breaker's find: an `ingest` killed early leaves its lock alone (and maybe
    empty table directories); `segment` said "raw logs need --format", `segment -f` and
    `score` "empty directory", `mine` "no sessions.parquet here". Every reader now says
    what it is, naming the job the lock names."""
    import socket

    from sessions.io import this_process

    killed = done / "killed"
    killed.mkdir()
    lock = {"pid": 999_999_999, "started": 0.0, "host": socket.gethostname(), "command": "sessionflow ingest"}
    (killed / ".sessionflow-job.json").write_text(json.dumps(lock))
    if tables:
        (killed / "events.parquet").mkdir()
        (killed / "rejected.parquet").mkdir()
    for args in (["segment", killed], ["segment", killed, "-f", "aol"], ["score", killed, "--session-model", "x"],
                 ["mine", killed], ["annotate", killed, "--model", "x"]):  # fmt: skip
        result = sessionflow(*args, "-o", done / "out")
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and f"{killed}: an unfinished output" in said, (args, result.output)
        if not tables or args[0] == "score":
            assert "of `sessionflow ingest` (no report.json: its job failed or was killed); run that job" in said
    # a job that still runs there is named as running (the second change breaker's find: "run that job
    # again" was refused, as the job was still writing)
    (killed / ".sessionflow-job.json").write_text(json.dumps({**this_process(), "command": "sessionflow ingest"}))
    result = sessionflow("segment", killed, "-o", done / "out")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "`sessionflow ingest` is writing there now (process " in said, result.output


def test_another_jobs_output_or_a_non_parquet_file_is_named_not_misread(done):
    as_log = sessionflow("segment", done / "pairs", "-f", "aol", "-o", done / "s2", "--engine", "local")
    assert as_log.exit_code == 2 and "the output of another job" in as_log.output, as_log.output
    raw = sessionflow("mine", done / "logs" / "part-1.tsv", "-o", done / "p2")
    assert raw.exit_code == 2 and "not a Parquet file" in raw.output, raw.output
    table = sessionflow(
        "mine", done / "sessions" / "sessions.parquet", "-o", done / "p2"
    )  # said "no sessions.parquet here"
    assert table.exit_code == 2 and "the sessions.parquet of a job's output; give its directory, " in table.output
    # annotate, the other reader of a sessions table, says the same (a new user's find: "raw logs need --format")
    table = sessionflow("annotate", done / "sessions" / "sessions.parquet", "-o", done / "a2")
    assert table.exit_code == 2 and "the sessions.parquet of a job's output; give its directory, " in table.output
    pairs = sessionflow("mine", done / "pairs", "-o", done / "p2")  # said "no sessions.parquet here"
    said = "no sessions.parquet here: it is the output of `mine` (pairs.parquet); `sessionflow segment` writes"
    assert pairs.exit_code == 2 and said in " ".join(pairs.output.split()), pairs.output


def test_what_killed_runs_left_is_removed_by_the_next_run(done):
    leftovers = [done / "sessions" / ".staging-0badf00d0123" / "b1" / "p.parquet",
                 done / "sessions" / ".staging-0badf00d0123" / "staging.json",
                 done / "sessions" / ".report.json.tmp-123456789abc",
                 done / "sessions" / "sessions.parquet" / ".part-0badf00d-00003.parquet.tmp-5424caa38671"]  # fmt: skip
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    result = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "sessions", "--engine", "local")
    assert result.exit_code == 0, result.output
    assert not [p for p in (done / "sessions").rglob(".*")]


def test_a_failed_command_leaves_nothing_that_looks_like_output(done):
    """Nothing read: the output the command created is gone again; the last output of
    the same command, which the failed rerun was to replace, is back as it was (it was
    deleted as the rerun started, and the directory left empty)."""
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    before = snapshot(done / "sessions")
    for out in (done / "new", done / "sessions"):
        result = sessionflow("segment", done / "bad.tsv", "-f", "aol", "-o", out, "--engine", "local")
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
        said = (
            f"its one record was rejected, as bad_time, e.g. line 1 of {done / 'bad.tsv'}: 'x\\ty\\tnot a time\\t\\t'"
        )
        assert said in result.output
    assert not (done / "new").exists()
    assert snapshot(done / "sessions") == before and not list((done / "sessions").glob(".*"))
    mined = sessionflow("mine", done / "sessions", "-o", done / "pairs-2", "--engine", "local")
    assert mined.exit_code == 0 and (done / "pairs-2" / "report.json").is_file()


@pytest.mark.parametrize(
    ("job", "out", "fails_by"),
    [
        (["ingest", "{bad}", "-f", "aol"], "events", "nothing could be read"),
        (["ingest", "{logs}", "-f", "table", "--map", "user=a,time=b,text=c"], "events", "no column 'a'"),
        (["segment", "{bad}", "-f", "aol"], "sessions", "nothing could be read"),
        (["segment", "{logs}", "-f", "aol", "--time-format", "%d/%m/%Y"], "sessions", "nothing could be read"),
        (["mine", "{events}"], "pairs", "it is the output of `ingest`"),
    ],
    ids=["ingest nothing read", "ingest a column not there", "segment nothing read", "segment a wrong time format",
         "mine an ingest output"],
)  # fmt: skip
def test_a_rerun_that_fails_on_a_users_mistake_leaves_the_earlier_output_as_it_was(done, job, out, fails_by):
    """A job run again into its own output deleted that output as it started: a rerun
    that then failed on what only reading finds (nothing read, a `--map` column the file
    lacks, a wrong `--time-format`) left the directory empty. Now the earlier output is
    kept aside (`.previous-<hex>`, renamed) and put back, byte for byte; a rerun that
    ends well deletes it."""
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    where = {"bad": done / "bad.tsv", "logs": done / "logs", "events": done / "events"}
    before = snapshot(done / out)
    result = sessionflow(*(w.format(**where) for w in job), "-o", done / out, "--engine", "local")
    assert result.exit_code == 2 and fails_by in " ".join(result.output.split()), result.output
    assert snapshot(done / out) == before and not list((done / out).glob(".*"))


def test_a_rerun_that_ends_well_or_is_killed_keeps_no_earlier_output_for_long(done):
    """What a rerun keeps aside goes when it ends well; a rerun killed midway (its
    claim made, nothing after) leaves it for the user, until the next run there is done."""
    from sessions.io import REPORT, claim_output, previous_output

    rerun = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "sessions", "--engine", "local")
    assert rerun.exit_code == 0 and not list((done / "sessions").glob(".*"))
    claim_output(done / "sessions", "sessions.parquet", keep_previous=True)  # what a killed rerun did, and no more
    kept = previous_output(str(done / "sessions"))
    assert kept is not None and (Path(kept) / REPORT).is_file() and not (done / "sessions" / REPORT).exists()
    again = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "sessions", "--engine", "local")
    assert again.exit_code == 0 and not list((done / "sessions").glob(".*"))


def killed_rerun(out: Path, produces: str, stop_at_rename: int | None = None, monkeypatch=None) -> None:
    """What a rerun killed after its claim leaves (as a new process finds it): the earlier
    output set aside, and a part of its own table; or, with `stop_at_rename`, a claim
    stopped while it was moving the earlier output aside."""
    from sessions import io

    if stop_at_rename is not None:
        renamed, rename = [], os.rename

        def stopping(a, b):
            renamed.append(a)
            if len(renamed) == stop_at_rename:
                raise KeyboardInterrupt
            rename(a, b)

        monkeypatch.setattr(io.os, "rename", stopping)
        with pytest.raises(KeyboardInterrupt):
            io.claim_output(out, produces, keep_previous=True)
        monkeypatch.setattr(io.os, "rename", rename)
    else:
        io.claim_output(out, produces, keep_previous=True)
        (out / produces).mkdir()
        (out / produces / ".part-0badf00d-00000.parquet.tmp-0123456789ab").write_text("half")
    io._SET_ASIDE_HERE.clear()  # another process's


def test_a_killed_reruns_earlier_output_is_back_before_another_job_may_take_the_directory(done):
    """The breaking helper's find: after a killed rerun of `segment`, `ingest` took the
    directory without --overwrite and deleted the earlier output kept aside."""
    before = snapshot(done / "sessions")
    killed_rerun(done / "sessions", "sessions.parquet")
    result = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "sessions", "--engine", "local")
    assert result.exit_code == 2 and "holds another job's output" in result.output, result.output
    assert snapshot(done / "sessions") == before and not list((done / "sessions").glob(".*"))


def test_a_stopped_rerun_puts_the_earlier_output_back_and_a_killed_ones_readers_say_where_it_is(done):
    """The breaking helper's find: a `mine` rerun stopped or killed midway left the
    earlier pairs aside, and `train session` and `evaluate pairs` then said the directory
    was "not a `mine` output". A stop (Ctrl-C, SIGTERM) now puts them back; after a kill
    each reader names where they are and how they come back."""
    from workflows.jobs import common

    before = snapshot(done / "pairs")
    with pytest.raises(KeyboardInterrupt), common.nothing_left_on_error():
        common.output_dir(str(done / "pairs"), "pairs.parquet", inputs=[str(done / "sessions")])
        (done / "pairs" / "pairs.parquet").mkdir()
        (done / "pairs" / "pairs.parquet" / ".part-0badf00d-00000.parquet.tmp-0123456789ab").write_text("half")
        raise KeyboardInterrupt
    assert snapshot(done / "pairs") == before and not list((done / "pairs").glob(".*"))
    killed_rerun(done / "pairs", "pairs.parquet")
    killed_rerun(done / "sessions", "sessions.parquet")
    said = (
        r"a rerun of `{}` there is running, or was killed: the earlier output is kept aside in (\.previous-\w+)/ \({}\)"
    )
    with pytest.raises(FileNotFoundError) as err:
        common.pairs_location(str(done / "pairs"))
    aside = re.search(said.format("mine", "report.json, pairs.parquet"), str(err.value))
    assert aside and str(err.value).endswith(
        f"and the next job run into this directory puts it back first (or move those back yourself, then delete "
        f"{aside[1]}/)"
    ), err.value
    mined = sessionflow("mine", done / "sessions", "-o", done / "pairs-2", "--engine", "local")
    assert mined.exit_code == 2 and re.search(
        said.format("segment", "report.json, sessions.parquet, rejected.parquet"), " ".join(mined.output.split())
    ), mined.output


@pytest.mark.parametrize("moved", [0, 1, 2])
def test_a_restore_killed_midway_is_finished_by_the_next_job_not_lost(done, monkeypatch, moved):
    """The third breaking helper's find: a failed rerun putting the earlier output back was
    killed once its report was back but not its tables; the next job, seeing a report,
    took the directory for finished and deleted the tables kept aside. The report now goes
    back last, and the next job finishes the restore without deleting what is back."""
    from sessions import io, storage

    before = snapshot(done / "sessions")
    killed_rerun(done / "sessions", "sessions.parquet")
    calls, move = [], storage.move

    def killed(a, b):  # a kill -9 after `moved` moves: nothing after it runs
        if len(calls) == moved:
            raise SystemExit("killed")
        calls.append(a)
        move(a, b)

    monkeypatch.setattr(storage, "move", killed)
    with pytest.raises(SystemExit):
        io.restore_previous(str(done / "sessions"), {"sessions.parquet", "rejected.parquet", "report.json"})
    monkeypatch.setattr(storage, "move", move)
    assert not (done / "sessions" / "report.json").exists()  # nothing looks finished meanwhile
    read = sessionflow("mine", done / "sessions", "-o", done / "pairs-2", "--engine", "local")
    still = ", ".join(["report.json", *["sessions.parquet", "rejected.parquet"][moved:]])  # the report goes last
    assert read.exit_code == 2 and re.search(
        rf"is kept aside in \.previous-\w+/ \({still}\)", " ".join(read.output.split())
    ), read.output
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    failed = sessionflow("segment", done / "bad.tsv", "-f", "aol", "-o", done / "sessions", "--engine", "local")
    assert failed.exit_code == 2 and "nothing could be read" in " ".join(failed.output.split()), failed.output
    assert snapshot(done / "sessions") == before and not list((done / "sessions").glob(".*"))


def test_a_killed_reruns_put_back_deletes_only_what_stands_in_place_of_what_is_still_aside(done):
    """The fourth breaking helper's finds: after a killed rerun, the next job deleted every
    job table in the directory before it put the earlier output back: the tables a user
    had moved back by hand, as the refusal advised (only the report left aside), and a
    complete table of another job copied in; a killed demo rerun on `--data` made the
    next one delete the earlier demo's synthetic log, which it had not set aside."""
    from sessions import io

    before = snapshot(done / "sessions")
    killed_rerun(done / "sessions", "sessions.parquet")
    aside = next((done / "sessions").glob(".previous-*"))
    shutil.rmtree(done / "sessions" / "sessions.parquet")  # the killed run's half table, then the user's moves
    for name in ("sessions.parquet", "rejected.parquet"):
        (aside / name).rename(done / "sessions" / name)
    shutil.copytree(done / "events" / "events.parquet", done / "sessions" / "events.parquet")  # another job's
    (done / "sessions" / "synth-aol.tsv.gz").write_bytes(b"a log")  # a name the rerun did not set aside
    io._SET_ASIDE_HERE.clear()
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    failed = sessionflow("segment", done / "bad.tsv", "-f", "aol", "-o", done / "sessions", "--engine", "local")
    assert failed.exit_code == 2, failed.output
    after = snapshot(done / "sessions")
    assert after == {**before, **{k: v for k, v in after.items() if k.startswith(("events.parquet", "synth-aol"))}}
    assert after["synth-aol.tsv.gz"] == b"a log" and any(k.startswith("events.parquet/") for k in after)


def test_a_report_this_job_set_aside_is_not_taken_for_a_missing_one(done):
    """The fourth breaking helper's find: beside an `ingest` output, a finished table of
    another job; an `ingest` rerun said the directory "holds what another job left
    unfinished (sessions.parquet, no report.json ...)": its own first claim had set the
    report aside, and its second (the engine's) took the report for missing."""
    before = snapshot(done / "events")
    shutil.copytree(done / "sessions" / "sessions.parquet", done / "events" / "sessions.parquet")
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    failed = sessionflow("ingest", done / "bad.tsv", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert failed.exit_code == 2 and "nothing could be read" in " ".join(failed.output.split()), failed.output
    after = snapshot(done / "events")
    assert {k: v for k, v in after.items() if not k.startswith("sessions.parquet/")} == before


def test_an_earlier_output_kept_aside_is_deleted_marker_last(done, monkeypatch):
    """The fourth breaking helper's find: deleting a set-aside removed its entries in the
    directory's order, its marker before a table; a kill there left a hidden copy of a
    table that no later job knew for the job's, nor removed. Its marker now goes last."""
    from sessions import io, storage

    killed_rerun(done / "sessions", "sessions.parquet")
    aside = next((done / "sessions").glob(".previous-*"))
    removed, remove = [], storage.remove
    monkeypatch.setattr(storage, "remove", lambda location: (removed.append(storage.name(location)), remove(location)))
    io.discard_previous(str(done / "sessions"))
    assert not aside.exists() and removed[-2:] == ["set-aside.json", aside.name], removed
    assert {"report.json", "sessions.parquet", "rejected.parquet"} <= set(removed[:-2]), removed


def test_a_set_aside_stopped_before_its_marker_leaves_nothing_behind(done):
    """The third breaking helper's find: a SIGTERM as a rerun began to set the earlier
    output aside left a `.previous-ID/` holding only its marker's temporary file, which
    no later run removed (nothing had been moved: it is no earlier output)."""
    begun = done / "pairs" / ".previous-0123456789ab"
    begun.mkdir()
    (begun / ".set-aside.json.tmp-0123456789ab").write_text('{"names": [')
    users = done / "pairs" / ".previous-abcdefabcdef"  # a user's, named alike: not the job's
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    again = sessionflow("mine", done / "sessions", "-o", done / "pairs", "--engine", "local")
    assert again.exit_code == 0, again.output
    assert not begun.exists() and (users / "notes.txt").read_text() == "mine"


def test_a_job_writing_to_an_output_keeps_other_jobs_out_until_it_ends(done):
    """The breaking helper's find: two `mine` jobs into one new directory at once; one
    failed, and its cleanup deleted the table the other had finished and reported. A job
    now holds a local output alone (`.sessionflow-job.json`, made exclusively): another
    is refused in one line and changes nothing; the lock of a job that is gone (killed,
    or killed as it made the lock) does not keep anyone out."""
    import socket
    import subprocess
    import sys
    import time

    import psutil

    from sessions.io import LOCK

    before = snapshot(done / "pairs")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held = {"pid": other.pid, "started": psutil.Process(other.pid).create_time(), "host": socket.gethostname(),
                "command": "sessionflow mine"}  # fmt: skip
        for out in (done / "pairs", done / "new"):
            out.mkdir(exist_ok=True)
            (out / LOCK).write_text(json.dumps(held))
            refused = sessionflow("mine", done / "sessions", "-o", out, "--engine", "local")
            assert refused.exit_code == 2 and " ".join(refused.output.split()) == (
                f"error: --output {out}: another sessionflow job is writing there now (process {other.pid} on "
                f"{socket.gethostname()}, `sessionflow mine`); wait for it to end, or choose another directory (if "
                f"none runs, delete {out / LOCK})"
            ), refused.output
        assert snapshot(done / "pairs") == {LOCK: (done / "pairs" / LOCK).read_bytes(), **before}
        assert [p.name for p in (done / "new").iterdir()] == [LOCK]
        inside = sessionflow("mine", done / "sessions", "-o", done / "new" / "sub", "--engine", "local")
        assert inside.exit_code == 2 and " ".join(inside.output.split()) == (  # the second helper's find
            f"error: --output {done / 'new' / 'sub'}: it lies inside {done / 'new'}, which another sessionflow job "
            f"is writing now (process {other.pid} on {socket.gethostname()}, `sessionflow mine`); choose a "
            f"directory outside it (if none runs, delete {done / 'new' / LOCK})"
        ), inside.output
        assert not (done / "new" / "sub").exists()
        # its process alive by pid and start time, but of an earlier boot: this machine's lock, gone with the reboot
        (done / "pairs" / LOCK).write_text(json.dumps({**held, "boot": "before-a-reboot"}))
        rebooted = sessionflow("mine", done / "sessions", "-o", done / "pairs", "--engine", "local")
        assert rebooted.exit_code == 0 and not (done / "pairs" / LOCK).exists(), rebooted.output
    finally:
        other.kill()
        other.wait()
    (done / "new" / LOCK).write_text("[1, 2]")  # killed as it made its lock: held while it may still be written
    young = sessionflow("mine", done / "sessions", "-o", done / "new", "--engine", "local")
    assert young.exit_code == 2 and "(its lock file, made under 10 s ago, is not complete yet)" in " ".join(
        young.output.split()
    ), young.output
    os.utime(done / "new" / LOCK, (time.time() - 60, time.time() - 60))
    for out in (done / "pairs", done / "new"):  # their jobs are gone
        again = sessionflow("mine", done / "sessions", "-o", out, "--engine", "local")
        assert again.exit_code == 0 and not (out / LOCK).exists() and (out / "report.json").is_file(), again.output


def test_jobs_into_nested_outputs_started_together_see_each_other(done, monkeypatch):
    """The second breaker's find (data loss): a failing job into `X/out` and a good one
    into `X/out/inner`, started together, each looked for a lock above its output before
    either had made its own; both ran, and the failing one's clean-up deleted the other's
    finished output with its own. Each job now looks above and inside once its lock is
    made, so that of two such jobs at least one sees the other; and a directory another
    job wrote into before this one's lock is not this one's to delete."""
    import subprocess
    import sys

    from sessions import io, storage
    from sessions.io import LOCK

    job = subprocess.Popen([sys.executable, "-c", "import json, time; from sessions import io; "
                            "print(json.dumps(io.this_process()), flush=True); time.sleep(60)"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        held = {**json.loads(job.stdout.readline()), "command": "sessionflow ingest"}
        # the outer job: another job runs inside its output already
        (done / "x" / "out" / "inner").mkdir(parents=True)
        (done / "x" / "out" / "inner" / LOCK).write_text(json.dumps(held))
        outer = sessionflow("mine", done / "sessions", "-o", done / "x" / "out", "--engine", "local", "--overwrite")
        assert outer.exit_code == 2 and " ".join(outer.output.split()) == (
            f"error: --output {done / 'x' / 'out'}: another sessionflow job is writing inside it now, at "
            f"{done / 'x' / 'out' / 'inner'} (process {job.pid} on {held['host']}, `sessionflow ingest`); wait for "
            f"it to end, or choose another directory (if none runs, delete {done / 'x' / 'out' / 'inner' / LOCK})"
        ), outer.output
        assert sorted(p.name for p in (done / "x" / "out").iterdir()) == ["inner"]  # its own lock gone with it
        # the inner job: the outer one's lock appears after it looked above, before it made its own
        check_writable_dir = storage.check_writable_dir

        def outer_locks_meanwhile(location, what="output"):
            check_writable_dir(location, what)
            (done / "y" / "out" / LOCK).write_text(json.dumps(held))

        (done / "y" / "out").mkdir(parents=True)
        monkeypatch.setattr(storage, "check_writable_dir", outer_locks_meanwhile)
        inner = sessionflow("mine", done / "sessions", "-o", done / "y" / "out" / "inner", "--engine", "local")
        assert inner.exit_code == 2 and f"it lies inside {done / 'y' / 'out'}, which another sessionflow job is " \
            "writing now" in " ".join(inner.output.split()), inner.output  # fmt: skip
        assert not (done / "y" / "out" / "inner" / LOCK).exists()
        # a job whose new output another job wrote into before its lock: a failure deletes none of it
        (done / "y" / "out" / LOCK).unlink()

        def another_job_writes_there(location, what="output"):
            check_writable_dir(location, what)
            (Path(location) / "theirs").mkdir(exist_ok=True)
            (Path(location) / "theirs" / "report.json").write_text("{}")

        monkeypatch.setattr(storage, "check_writable_dir", another_job_writes_there)
        failed = sessionflow("ingest", done / "logs" / "part-1.tsv", "-f", "webis-smc", "-o", done / "z" / "out",
                             "--engine", "local", "--overwrite")  # fmt: skip
        assert failed.exit_code == 2, failed.output
        assert (done / "z" / "out" / "theirs" / "report.json").is_file(), failed.output
        assert io.LOCK not in [p.name for p in (done / "z" / "out").iterdir()]
    finally:
        job.kill()
        job.wait()


@pytest.mark.xfail(
    not Path("/proc/self/stat").exists(), strict=True,
    reason="without Linux's /proc a process is known by psutil's start time alone, which a clock step moves",
)  # fmt: skip
def test_a_running_jobs_lock_holds_across_a_step_of_the_wall_clock(done, monkeypatch):
    """A process was known by its pid and its start time as psutil gives it, which is
    its start in ticks since boot added to a boot time derived from the wall clock: set
    the clock an hour ahead (NTP, a VM's clock) and every running job looked gone, its
    output free for a second job. The ticks since boot (Linux's /proc/PID/stat) do not
    move; a pid reused by a new process still tells itself apart by them."""
    import subprocess
    import sys

    import psutil

    from sessions.io import LOCK

    job = subprocess.Popen([sys.executable, "-c", "import json, time; from sessions import io; "
                            "print(json.dumps(io.this_process()), flush=True); time.sleep(60)"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        held = {**json.loads(job.stdout.readline()), "command": "sessionflow mine"}
        (done / "pairs" / LOCK).write_text(json.dumps(held))
        create_time = psutil.Process.create_time
        monkeypatch.setattr(psutil.Process, "create_time", lambda self: create_time(self) + 3600.0)  # the step
        refused = sessionflow("mine", done / "sessions", "-o", done / "pairs", "--engine", "local")
        assert refused.exit_code == 2 and "another sessionflow job is writing there now" in refused.output
        # the same pid, started at another tick: a new process under a reused pid, not the job
        (done / "pairs" / LOCK).write_text(json.dumps({**held, "start_ticks": held["start_ticks"] - 1}))
        monkeypatch.undo()
        reused = sessionflow("mine", done / "sessions", "-o", done / "pairs", "--engine", "local")
        assert reused.exit_code == 0 and not (done / "pairs" / LOCK).exists(), reused.output
    finally:
        job.kill()
        job.wait()


@pytest.mark.parametrize("field", ["pid", "start_ticks"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -5, 1 << 70, True, "7", None, 1.5])
def test_a_garbled_process_record_is_refused_as_garbled(field, value):
    """The breaker's find: `start_ticks: Infinity` (JSON reads it back) raised
    OverflowError through every caller (the locks, `compare`), and -5, 10**40 or `true`
    took a live job for gone where "abc" or null did not. Every such value is a
    ValueError now, which each caller takes as an unreadable record."""
    from sessions import io

    with pytest.raises(ValueError, match="not a process's number"):
        io.process_running({**io.this_process(), field: value})


def test_a_lock_nested_past_pythons_recursion_limit_is_a_garbled_one(done):
    """The second breaker's find: such a lock file raised RecursionError, a traceback."""
    import time

    from sessions.io import LOCK

    (done / "pairs" / LOCK).write_text("[" * 100_000 + "]" * 100_000)
    os.utime(done / "pairs" / LOCK, (time.time() - 60, time.time() - 60))
    taken = sessionflow("mine", done / "sessions", "-o", done / "pairs", "--engine", "local")
    assert taken.exit_code == 0 and not (done / "pairs" / LOCK).exists(), taken.output


def test_what_stands_where_a_lock_or_an_output_directory_should_be_is_named_in_one_line(done):
    """The third breaking helper's finds: a directory where the lock file goes said
    "process ? on ?" for 10 s and then "[Errno 21] Is a directory" for ever; an output
    below a regular file said "[Errno 20] Not a directory" naming the lock file."""
    from sessions.io import LOCK

    (done / "out" / LOCK).mkdir(parents=True)
    for _ in range(2):  # young, then old
        refused = sessionflow("mine", done / "sessions", "-o", done / "out", "--engine", "local")
        assert refused.exit_code == 2 and " ".join(refused.output.split()) == (
            f"error: --output {done / 'out'}: {done / 'out' / LOCK} is in the way of this job's lock file (it is "
            "not a file); move it, or choose another directory"
        ), refused.output
        os.utime(done / "out" / LOCK, (0, 0))
    inside = sessionflow("mine", done / "sessions", "-o", done / "out" / LOCK / "x", "--engine", "local")
    assert inside.exit_code == 0, inside.output  # a directory named like a lock above it is no lock
    (done / "file").write_text("a user's file")
    below = sessionflow("mine", done / "sessions", "-o", done / "file" / "sub", "--engine", "local")
    assert below.exit_code == 2 and " ".join(below.output.split()) == (
        f"error: --output {done / 'file' / 'sub'}: cannot be written ({done / 'file'} is a file, not a directory)"
    ), below.output


def test_a_failed_job_deletes_only_its_own_output_not_what_others_wrote_in_the_parents_it_made(done):
    """The second helper's find: `-o new/a` made `new/`, and when the job then read
    nothing it deleted `new/` whole, with another job's finished `new/c` in it."""
    from workflows.jobs import common

    with pytest.raises(ValueError), common.nothing_left_on_error():
        common.output_dir(str(done / "new" / "a"), "events.parquet", inputs=[str(done / "logs")])
        (done / "new" / "c").mkdir()  # another job's output, finished meanwhile
        (done / "new" / "c" / "report.json").write_text("{}")
        raise ValueError("nothing could be read")
    assert [p.name for p in (done / "new").iterdir()] == ["c"] and (done / "new" / "c" / "report.json").is_file()
    with pytest.raises(ValueError), common.nothing_left_on_error():  # alone there: every directory it made goes
        common.output_dir(str(done / "new2" / "a"), "events.parquet", inputs=[str(done / "logs")])
        raise ValueError("nothing could be read")
    assert not (done / "new2").exists()


def test_a_killed_score_rerun_resumes_from_its_work_not_from_the_earlier_output(tmp_path):
    """A Ray `score` killed midway resumes from `.score-work`, whose finished buckets are
    parts of the table it was writing: the claim that puts a killed rerun's earlier output
    back must not delete those parts then."""
    import polars as pl

    from sessions import io

    out = tmp_path / "scored"
    io.write_parquet(pl.DataFrame({"x": [1]}), out / "scores.parquet")
    io.write_report({"outputs": {"scores.parquet": str(out / "scores.parquet")}}, out)
    io.claim_output(out, "scores.parquet", also=[".score-work"], keep_previous=True)  # the rerun, then killed
    (out / ".score-work").mkdir()
    (out / ".score-work" / "job.json").write_text("{}")
    io.prepare_dataset(out / "scores.parquet")
    (out / "scores.parquet" / "part-0badf00d-00003.parquet").write_bytes(b"a finished bucket")
    io._SET_ASIDE_HERE.clear()  # what a new process finds
    io.claim_output(out, "scores.parquet", also=[".score-work"], keep_previous=True)  # the resumed rerun
    assert (out / "scores.parquet" / "part-0badf00d-00003.parquet").read_bytes() == b"a finished bucket"
    assert io.previous_output(str(out)) is not None and not (out / "report.json").exists()


def test_a_claim_stopped_while_setting_aside_loses_nothing(done, monkeypatch):
    """Stopped between its renames, the claim left the report in place and some tables
    aside, and the next run deleted them as a finished output's leftovers."""
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    before = snapshot(done / "events")
    killed_rerun(done / "events", "events.parquet", stop_at_rename=2, monkeypatch=monkeypatch)
    result = sessionflow("ingest", done / "bad.tsv", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert result.exit_code == 2 and "nothing could be read" in result.output, result.output
    assert snapshot(done / "events") == before and not list((done / "events").glob(".*"))


def test_on_an_object_store_a_failed_or_killed_rerun_keeps_the_earlier_output(tmp_path, s3):
    """On S3 the earlier output was deleted as a rerun started (a move there is a copy):
    a rerun that then read nothing left the output empty, and so did a killed one. Now
    it is moved aside object by object, by the store, and back as it was."""
    from sessions import io

    def objects(prefix: str) -> dict[str, bytes]:
        files = storage.list_files(prefix, recursive=True, hidden=True)
        return {f.removeprefix(prefix): storage.read_bytes(f) for f in files}

    storage.write_text(LOG, f"{s3}/logs/part-1.tsv")
    storage.write_text("x\ty\tnot a time\t\t\n", f"{s3}/bad.tsv")
    out = f"{s3}/sessions"
    assert sessionflow("segment", f"{s3}/logs", "-f", "aol", "-o", out, "--engine", "local").exit_code == 0
    before = objects(out)
    assert f"/{io.REPORT}" in before and any(name.startswith("/sessions.parquet/part-") for name in before)
    failed = sessionflow("segment", f"{s3}/bad.tsv", "-f", "aol", "-o", out, "--engine", "local")
    assert failed.exit_code == 2 and "nothing could be read" in " ".join(failed.output.split()), failed.output
    assert objects(out) == before
    io.claim_output(out, "sessions.parquet", keep_previous=True)  # a rerun killed after its claim
    io.write_table(pl.DataFrame({"half": [1]}), f"{out}/sessions.parquet")
    io._SET_ASIDE_HERE.clear()  # what a new process finds
    other = sessionflow("ingest", f"{s3}/logs", "-f", "aol", "-o", out, "--engine", "local")
    assert other.exit_code == 2 and "holds another job's output" in other.output, other.output
    assert objects(out) == before
    again = sessionflow("segment", f"{s3}/logs", "-f", "aol", "-o", out, "--engine", "local")
    assert again.exit_code == 0 and not [f for f in objects(out) if ".previous-" in f]


def test_on_an_object_store_a_failed_job_leaves_no_directory_marker_of_the_folders_it_made(s3):
    """A job that failed on its input into a new `s3://B/new/out` deleted its output, and
    pyarrow then wrote the empty marker `new/` in its place (its `delete_dir` keeps the
    parent): a `new` folder the job had made stayed in the bucket, and under a folder
    that held a user's object, `kept/out` left the marker `kept/` (the breaker's find)."""
    import boto3

    bucket = s3.removeprefix("s3://")

    def keys() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))

    client = boto3.client("s3")  # as a user's tools write objects: no folder markers
    client.put_object(Bucket=bucket, Key="in/bad.tsv", Body=b"x\ty\tnot a time\t\t\n")
    client.put_object(Bucket=bucket, Key="kept/file.txt", Body=b"a user's file")
    for out in (f"{s3}/new/deeper/out", f"{s3}/kept/new/out", f"{s3}/kept/out"):
        failed = sessionflow("segment", f"{s3}/in/bad.tsv", "-f", "aol", "-o", out, "--engine", "local")
        assert failed.exit_code == 2 and "nothing could be read" in " ".join(failed.output.split()), failed.output
        assert keys() == ["in/bad.tsv", "kept/file.txt"], (out, keys())


def test_a_failed_rerun_restores_the_earlier_output_given_as_a_file_uri_or_failing_in_its_claim(done, monkeypatch):
    """`-o file:///...` failed to put it back (a path taken for the URI); a user's error
    raised by the claim itself, after it set the output aside, did not put it back."""
    from sessions import storage

    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    before = snapshot(done / "events")
    result = sessionflow(
        "ingest", done / "bad.tsv", "-f", "aol", "-o", f"file://{done / 'events'}", "--engine", "local"
    )
    assert result.exit_code == 2 and "nothing could be read" in result.output, result.output
    assert snapshot(done / "events") == before

    def unwritable(location, what):
        raise ValueError(f"{what} {location}: cannot be written")

    monkeypatch.setattr(storage, "check_writable_dir", unwritable)
    result = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert result.exit_code == 2 and "cannot be written" in result.output, result.output
    assert snapshot(done / "events") == before and not list((done / "events").glob(".*"))


def test_a_users_hidden_directory_named_like_a_kept_output_is_theirs(done):
    """A dated backup `.previous-20261205/` was deleted by a run that ended well, and
    emptied into the output by one that failed."""
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    for name in (".previous-20261205", ".previous-0123456789ab"):
        (done / "events" / name).mkdir()
        (done / "events" / name / "report.json").write_text("{}")
    before = snapshot(done / "events")
    failed = sessionflow("ingest", done / "bad.tsv", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert failed.exit_code == 2 and snapshot(done / "events") == before
    ended = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert ended.exit_code == 0 and sorted(p.name for p in (done / "events").glob(".*")) == [
        ".previous-0123456789ab", ".previous-20261205"]  # fmt: skip


def test_an_output_that_is_a_link_to_a_directory_is_written_there(done):
    """Every output given as a symbolic link to a directory was refused as a link to one
    that does not exist."""
    (done / "real").mkdir()
    (done / "link").symlink_to(done / "real")
    result = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "link", "--engine", "local")
    assert result.exit_code == 0, result.output
    assert (done / "real" / "report.json").is_file()


def test_a_figure_goes_to_a_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gold = "\n".join(f"{i};7;query {i};;01/03/2006 10:0{i};{1141207200 + 60 * i};s{i // 2}" for i in range(6))
    (tmp_path / "gayo.csv").write_text(gold + "\n")
    memory_root = "memory://figures"
    result = sessionflow("evaluate", "segmentation", "--gt", "gayo.csv", "-f", "gayo-avello",
                         "--figure", f"{memory_root}/f1.png")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert storage.read_bytes(f"{memory_root}/f1.png")[:4] == b"\x89PNG"
    assert not Path("memory:").exists()


@pytest.mark.parametrize("job", [["ingest", "logs", "-f", "aol", "--engine", "local"], ["annotate", "sessions"],
                                 ["segment", "logs", "-f", "aol", "--engine", "local"],
                                 ["mine", "sessions"]])  # fmt: skip
def test_an_output_that_is_a_device_is_refused_in_one_line(done, monkeypatch, job):
    """`-o /dev/null` (to see a job run, writing nothing) ended in the OS's words about
    listing a directory."""
    monkeypatch.chdir(done)
    result = sessionflow(*job, "-o", "/dev/null")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: --output /dev/null: a file is there; the output is a directory"


FORMATS = ", ".join("." + f for f in sorted(writable_formats()))
TEX = matplotlib.rcParams["pgf.texsystem"]


def test_every_format_a_figure_is_taken_in_is_written_with_its_text(tmp_path):
    """Each suffix `--figure` takes, a figure with a title and labels is written in it:
    `.pgf` was taken where no TeX is installed, and the figure failed after the work."""
    for suffix in writable_formats():
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set(title="a title", xlabel="x")
        save_figure(fig, tmp_path / f"f.{suffix}", dpi=30)
        assert (tmp_path / f"f.{suffix}").stat().st_size > 0
    assert ("pgf" in writable_formats()) == (shutil.which(TEX) is not None)


@pytest.mark.parametrize(
    ("figure", "says"),
    [("afile/f1.png", "--figure afile/f1.png: its directory afile: a file is there; a directory is needed"),
     ("adir.png", "--figure adir.png: a directory is there; a file is needed"),
     ("pipe.png", "--figure pipe.png: a device, pipe or socket is there, not a regular file; a file is needed"),
     ("/proc/f1.png", "--figure /proc/f1.png: its directory /proc: cannot be written (No such file or directory)"),
     ("/dev/null", f"--figure /dev/null: it has no suffix to name its format; end it with {FORMATS}"),
     ("f1", f"--figure f1: it has no suffix to name its format; end it with {FORMATS}"),
     ("f1.txt", f"--figure f1.txt: its suffix .txt is not an image format; end it with {FORMATS}"),
     ("adir.png/", "--figure adir.png/: a directory's name (it ends with /); a file is needed"),
     ("new.png/", "--figure new.png/: a directory's name (it ends with /); a file is needed"),
     *[("f1.pgf", f"--figure f1.pgf: its suffix .pgf needs {TEX} (TeX), which is not installed; end it with {FORMATS}")
       for _ in range(not shutil.which(TEX))]],
)  # fmt: skip
def test_a_figure_that_cannot_be_written_is_refused_before_the_work(tmp_path, monkeypatch, figure, says):
    """The figure is drawn last: a place it cannot go ended the command in the OS's
    words ([Errno 17] File exists: 'afile') after every method had run; a name without
    an image suffix was written under another name (`/dev/null` made `/dev/null.png`,
    `f1` made `f1.png`), or refused after the work in matplotlib's words; a probe's
    name stood in the message of a directory that cannot be written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    gold = "\n".join(f"{i};7;query {i};;01/03/2006 10:0{i};{1141207200 + 60 * i};s{i // 2}" for i in range(6))
    (tmp_path / "gayo.csv").write_text(gold + "\n")
    before = sorted(tmp_path.iterdir())
    result = sessionflow("evaluate", "segmentation", "--gt", "gayo.csv", "-f", "gayo-avello", "--figure", figure)
    assert result.exit_code == 2 and result.output.strip() == f"error: {says}", result.output
    assert sorted(tmp_path.iterdir()) == before and not Path("/dev/null.png").exists()


def test_a_figure_never_goes_where_the_command_reads(tmp_path, monkeypatch):
    """`--figure` over its own `--gt` (a file named for an image, or a link to it)
    overwrote the ground truth with a PNG; one inside the `--pred` output went into its
    table's directory, which `segment` then refused as holding other files."""
    monkeypatch.chdir(tmp_path)
    gold = "\n".join(f"{i};7;query {i};;01/03/2006 10:0{i};{1141207200 + 60 * i};s{i // 2}" for i in range(6)) + "\n"
    (tmp_path / "gayo.png").write_text(gold)
    (tmp_path / "gayo.csv").write_text(gold)
    (tmp_path / "link.png").symlink_to(tmp_path / "gayo.csv")
    assert sessionflow("segment", "gayo.csv", "-f", "gayo-avello", "--output", "seg").exit_code == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for gt, figure, extra, source in [
        ("gayo.png", "gayo.png", [], "gayo.png"),
        ("gayo.csv", "link.png", [], "gayo.csv"),
        ("gayo.csv", "seg/sessions.parquet/f.png", ["--pred", "seg"], "seg"),
    ]:
        result = sessionflow("evaluate", "segmentation", "--gt", gt, "-f", "gayo-avello", "--figure", figure, *extra)
        assert result.exit_code == 2, result.output
        says = f"--figure {tmp_path / figure} overlaps the input {source}"
        assert result.output.strip() == f"error: {says}; a job never writes where it reads"
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    result = sessionflow("evaluate", "segmentation", "--gt", "gayo.csv", "-f", "gayo-avello", "--pred", "seg",
                         "--figure", "f.png")  # fmt: skip
    assert result.exit_code == 0 and (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(("name", "magic"), [("f1.svg", b"<?xml"), ("f1.PDF", b"%PDF"), ("f1.png", b"\x89PNG")])
def test_a_figure_is_written_in_the_format_its_suffix_names_under_that_name(tmp_path, monkeypatch, name, magic):
    monkeypatch.chdir(tmp_path)
    gold = "\n".join(f"{i};7;query {i};;01/03/2006 10:0{i};{1141207200 + 60 * i};s{i // 2}" for i in range(6))
    (tmp_path / "gayo.csv").write_text(gold + "\n")
    result = sessionflow("evaluate", "segmentation", "--gt", "gayo.csv", "-f", "gayo-avello", "--figure", name)
    assert result.exit_code == 0 and result.output.strip().endswith(f"figure: {name}"), result.output  # said where
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["gayo.csv", name])


@pytest.mark.parametrize(
    ("job", "output", "says"),
    [(["segment", "logs", "-f", "aol", "--engine", "local"], "/proc/out",
      "--output /proc/out: cannot be written (No such file or directory)"),
     (["synth", "--users", "2"], "/proc/x.tsv",
      "--output /proc/x.tsv: its directory /proc: cannot be written (No such file or directory)"),
     (["synth", "--users", "2"], "pipe.tsv",
      "--output pipe.tsv: a device, pipe or socket is there, not a regular file; a file is needed"),
     (["synth", "--users", "2"], "adir.tsv", "--output adir.tsv: a directory is there; a file is needed"),
     (["segment", "logs", "-f", "aol", "--engine", "local"], "  ",
      "--output '  ': only spaces; name a file or directory"),
     (["synth", "--users", "2"], " ", "--output ' ': only spaces; name a file or directory")],
)  # fmt: skip
def test_an_output_that_cannot_be_written_is_named_by_its_flag(tmp_path, monkeypatch, job, output, says):
    """`segment -o /proc/out` and `synth -o /proc/x.tsv` said `[Errno 2] Cannot create
    directory` (naming no flag; synth's named its temporary file); `synth -o` onto a
    pipe or device replaced it with a regular file (written beside it, renamed onto it);
    `-o " "` made a directory named by a space."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    os.mkfifo("pipe.tsv")
    Path("adir.tsv").mkdir()
    result = sessionflow(*job, "-o", output)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {says}"
    assert stat.S_ISFIFO(os.stat("pipe.tsv").st_mode) and not list(Path("adir.tsv").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.tsv", "logs", "pipe.tsv"]


MODEL_READERS = {
    "segment (local)": ["segment", "logs", "-f", "aol", "-o", "out", "--method", "learned", "--engine", "local"],
    "segment (ray)": ["segment", "logs", "-f", "aol", "-o", "out", "--engine", "ray"],
    "score": ["score", "logs", "-f", "aol", "-o", "out", "--session-model"],
    "annotate": ["annotate", "sessions", "-o", "out"],
    "evaluate pairs": ["evaluate", "pairs", "--pairs", "pairs"],
    "evaluate hierarchy": ["evaluate", "hierarchy"],
    "evaluate crossval": ["evaluate", "crossval"],
}
MODEL_MISTAKES = {  # the mistake: (the model URI, what the one line says)
    "no store": ("models:/session-model@champion", "no MLflow store at"),
    "unknown name": ("models:/sesion-model@champion", "registered models: session-model"),
    # the hierarchy user's find: `score --hierarchy-model` without a session model did not say how to make one
    "one of ours not trained yet": (
        "models:/hierarchy-model@champion",
        "registered models: session-model; `sessionflow train hierarchy` trains and registers hierarchy-model",
    ),
    "unknown version": ("models:/session-model/7", "session-model has versions 1 and aliases @champion -> 1"),
    "unknown alias": ("models:/session-model@best", "session-model has versions 1 and aliases @champion -> 1"),
    "no version or alias": (
        "models:/session-model",
        "models:/session-model: no version or alias; give "
        "models:/session-model/VERSION or models:/session-model@ALIAS (session-model has versions",
    ),
    "a directory that is no model": ("../notamodel", "../notamodel: no model there (no MLmodel file)"),
    "a run that logged no model": ("runs:/{run}/model", "runs:/{run}/model: run {run} logs no model"),
}


def test_every_command_that_reads_a_model_names_a_missing_one_in_one_line(done, monkeypatch, capsys):
    """Each command with each mistake: one line naming the store and what it does hold;
    exit 2; no output, and no store created. (One test: the set-up is shared.)"""
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(done)
    uri = f"sqlite:///{done / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model("session-model")
    run = client.create_run(client.create_experiment("x")).info.run_id
    client.create_model_version("session-model", f"runs:/{run}/model", run_id=run)
    client.set_registered_model_alias("session-model", "champion", "1")
    elsewhere = done / "elsewhere" / "mlflow.db"
    (done.parent / "notamodel").mkdir(exist_ok=True)
    table = []
    for mistake, (model, message) in MODEL_MISTAKES.items():
        model, message = model.format(run=run), message.format(run=run)
        store = elsewhere if mistake == "no store" else done / "mlflow.db"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        mlflow.set_tracking_uri(f"sqlite:///{store}")
        for command, job in MODEL_READERS.items():
            result = sessionflow(*job, *([] if job[-1] == "--session-model" else ["--model"]), model)
            lines = result.output.strip().splitlines()
            where = f"{command}, {mistake}: {result.output}"
            assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], where
            assert not (done / "out").exists() and not elsewhere.exists(), where
            table.append(f"| `{command}` | {mistake} | {lines[0]} |")
    # a model of another kind: a segmenter where a session or hierarchy model is wanted
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from sessions.learned import LearnedConfig, LearnedMethod
    from workflows.tracking.segmenter_model import log_segmenter_model

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("Default")  # not the experiment an earlier test left active, of another store
    minutes = [0, 1, 2, 300, 301, 302]  # two sessions a user, five hours apart
    gold = pl.DataFrame({
        "row_id": range(12), "user_id": ["a"] * 6 + ["b"] * 6,
        "ts": [datetime(2006, 3, 1, tzinfo=UTC) + timedelta(minutes=m) for m in minutes * 2],
        "query": ["cats", "cute cats", "cat toys", "tax", "tax forms", "irs"] * 2,
        "gold_session": ["a0", "a0", "a0", "a1", "a1", "a1", "b0", "b0", "b0", "b1", "b1", "b1"],
    })  # fmt: skip
    with mlflow.start_run():
        segmenter = log_segmenter_model(LearnedMethod(LearnedConfig(model="logistic")).classifier(gold), "sessions")
    for command, job in MODEL_READERS.items():
        if command == "segment (local)":
            job = [*job[:-4], "--engine", "local"]  # the cascade: a segmenter decides `learned` only
        result = sessionflow(*job, *([] if job[-1] == "--session-model" else ["--model"]), segmenter)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and "is a segmenter model" in lines[0], result.output
        assert not (done / "out").exists()
        table.append(f"| `{command}` | a model of another kind | {lines[0]} |")
    with capsys.disabled():  # the table of the closing note, with pytest -s
        print("\n".join(["", "| command | mistake | message |", "|---|---|---|", *table]))


def test_a_directory_of_other_files_is_refused_unless_overwrite_which_keeps_them(done):
    (done / "mine").mkdir()
    (done / "mine" / "notes.txt").write_text("mine")
    refused = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "mine", "--engine", "local")
    assert refused.exit_code == 2 and "holds other files (notes.txt)" in refused.output, refused.output
    assert len(refused.output.strip().splitlines()) == 1 and sorted(p.name for p in (done / "mine").iterdir()) == [
        "notes.txt"
    ]
    beside = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "mine", "--engine", "local", "--overwrite")
    assert beside.exit_code == 0 and (done / "mine" / "notes.txt").read_text() == "mine"
    again = sessionflow("segment", done / "logs", "-f", "aol", "-o", done / "mine", "--engine", "local")
    assert again.exit_code == 0, again.output  # its own earlier output: no --overwrite needed


USERS_ENTRIES = {  # what a user may keep under a table's name, made at `path` with their data in `data`
    "a file": lambda path, data: path.write_text("my notes"),
    "a directory of data": lambda path, data: shutil.copytree(data, path),
    "a link to a directory of data": lambda path, data: path.symlink_to(data, target_is_directory=True),
    "a link to a file": lambda path, data: path.symlink_to(data / "part-0.parquet"),
    "a dangling link": lambda path, data: path.symlink_to(data / "nothing"),
}
# a job, and the name of a table it writes (its product, its rejected rows) or deletes as a killed job's
JOBS_AND_NAMES = {
    "ingest": (["ingest", "logs", "-f", "aol", "--engine", "local"], "events.parquet"),
    "segment": (["segment", "logs", "-f", "aol", "--engine", "local"], "sessions.parquet"),
    "segment rejected": (["segment", "logs", "-f", "aol", "--engine", "local"], "rejected.parquet"),
    "segment, another job's table": (["segment", "logs", "-f", "aol", "--engine", "local"], "pairs.parquet"),
    "mine": (["mine", "sessions"], "pairs.parquet"),
    "mine, another job's table": (["mine", "sessions"], "events.parquet"),
}


@pytest.mark.parametrize("entry", USERS_ENTRIES)
@pytest.mark.parametrize("job", JOBS_AND_NAMES)
def test_a_users_entry_named_like_a_table_is_refused_and_kept_even_under_overwrite(done, monkeypatch, job, entry):
    """A user's `events.parquet` (a file, a directory, a link to their data) in an output
    without a report: `ingest` deleted it, and through a link wrote its parts into the
    user's directory after deleting its files; `segment --overwrite` deleted another
    job's name as a killed job's table."""
    monkeypatch.chdir(done)
    args, name = JOBS_AND_NAMES[job]
    data = done / "mydata"
    data.mkdir()
    (data / "part-0.parquet").write_bytes(b"PAR1 my parquet")
    (done / "out").mkdir()
    USERS_ENTRIES[entry](done / "out" / name, data)
    before = snapshot(done)
    for flags in ([], ["--overwrite"]):
        result = sessionflow(*args, "-o", "out", *flags)
        assert result.exit_code == 2, result.output
        assert result.output.strip().startswith(f"error: --output {done / 'out'}: its {name} is "), result.output
        assert "not a table sessionflow wrote" in result.output and len(result.output.strip().splitlines()) == 1
    assert snapshot(done) == before
    assert sorted(os.listdir(done / "out")) == [name]


def test_what_a_file_browser_leaves_in_a_table_does_not_stop_a_rerun(done):
    """Finder's .DS_Store in events.parquet/ made the table a user's directory, and a run
    again into its own output was refused, with or without --overwrite."""
    (done / "events" / "events.parquet" / ".DS_Store").write_bytes(b"Bud1")
    rerun = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "events", "--engine", "local")
    assert rerun.exit_code == 0, rerun.output


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("dangling", "a symbolic link to {done}/nowhere, which does not exist"),  # said "File exists"
        (
            "events/events.parquet",
            "a table of a job's output ({done}/events/events.parquet/_manifest.json is "
            "there); give a directory of its own",
        ),
        (
            "events/events.parquet/sub",
            "inside a table of a job's output ({done}/events/events.parquet/_manifest.json "
            "is there); give a directory of its own",
        ),
    ],
)
def test_an_output_that_is_a_dangling_link_or_a_jobs_table_is_refused(done, output, says):
    """A job written into another job's table (--overwrite) made that table no job's,
    and its own job's rerun was refused."""
    (done / "dangling").symlink_to(done / "nowhere")
    before = snapshot(done / "events")
    result = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / output, "--overwrite", "--engine", "local")
    assert result.exit_code == 2 and result.output.strip() == f"error: --output {done / output}: " + says.format(
        done=done
    ), result.output
    assert snapshot(done / "events") == before and not (done / "nowhere").exists()


def test_a_users_report_json_is_no_jobs_report_and_is_kept_under_overwrite(done):
    """Any JSON with an "outputs" object (as many tools write) was another job's report:
    --overwrite deleted it."""
    (done / "mine").mkdir()
    (done / "mine" / "report.json").write_text('{"title": "my experiment", "outputs": {"plot": "plot.png"}}')
    before = snapshot(done / "mine")
    for flags in ([], ["--overwrite"]):
        result = sessionflow("ingest", done / "logs", "-f", "aol", "-o", done / "mine", "--engine", "local", *flags)
        assert result.exit_code == 2 and result.output.strip() == (
            f"error: --output {done / 'mine'}: its report.json is not a sessionflow job's report; choose another "
            "directory"
        ), result.output
    assert snapshot(done / "mine") == before


def test_a_table_an_older_sessionflow_wrote_as_one_file_is_replaced_by_a_rerun(done):
    """`mine` wrote pairs.parquet as one Parquet file until 2026-12-02; its report lists
    it: a rerun into that output replaces it (it was refused as a user's file)."""
    table = done / "pairs" / "pairs.parquet"
    pairs = pl.read_parquet(sorted(table.glob("part-*.parquet")))
    shutil.rmtree(table)
    pairs.write_parquet(table)
    rerun = sessionflow("mine", done / "sessions", "-o", done / "pairs")
    assert rerun.exit_code == 0, rerun.output
    assert (table / "_manifest.json").exists() and read_table(table).height == pairs.height


def test_rows_that_are_not_utf8_are_named_with_how_to_convert_them(tmp_path):
    """Excel's plain "CSV" on Windows is Windows-1252: its accented rows were rejected as
    bad_encoding with a green exit and no word of why."""
    (tmp_path / "w.csv").write_bytes(b"uid,ts,q\r\nu1,2023-03-01 10:00:00,caf\xe9\r\nu1,2023-03-01 10:01:00,plain\r\n")
    result = sessionflow("ingest", tmp_path / "w.csv", "-f", "table", "--map", "user=uid,time=ts,text=q",
                         "-o", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bad_encoding: records not UTF-8 text" in result.output and "iconv -f WINDOWS-1252 -t UTF-8" in result.output


def test_a_report_copied_up_from_a_subdirectory_deletes_nothing_there(done):
    """An output copied up one level: its report named the subdirectory's tables, and a
    rerun deleted them, a user's file among them, through the report's locations."""
    up, sub = done / "up", done / "up" / "sub"
    assert sessionflow("ingest", done / "logs", "-f", "aol", "-o", sub, "--engine", "local").exit_code == 0
    for name in ("events.parquet", "rejected.parquet"):
        shutil.copytree(sub / name, up / name)
    shutil.copy(sub / "report.json", up / "report.json")
    shutil.rmtree(sub / "events.parquet")
    (sub / "events.parquet").write_text("the user's")
    before = snapshot(sub)
    rerun = sessionflow("ingest", done / "logs", "-f", "aol", "-o", up, "--engine", "local")
    assert rerun.exit_code == 0, rerun.output
    assert snapshot(sub) == before and (sub / "report.json").exists()


def test_every_report_says_what_produced_it(done):
    """report.json of each job: its command line, sessionflow's version, the git commit, the key libraries."""
    import importlib.metadata

    from sessions.provenance import command_line

    for output in ("events", "sessions", "pairs"):
        report = json.loads((done / output / "report.json").read_text())
        assert report["command"] == command_line()  # here, the test runner's; from the CLI, `sessionflow ...`
        versions = report["versions"]
        assert versions["version.sessionflow"] == importlib.metadata.version("sessionflow")
        assert versions["version.polars"] == importlib.metadata.version("polars")
        assert "git.commit" not in versions or len(versions["git.commit"].removesuffix("-dirty")) == 40


def test_a_failed_command_removes_the_parents_it_created_and_nothing_of_the_users(done):
    (done / "bad.tsv").write_text("x\ty\tnot a time\t\t\n")
    result = sessionflow("ingest", done / "bad.tsv", "-f", "aol", "-o", done / "new" / "a" / "b", "--engine", "local")
    assert result.exit_code == 2 and not (done / "new").exists()
    # a user's own file named like a job's rejected rows is no job output: the directory is refused
    mine = done / "mine"
    mine.mkdir()
    (mine / "rejected.parquet").write_text("the user's")
    result = sessionflow("ingest", done / "logs", "-f", "aol", "-o", mine, "--engine", "local")
    assert result.exit_code == 2 and "its rejected.parquet is a file, not a table sessionflow wrote" in result.output
    assert (mine / "rejected.parquet").read_text() == "the user's"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["segment", "logs", "-f", "table"], "--format table needs a column mapping"),
        (["train", "session", "--pairs", "pairs", "--model", "no-such/encoder"], "no-such/encoder: no such encoder"),
        (["train", "hierarchy", "--model", "no-such/encoder"], "no-such/encoder: no such encoder"),
        (["train", "hierarchy", "--model", "tiny", "--head", "hit", "--dim", "5"],  # it trained 32-d, without a word
         "--head hit embeds in the encoder's own width: no --dim (given 5)"),
        # the model it registered failed on its first longer text, in score and evaluate pairs (a breaker's find)
        (["train", "session", "--pairs", "pairs", "--model", "tiny", "--max-length", "2000"],
         "--max-length 2000: above the 128 positions of the encoder tiny; give at most 128"),
        (["train", "hierarchy", "--model", "minilm-local", "--max-length", "513"],
         "--max-length 513: above the 512 positions of the encoder minilm-local"),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused_before_anything_starts(done, monkeypatch, args, says):
    """One line, exit 2, before Ray or MLflow start: no output, no store."""
    monkeypatch.chdir(done)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = sessionflow(*args, "-o", "out") if args[0] == "segment" else sessionflow(*args)
    assert result.exit_code == 2 and says in result.output and len(result.output.strip().splitlines()) == 1
    assert not (done / "out").exists() and not (done / "mlflow.db").exists()


def test_a_file_store_is_named_in_one_line(done, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(done / "mlruns"))
    result = sessionflow("compare", "--experiment", "session-model")
    assert result.exit_code == 2 and "is a file store, which MLflow 3 no longer serves" in result.output


def test_the_job_tables_are_the_tables_the_jobs_write():
    from sessions.ingest import EVENTS_FILE
    from sessions.io import JOB_TABLES, JOB_WORK
    from sessions.pipeline import SESSIONS_FILE
    from workflows.distributed.scoring import SCORES_FILE, WORK_DIR
    from workflows.jobs.annotate import ANNOTATIONS_FILE
    from workflows.jobs.mine import PAIRS_FILE

    assert set(JOB_TABLES) == {EVENTS_FILE, SESSIONS_FILE, PAIRS_FILE, SCORES_FILE, ANNOTATIONS_FILE}
    assert JOB_WORK == {WORK_DIR: "score"}


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_overwrite_replaces_an_output_that_was_moved_or_copied(done, how):
    """A report names its tables where its job wrote them: moved or copied, the output's
    report named the old directory, --overwrite deleted the report alone and then refused
    the tables it left as a killed job's (exit 2, a finished output made unfinished)."""
    moved = done / "moved"
    (shutil.move if how == "moved" else shutil.copytree)(done / "events", moved)
    original = snapshot(done / "events") if how == "copied" else {}
    result = sessionflow("segment", done / "logs", "-f", "aol", "-o", moved, "--engine", "local", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (moved / "events.parquet").exists() and (moved / "sessions.parquet").is_dir()
    assert json.loads((moved / "report.json").read_text())["rows_in"] == 8
    assert (snapshot(done / "events") if how == "copied" else {}) == original  # nothing outside the output


@pytest.mark.parametrize("job", [["synth", "--users", "2", "-o", "foo://x/f.tsv"],
                                 ["segment", "logs", "-f", "aol", "-o", "foo://x/out"],
                                 ["evaluate", "segmentation", "--gt", "logs/part-1.tsv", "-f", "aol",
                                  "--figure", "foo://x/f.png"]])  # fmt: skip
def test_an_output_on_a_filesystem_nobody_handles_is_named_by_its_flag(tmp_path, monkeypatch, job):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    result = sessionflow(*job)
    flag = "--figure" if "--figure" in job else "--output"
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith(f"error: {flag} foo://x/: no installed filesystem handles foo://"), result.output


def test_a_figures_new_directory_is_not_left_by_a_command_that_fails(tmp_path, monkeypatch):
    """`--figure new/sub/f1.png` makes `new/sub` before the work (to know that the figure
    can go there): a command that then failed on its input left `new/` behind."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gayo.csv").write_text("not;a;gayo-avello;log\n")
    result = sessionflow("evaluate", "segmentation", "--gt", "gayo.csv", "-f", "gayo-avello",
                         "--figure", "new/sub/f1.png")  # fmt: skip
    assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gayo.csv"]


def test_rejected_rows_a_failed_run_left_do_not_outlive_the_next_run(done):
    """The breaking helper's find: a `score` that crashed after its claim left its
    `rejected.parquet` and no report; `mine` into that directory took it (every job
    writes rejected rows) and kept the stale table beside its own, which its report
    does not list."""
    import shutil

    stale = done / "crashed"
    stale.mkdir()
    shutil.copytree(done / "events" / "rejected.parquet", stale / "rejected.parquet")
    result = sessionflow("mine", done / "sessions", "-o", stale, "--engine", "local")
    assert result.exit_code == 0, result.output
    listed = json.loads((stale / "report.json").read_text())["outputs"]
    assert sorted(p.name for p in stale.iterdir()) == sorted(Path(location).name for location in listed)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_stopped_or_crashed_job_leaves_no_empty_directory_it_made(tmp_path, monkeypatch, stop):
    """A `segment` stopped before its first table (Ctrl-C during Ray's start) left its
    new, empty output directory; what a job wrote stays, for its resume."""
    import sessions.pipeline

    monkeypatch.chdir(tmp_path)
    (tmp_path / "log.tsv").write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tq\t2006-03-01 10:00:00\t\t\n")

    def stopped(inputs, fmt, output, *args, **kwargs):
        if "kept" in output:
            (Path(output) / "part.tmp").write_text("written")
        raise stop()

    monkeypatch.setattr(sessions.pipeline, "segment_logs", stopped)
    for output in ("new/out", "kept/out"):
        result = runner.invoke(app, ["segment", "log.tsv", "-f", "aol", "--engine", "local", "-o", output])
        assert result.exit_code != 0 and isinstance(result.exception, stop | SystemExit), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "log.tsv"]
    assert (tmp_path / "kept" / "out" / "part.tmp").read_text() == "written"


@pytest.mark.parametrize(
    "job",
    [["ingest", "logs", "-f", "aol"], ["segment", "logs", "-f", "aol"], ["mine", "sessions"]],
)
def test_a_full_disk_is_one_line_naming_the_table_not_a_traceback(done, monkeypatch, job):
    """The breaking helper's find (a 200 KiB tmpfs as the output): polars reports the
    filesystem's refusal inside a ComputeError, which ended segment, mine, ingest and
    annotate in a traceback; `score`, writing through pyarrow, said it in one line."""
    import errno
    import io
    from contextlib import contextmanager

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = storage.open_output

    @contextmanager
    def full_for_tables(location):
        if str(location).endswith(".parquet"):
            yield Full()
            return
        with real(location) as stream:
            yield stream

    monkeypatch.setattr(storage, "open_output", full_for_tables)
    result = sessionflow(*(done / a if a in ("logs", "sessions") else a for a in job), "-o", done / "full",
                         "--engine", "local")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith(f"error: {done / 'full'}/") and line.endswith(
        "No space left on device")  # fmt: skip


@pytest.mark.parametrize(
    "job",
    [["segment", "-f", "aol", "--engine", "local"], ["segment", "-f", "aol", "--engine", "ray"],
     ["ingest", "-f", "aol", "--engine", "local"], ["annotate"], ["score", "-f", "aol"]],
)  # fmt: skip
@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_an_input_named_by_nothing_is_refused_not_read_as_the_working_directory(tmp_path, monkeypatch, job, blank):
    """The breaking helper's find: `segment '' -f aol` (a shell variable that was not
    set: `segment "$LOG"`) read the working directory whole, and exited 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aol.tsv").write_text(LOG)
    for inputs in ([blank], ["aol.tsv", blank]):
        result = sessionflow(job[0], *inputs, *job[1:], "-o", "out")
        assert result.exit_code == 2, result.output
        said = "empty" if not blank else "only spaces"
        assert result.output.strip() == f"error: INPUTS {blank!r}: {said}; name a file or directory"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["aol.tsv"]


@pytest.mark.parametrize(("argv0", "named"), [("/venv/bin/sessionflow", "sessionflow ingest"),
                                               ("/src/workflows/__main__.py", "sessionflow ingest")])  # fmt: skip
def test_a_lock_names_the_command_as_a_user_typed_it(tmp_path, monkeypatch, argv0, named):
    """The second change breaker's find: `python -m workflows ingest` was named `__main__.py ingest`."""
    from sessions.io import LOCK, lock_output, unlock_output

    monkeypatch.setattr("sys.argv", [argv0, "ingest", "logs"])
    out = str(tmp_path / "out")
    (tmp_path / "out").mkdir()
    assert lock_output(out)
    try:
        assert json.loads((tmp_path / "out" / LOCK).read_text())["command"] == named
    finally:
        unlock_output(out)
