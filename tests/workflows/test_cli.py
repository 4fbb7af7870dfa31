"""The sessionflow command line, end to end on files it writes itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from sessions.io import read_table
from workflows.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_a_group_without_a_command_shows_its_help():
    for words in ([], ["train"], ["evaluate"]):
        result = runner.invoke(app, words, prog_name="sessionflow")
        assert result.output.startswith(f"Usage: {' '.join(['sessionflow', *words])} [OPTIONS] COMMAND"), words


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "sessionflow"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "ingest" in out and "synth" in out


@pytest.mark.parametrize(
    ("command", "words"),
    [("ingest", ["--format", "--map", "rejected.parquet"]), ("synth", ["--users", "--rows", "--style"])],
)
def test_every_command_explains_itself(command, words):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    for word in words:
        assert word in result.output


def test_synth_then_ingest_with_wordnet(tmp_path):
    """Also: a progress bar is for a terminal; where stderr is not one, a job that went
    well writes nothing there (the vanished bar left a blank line)."""
    log = tmp_path / "synth.tsv.gz"
    result = invoke("synth", "--users", "30", "--rows", "900", "--output", str(log), "--seed", "5")
    assert result.exit_code == 0 and result.stderr == "", result.output
    out = tmp_path / "events"
    result = invoke("ingest", str(log), "--format", "aol", "--output", str(out), "--engine", "local")
    assert result.exit_code == 0 and result.stderr == "", result.output
    report = json.loads((out / "report.json").read_text())
    assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (900, 900, 0)
    events = read_table(out / "events.parquet")
    topical = events.filter(pl.col("gold_depth").is_not_null())
    assert topical["gold_depth"].min() >= 3  # WordNet concepts below the abstract top levels
    assert events["gold_mission"].null_count() == 0
    assert "note:" not in invoke("synth", "--users", "30", "--rows", "900", "--output", str(log), "--seed", "5").output
    # the mine breaker's find: a user whose bursts, 20 minutes apart at least, outlast --days ran past it unsaid
    heavy = invoke("synth", "--users", "1", "--rows", "4000", "--days", "10", "--output", str(log), "--seed", "5")
    assert heavy.exit_code == 0, heavy.output
    said = " ".join(heavy.output.split())
    assert re.search(r"note: 1 user\(s\) run past the 10 days of --days \(the log ends \d+ days after it", said), said
    times = pl.read_csv(log, separator="\t", quote_char=None, infer_schema=False)["QueryTime"].str.to_datetime()
    assert (times.max() - times.min()).days >= 10  # what the note says


@pytest.mark.parametrize(("name", "style"), [("log.tsv", "aol"), ("log.txt.gz", "aol"), ("metadata.parquet", "prompt")])
def test_synth_replaces_its_own_log_and_keeps_any_other_file_unless_overwrite(tmp_path, name, style):
    """`synth -o` onto a file replaced it without a word: a real log of the same name
    (`user-ct-test-collection-01.txt`) was lost. A synthetic log is replaced, as a job
    run again replaces its own output."""
    log, words = tmp_path / name, ("synth", "--users", "3", "--style", style, "--output", str(tmp_path / name))
    log.write_bytes(b"AnonID\tQuery\tQueryTime\n1\tmy own log\t2006-03-01 10:00:00\n")
    refused = runner.invoke(app, words)
    assert refused.exit_code == 2 and refused.output.strip() == (
        f"error: --output {log}: a file that is not a synthetic log is there; --overwrite replaces it"
    )
    assert log.read_bytes().endswith(b"my own log\t2006-03-01 10:00:00\n")
    assert invoke(*words, "--overwrite").exit_code == 0
    first = log.read_bytes()
    assert invoke(*words, "--seed", "7").exit_code == 0 and log.read_bytes() != first  # its own: replaced


@pytest.mark.parametrize(
    ("words", "says"),
    [(["ingest", "x", "-o", "o", "--engine", "bogus"],
      "error: Invalid value for '--engine': 'bogus' is not one of 'auto', 'ray', 'local'; see 'sessionflow ingest"),
     # a number is read by the config, as a --config file's (YAML 1.2), no longer by the parser: one line all the same
     (["segment", "x", "-o", "o", "--gap-minutes", "abc"], "error: --gap-minutes: 'abc' is not of type float"),
     (["train", "session", "--no-such-option"], "error: No such option: --no-such-option"),
     (["segment", "x", "-o"], "error: Option '-o' requires an argument"),
     (["bogus"], "error: No such command 'bogus'; see 'sessionflow --help'"),
     (["train", "sesion"], "error: No such command 'sesion'. Did you mean 'session'? See 'sessionflow train --help'"),
     (["--bogus"], "error: No such option: --bogus; see 'sessionflow --help'")],
)  # fmt: skip
def test_a_mistake_the_command_line_parser_finds_is_one_line(words, says):
    """An unknown option, command or a value of the wrong type was click's usage, a hint
    and the error over four lines, where every other refusal is `error: ...` in one."""
    result = runner.invoke(app, words, prog_name="sessionflow")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(says), result.output


def test_bad_arguments_get_clear_errors(tmp_path):
    log = tmp_path / "x.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n")
    result = runner.invoke(
        app, ["ingest", str(log), "--format", "bing", "--output", str(tmp_path / "o"), "--engine", "local"]
    )
    assert result.exit_code == 2 and "unknown --format 'bing'" in result.output
    result = runner.invoke(
        app,
        [
            "ingest",
            str(log),
            "--format",
            "aol",
            "--map",
            "user=a,time=b,text=c",
            "--output",
            str(tmp_path / "o"),
            "--engine",
            "local",
        ],
    )
    assert result.exit_code == 2 and "--map applies to --format table only" in result.output
    result = runner.invoke(
        app,
        [
            "ingest",
            str(tmp_path / "missing.tsv"),
            "--format",
            "aol",
            "--output",
            str(tmp_path / "o"),
            "--engine",
            "local",
        ],
    )
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["synth", "--users", "10", "--rows", "3", "--output", str(tmp_path / "s.tsv")])
    assert result.exit_code == 2 and "must be at least --users" in result.output
    # an old --print-config file's `lr: 0.0` meant "the model's default"; now it is named
    old = tmp_path / "old.yaml"
    old.write_text("hierarchy:\n  model: lookup\n  lr: 0.0\n")
    result = runner.invoke(app, ["train", "hierarchy", "--config", str(old)])
    assert result.exit_code == 2 and "0 no longer means the model's default" in result.output


@pytest.mark.parametrize(
    "job", [["train", "segmenter", "--gt", "gold.csv", "-f", "gayo-avello"], ["train", "session", "--pairs", "p"],
            ["train", "hierarchy"]],
)  # fmt: skip
@pytest.mark.parametrize(
    ("name", "message"),
    [("", "--experiment '': empty"), ("   ", "--experiment '   ': empty"), ("x" * 600, "600 characters"),
     ("another kind's", "the experiment of another kind of model")],
)  # fmt: skip
def test_an_experiment_name_mlflow_refuses_is_refused_before_any_work(job, name, message, tmp_path):
    """MLflow refused these only when the run started (after a nested CV, or Ray's
    start), with a traceback; now one line, exit 2, and no MLflow store made. Another
    kind of model's experiment (a breaker's find: `compare` then laid a session run
    among the hierarchy runs, its columns blank) is refused too."""
    if name == "another kind's":
        name = "hierarchy-model" if job[1] != "hierarchy" else "session-model"
    done = runner.invoke(app, [*job, "--experiment", name], env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    assert done.exit_code == 2 and message in done.output, done.output
    assert len(done.output.strip().splitlines()) == 1 and not (tmp_path / "m.db").exists()


def test_a_column_mapping_that_names_a_key_twice_is_refused(tmp_path):
    (tmp_path / "log.csv").write_text("uid,q,t\n1,cats,2006-03-01 10:00:00\n")
    spec = "user=uid,user=q,time=t,text=q"
    log, out = str(tmp_path / "log.csv"), str(tmp_path / "o")
    done = runner.invoke(app, ["segment", log, "-f", "table", "--map", spec, "-o", out])
    assert done.exit_code == 2 and "the column mapping gives user twice (user=uid, user=q)" in done.output
    assert not (tmp_path / "o").exists()


def test_negative_examples_are_refused(tmp_path):
    done = runner.invoke(app, ["evaluate", "pairs", "--pairs", str(tmp_path), "--examples", "-5"])
    assert done.exit_code == 2 and "--examples -5: must be 0 or more" in done.output, done.output


def test_json_output_is_strict_json_where_a_figure_is_not_finite(capsys):
    """`evaluate pairs --json` wrote `"threshold": Infinity` (an ROC curve's first
    threshold), which jq and JavaScript refuse: a figure that is not finite is null."""
    from workflows.cli.common import echo_json

    echo_json({"threshold": float("inf"), "metrics": [{"auc": float("nan"), "n": 3}, 0.5], "name": "x"})
    printed = capsys.readouterr().out
    assert json.loads(printed, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}")) == {
        "threshold": None, "metrics": [{"auc": None, "n": 3}, 0.5], "name": "x"
    }  # fmt: skip


def test_a_summary_shows_mappings_and_lists_as_their_items():
    """The new user's find: the demo's tables printed Python's `{'15 min': 5}` and `['val', 'test']`."""
    from rich.console import Console

    from workflows.cli.progress import summary_table

    console = Console(width=120, record=True)
    console.print(summary_table("t", {"chosen": {"15 min": 5, "30 min": 1}, "empty": ["val", "test"], "none": {}}))
    shown = " ".join(console.export_text().split())
    assert "chosen │ 15 min: 5, 30 min: 1" in shown and "empty │ val, test" in shown and "none │ none" in shown


@pytest.mark.parametrize("command", [["synth", "-o", "{tmp}/log.tsv"], ["train", "hierarchy", "--model", "lookup"]],
                         ids=" ".join)  # fmt: skip
def test_without_wordnet_a_command_says_how_to_install_it_in_one_line(tmp_path, monkeypatch, command):
    """The hierarchy user's find: without WordNet, synth, train hierarchy and evaluate
    hierarchy ended in a traceback of 55-67 lines (WordNetNotFound was a RuntimeError)."""
    import nltk

    from hierarchies.wordnet import ensure_wordnet

    def nowhere(*_args, **_kwargs):
        raise LookupError("no nltk data")

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(nltk.data, "find", nowhere)
    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SESSIONFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    ensure_wordnet.cache_clear()
    try:
        done = runner.invoke(app, [part.format(tmp=tmp_path) for part in command])
    finally:
        ensure_wordnet.cache_clear()  # found again, as before, by the tests after this one
    said = done.output.strip()
    assert done.exit_code == 2 and len(said.splitlines()) == 1, done.output
    assert said.startswith("error: WordNet 3.0 not found. Either run `python -m nltk.downloader wordnet`"), said


def test_the_user_s_text_is_printed_as_written_never_read_as_markup(tmp_path):
    """The YAML breaker's find: `--gap-minutes '[/]'` ended in rich's MarkupError
    traceback, and `[bold]` in a path or value vanished from the message (`--output
    o[bold]x` was told as `ox`); a summary's paths were read as markup too."""
    result = invoke("segment", "--print-config", "--gap-minutes", "[/]")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "[/]" in lines[0], lines
    result = invoke("synth", "--users", "5", "--output", str(tmp_path / "o[bold]x"))
    assert result.exit_code == 2 and f"--output {tmp_path / 'o[bold]x'}:" in result.stderr, result.stderr
    log = tmp_path / "[red]d[/]" / "log.tsv"
    result = invoke("synth", "--users", "5", "--rows", "50", "--output", str(log))
    assert result.exit_code == 0 and log.exists(), result.output
    assert "[red]d[/]" in " ".join(result.stdout.split()).replace(" │ ", "").replace("│", ""), result.stdout


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (["score", "LOG", "-f", "aol", "--output", "a", "--output", "b"], "--output given 2 times: give it once"),
        (["segment", "LOG", "-f", "aol", "-o", "a", "--output", "b"], "--output and -o given 2 times: give it once"),
        (
            ["segment", "LOG", "-f", "aol", "-o", "a", "--overwrite", "--no-overwrite"],
            "--overwrite and --no-overwrite given 2 times: give it once",
        ),
        (
            ["segment", "LOG", "-f", "aol", "-o", "a", "--gap-minutes=3", "--gap-minutes", "4"],
            "--gap-minutes given 2 times: give it once",
        ),
        (["evaluate", "crossval", "--gt", "x", "--gt", "y"], "--gt given 2 times: give it once"),
        (["segment", "LOG", "-f", "aol", "-oa", "--output", "b"], "--output and -o given 2 times: give it once"),
    ],
)
def test_an_option_of_one_value_given_twice_is_refused(words, said):
    """click kept the last of an option given twice, the first dropped unsaid (`score
    --output A --output B` wrote to B: the scoring breaker's find), where `--config` given
    twice was refused already: every option that takes one value is refused so, by any of
    its names; repeatable ones (`--method a --method b`) and words after `--` are not."""
    result = runner.invoke(app, words)
    command = " ".join(words[:2] if words[0] == "evaluate" else words[:1])
    assert result.exit_code == 2 and result.output.strip() == f"error: {said}; see 'sessionflow {command} --help'"


def test_a_repeatable_option_given_twice_is_not_refused_as_given_twice():
    import typer.main

    from workflows.cli.options import _given_twice

    segmentation = typer.main.get_command(app).commands["evaluate"].commands["segmentation"]
    assert _given_twice(segmentation.params, ["--gt", "x", "--method", "lexical", "--method", "cascade"]) is None
    assert _given_twice(segmentation.params, ["--gt", "x", "--", "--gt"]) is None
    assert _given_twice(segmentation.params, ["--gt", "x", "--json", "--json"]) is None  # one flag, said twice
