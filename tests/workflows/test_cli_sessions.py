"""segment, evaluate segmentation and mine, through the command line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import hypothesis
import polars as pl
import pytest
from hypothesis import strategies as st
from typer.testing import CliRunner

from sessions.io import read_table
from sessions.learned import NO_PAIRS
from sessions.seeds import MAX_SEED
from workflows.cli import app

runner = CliRunner()
SEED_RANGE = f"must be a whole number from 0 to {MAX_SEED:,}"  # sessions.seeds.check_seed

GAYO = "\n".join(
    [
        "1;7;cute cats;;01/03/2006 10:00;1141207200;s1",
        "2;7;cute cats pictures;;01/03/2006 10:01;1141207260;s1",
        "3;7;cute catd;;01/03/2006 10:02;1141207320;s1",
        "4;7;tax forms;;01/03/2006 10:03;1141207380;s2",
        "5;7;tax forms 2005;;01/03/2006 10:05;1141207500;s2",
        "6;7;tax forms 2005 irs;;01/03/2006 18:05;1141236300;s3",
        "7;8;new york hotels;;02/03/2006 09:00;1141290000;s4",
        "8;8;weather;;02/03/2006 09:01;1141290060;s5",
        "9;8;hotels in new york cheap;;02/03/2006 09:20;1141291200;s6",
    ]
)
WEBIS = (
    "UserID\tQuery\tTimeStamp\tClickRank\tClickDomain\tMissionID\tComment\n" + "-" * 20 + "\n"
    "9\tpeter pan musical\t2006-03-05 16:50:19\t1\thttp://a.com\t1\n"
    "9\ttax forms 2005\t2006-03-05 16:52:05\t\t\t2\n"
    "9\tpeter pan musical tickets\t2006-03-05 16:52:29\t\t\t1\n"
    "9\tpeter pan theatre san diego\t2006-03-09 17:14:45\t1\thttp://b.com\t1\n"
    "9\ttax forms 2005 instructions\t2006-03-09 17:20:00\t\t\t2\n" + "-" * 20 + "\n"
)


def invoke(*args: str):
    if args[0] in ("ingest", "segment", "mine"):
        args = (*args, "--engine", "local")  # the Ray engine has tests of its own
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def gt(tmp_path):
    (tmp_path / "gayo.csv").write_text(GAYO + "\n")
    (tmp_path / "webis.txt").write_text(WEBIS)
    return tmp_path


def test_segment_from_raw_and_from_ingest_output_agree(gt, tmp_path):
    invoke("segment", str(gt / "gayo.csv"), "--format", "gayo-avello", "--output", str(tmp_path / "a"))
    invoke("ingest", str(gt / "gayo.csv"), "--format", "gayo-avello", "--output", str(tmp_path / "ev"))
    invoke("segment", str(tmp_path / "ev"), "--output", str(tmp_path / "b"))
    a, b = (read_table(tmp_path / d / "sessions.parquet").sort("row_id") for d in ("a", "b"))
    assert a.equals(b)
    assert a.columns == ["row_id", "user_id", "ts", "query", "session_id", "session_seq", "mission_id"]
    assert a["session_id"].to_list() == ["7/0", "7/0", "7/0", "7/1", "7/1", "7/2", "8/0", "8/1", "8/2"]
    assert a["mission_id"].to_list() == ["7/m0", "7/m0", "7/m0", "7/m1", "7/m1", "7/m1", "8/m0", "8/m1", "8/m0"]
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert (report["rows_in"], report["rows_ok"], report["sessions"], report["missions"]) == (9, 9, 6, 4)
    assert report["config"]["segment"]["method"] == "cascade"
    # the local engine's profile: every step timed; the steps of the main thread, one after the other, within
    # the job's wall time (chunks of users are segmented by threads side by side, so their steps may add up to more)
    profile = report["profile_seconds"]
    assert set(profile) == {"read", "order", "lexicon", "sessions", "missions", "write"}
    assert all(s >= 0 for s in profile.values())
    assert profile["read"] + profile["order"] + profile["lexicon"] <= report["seconds"]
    assert profile["read"] == report["phase_seconds"]["read"]


@pytest.mark.parametrize("command", [["evaluate", "segmentation"], ["evaluate", "crossval"], ["train", "segmenter"]])
@pytest.mark.parametrize("given", [[], ["--format", "gayo-avello"]])
def test_an_ingest_output_as_gold_is_named_whether_or_not_a_format_is_given(gt, tmp_path, command, given):
    """The new user's find: `evaluate segmentation --gt` an `ingest` output said "missing
    --format", and with --format that the output takes none: each error undid the other."""
    invoke("ingest", str(gt / "gayo.csv"), "--format", "gayo-avello", "--output", str(tmp_path / "ev"))
    refused = runner.invoke(app, [*command, "--gt", str(tmp_path / "ev"), *given])
    assert refused.exit_code == 2 and refused.output.strip() == (
        f"error: --gt {tmp_path / 'ev'}: the output of a sessionflow job; --gt takes the labelled log itself (the "
        "Gayo-Avello or Webis-SMC-12 file, a table mapped with session= or mission=) with its --format"
    ), refused.output


def test_an_ingest_output_given_read_settings_is_refused_naming_them(gt, tmp_path):
    """`segment` of an `ingest` output took --format, --timezone and the rest and applied
    none of them: the events were read already (a --timezone there shifted no time). A
    setting named on the command line at its default value is given all the same (a
    breaking helper's find: `--timezone UTC` went unsaid); a --config file's defaults are
    not, since `--print-config` writes every setting there."""
    invoke("ingest", str(gt / "gayo.csv"), "--format", "gayo-avello", "--output", str(tmp_path / "ev"))
    printed = runner.invoke(app, ["segment", str(tmp_path / "ev"), "-o", str(tmp_path / "p"), "--print-config"])
    (tmp_path / "printed.yaml").write_text(printed.output)
    invoke("segment", str(tmp_path / "ev"), "--config", str(tmp_path / "printed.yaml"), "-o", str(tmp_path / "p"))
    for given, named in (
        (["--format", "gayo-avello"], "--format gayo-avello reads"),
        (["--timezone", "Asia/Tokyo", "--strict"], "--timezone and --strict read"),
        (["--timezone", "UTC"], "--timezone reads"),
        # the new user's find: --format table alone was told to add a --map, then refused with it
        (["--format", "table"], "--format table reads"),
        (["--format", "table", "--map", "user=u,time=t,text=q"], "--format table and --map read"),
    ):
        result = runner.invoke(app, ["segment", str(tmp_path / "ev"), *given, "-o", str(tmp_path / "s")])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert f"an `ingest` output, its events read already with the settings that job was given; {named} raw " \
            "logs: leave them out" in lines[0], lines[0]  # fmt: skip
        assert not (tmp_path / "s").exists()
    # its events.parquet given with --format table: told to give the output itself at once (it was told to add a
    # --map first: the change breaker's find)
    events = tmp_path / "ev" / "events.parquet"
    result = runner.invoke(app, ["segment", str(events), "--format", "table", "-o", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: {events}: the events of an `ingest` output; give the output itself, {tmp_path / 'ev'}"
    ), result.output


def test_an_output_given_with_other_inputs_is_named_not_taken_for_raw_logs(gt, tmp_path):
    """`segment ev ev` and `segment ev log` said "raw logs need --format": an `ingest`
    output named twice, or with a raw log, is one job's output among other inputs
    (with --format, `expand_inputs` says so already)."""
    invoke("ingest", str(gt / "gayo.csv"), "--format", "gayo-avello", "--output", str(tmp_path / "ev"))
    invoke("segment", str(tmp_path / "ev"), "--output", str(tmp_path / "seg"))
    ev, seg, log = str(tmp_path / "ev"), str(tmp_path / "seg"), str(gt / "gayo.csv")
    for args, named in (
        (["segment", ev, ev], ev), (["segment", log, ev], ev), (["segment", seg, ev], seg),
        (["segment", ev, log, "-f", "gayo-avello"], "the output of a sessionflow job among the raw logs"),
    ):  # fmt: skip
        result = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "--engine", "local"])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert named in lines[0] and "raw logs need --format" not in lines[0], lines[0]
        assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["segment", ev, ev, "-o", str(tmp_path / "out")])
    assert result.output.strip() == f"error: {ev}: the output of a sessionflow job, given with other inputs; this " \
        "reads one output alone, or raw logs (with --format)"  # fmt: skip


def test_a_damaged_part_of_an_output_is_one_line_naming_it_for_segment_and_mine(gt, tmp_path):
    """The example: an `ingest` output's part cut short gave `segment` a ComputeError
    traceback and a half-made output; a `segment` output's part, `mine` likewise."""
    invoke("ingest", str(gt / "gayo.csv"), "--format", "gayo-avello", "--output", str(tmp_path / "ev"))
    invoke("segment", str(tmp_path / "ev"), "--output", str(tmp_path / "seg"))
    for step, given, table in (("segment", "ev", "events.parquet"), ("mine", "seg", "sessions.parquet")):
        part = sorted((tmp_path / given / table).glob("part-*.parquet"))[0]
        part.write_bytes(part.read_bytes()[:300])
        for engine in ("local", "ray"):
            result = runner.invoke(app, [step, str(tmp_path / given), "-o", str(tmp_path / "out"), "--engine", engine])
            lines = result.output.strip().splitlines()
            assert result.exit_code == 2 and len(lines) == 1, result.output
            assert lines[0].startswith(f"error: {part}: not readable as Parquet (") and "run that job again" in lines[0]
            assert not (tmp_path / "out").exists()


def test_segment_options_and_config_file(gt, tmp_path):
    config = tmp_path / "seg.yaml"
    config.write_text("segment:\n  method: time\n  gap_minutes: 1.5\nmissions:\n  window: 2\n")
    invoke("segment", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "t"), "--config", str(config))
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert report["config"]["segment"]["gap_minutes"] == 1.5 and report["config"]["missions"]["window"] == 2
    invoke(
        "segment", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "t"), "--config", str(config),
        "--gap-minutes", "600",
    )  # fmt: skip
    assert json.loads((tmp_path / "t" / "report.json").read_text())["sessions"] == 2  # options win: one a user
    config.write_text("segment:\n  gap_minutse: 5\n")
    result = runner.invoke(
        app, ["segment", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "t"), "--config", str(config)]
    )
    assert result.exit_code == 2 and "unknown segment option(s) gap_minutse" in result.output
    result = runner.invoke(app, ["segment", str(gt / "gayo.csv"), "-o", str(tmp_path / "t"), "--engine", "local"])
    assert result.exit_code == 2 and "raw logs need --format" in result.output
    invoke("ingest", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "i"))
    for fmt in ([], ["-f", "gayo-avello"]):  # the events of an ingest output, not the output: named as such
        events = str(tmp_path / "i" / "events.parquet")
        result = runner.invoke(app, ["segment", events, *fmt, "-o", str(tmp_path / "u")])
        assert result.exit_code == 2 and "the events of an `ingest` output; give the output itself" in result.output


def test_evaluate_segmentation_prints_a_table_and_json(gt):
    table = invoke(
        "evaluate", "segmentation", "--gt", str(gt / "webis.txt"), "--format", "webis-smc", "--method", "all"
    )
    for word in ("cascade", "lexical", "time-gap 26 min", "bF1", "gold missions"):
        assert word in table.output
    out = invoke("evaluate", "segmentation", "--gt", str(gt / "webis.txt"), "--format", "webis-smc", "--json")
    scores = json.loads(out.output)
    assert scores["gold"] == "missions" and scores["rows"] == 5
    assert scores["scores"]["cascade"]["missions"]["f1"] == 1.0  # peter pan and tax forms, interleaved, found
    assert scores["scores"]["time-gap 30 min"]["sessions"]["f1"] < 0.5
    gayo = json.loads(
        invoke("evaluate", "segmentation", "--gt", str(gt / "gayo.csv"), "-f", "gayo-avello", "--json").output
    )
    assert gayo["gold"] == "sessions" and gayo["scores"]["cascade"]["sessions"]["boundary_f1"] == 1.0


def test_evaluate_a_synthetic_log_against_both_golds_and_draw_the_bars(tmp_path, tiny_taxonomy):
    from PIL import Image

    from synth import SynthConfig, write_log

    write_log(SynthConfig(users=40, rows=1_500, seed=3), tiny_taxonomy, tmp_path / "synth.tsv")
    out = invoke("evaluate", "segmentation", "--gt", str(tmp_path / "synth.tsv"), "-f", "aol", "--method", "all",
                 "--json", "--figure", str(tmp_path / "f1.png"))  # fmt: skip
    scores = json.loads(out.output)
    assert scores["gold"] == "sessions" and set(scores["by_gold"]) == {"sessions", "missions"}
    assert scores["scores"] == scores["by_gold"]["sessions"]
    for by_system in scores["by_gold"].values():
        assert set(by_system["cascade"]) == {"sessions", "missions"}
        assert set(by_system["time-gap 30 min"]) == {"sessions"}  # a baseline has no missions
    with Image.open(tmp_path / "f1.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]  # one panel per gold, side by side
    table = invoke("evaluate", "segmentation", "--gt", str(tmp_path / "synth.tsv"), "-f", "aol").output
    assert "gold sessions and missions" in table
    plain = tmp_path / "plain.tsv"
    plain.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n")
    result = runner.invoke(app, ["evaluate", "segmentation", "--gt", str(plain), "-f", "aol"])
    assert result.exit_code == 2 and f"no row of {plain} has a session or mission label (format aol)" in result.output


@pytest.mark.parametrize(
    "command", [("evaluate", "segmentation"), ("evaluate", "crossval"), ("train", "segmenter")], ids=" ".join
)
def test_a_gold_file_read_in_the_wrong_format_is_named_as_such_by_every_command_that_scores_against_it(
    gt, tmp_path, monkeypatch, command
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")  # train segmenter's store
    (tmp_path / "empty.csv").write_text("")
    cases = [
        ("webis.txt", "gayo-avello", "all 8 records were rejected, most as wrong_field_count (8)"),
        ("gayo.csv", "webis-smc", "no column 'UserID'"),  # a format with a header names what it misses
        ("empty.csv", "gayo-avello", "nothing could be read: the inputs hold no records"),
    ]
    for name, fmt, says in cases:
        result = runner.invoke(app, [*command, "--gt", str(gt / name), "--format", fmt])
        line = result.output.strip()
        assert result.exit_code == 2 and len(line.splitlines()) == 1, result.output
        assert line.startswith(f"error: {gt / name}: ") and says in line, line
        if name == "webis.txt":
            assert line.endswith("a wrong --format, --map or time format is the usual cause")


@pytest.mark.parametrize(
    "command", [("evaluate", "segmentation"), ("evaluate", "crossval"), ("train", "segmenter")], ids=" ".join
)
def test_every_command_that_scores_against_a_table_says_what_reading_it_noted(tmp_path, monkeypatch, command):
    """The evaluation commands read a labelled table as `segment` does, and tell what
    `segment` tells of it (the gold breaker's finds): user ids that pandas wrote as whole
    floats (`1.0`, an integer column with a missing value) are read as written, which
    `segment` noted and these did not; and a table without a label column mapped is
    told where a table's labels come from (`--map ...,session=COLUMN`), as `mine --gold`
    tells it, where these said "no gold sessions or missions to score against"."""
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")  # train segmenter's store
    rows = [(float(u), f"2006-03-01 {10 + s * 3:02d}:{q:02d}:00", f"topic{u}{s} query{q}", f"{u}-{s}")
            for u in range(12) for s in range(2) for q in range(3)]  # fmt: skip
    frame = pd.DataFrame([*rows, (None, "2006-03-01 10:00:00", "no user", "x")], columns=["u", "t", "q", "s"])
    frame.to_csv(tmp_path / "gold.csv", index=False)  # users 0.0, 1.0, ...: a float column with a missing value
    small = ["--folds", "2", "--inner", "2"] if command != ("evaluate", "segmentation") else []
    spec = "user=u,time=t,text=q"
    result = runner.invoke(app, [*command, "--gt", str(tmp_path / "gold.csv"), "-f", "table", "--map", spec, *small])
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: no row of {tmp_path / 'gold.csv'} has a session or mission label; a table's come from its column "
        "named by --map ...,session=COLUMN or mission=COLUMN"
    )
    frame.assign(s=None).to_csv(tmp_path / "empty.csv", index=False)  # mapped, but every label missing
    result = runner.invoke(app, [*command, "--gt", str(tmp_path / "empty.csv"), "-f", "table", "--map",
                                 f"{spec},session=s", *small])  # fmt: skip
    assert result.exit_code == 2 and result.output.strip() == (  # not "name it by --map": it was (the breaker's find)
        f"error: no row of {tmp_path / 'empty.csv'} has a session or mission label: the column mapped, 's' "
        "(session=), holds no value"
    )
    result = runner.invoke(app, [*command, "--gt", str(tmp_path / "gold.csv"), "-f", "table", "--map",
                                 f"{spec},session=s", *small])  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the note as one line, however the terminal wrapped it
    assert f"note: {tmp_path / 'gold.csv'}: user ids: 72 rows' user ids written as whole floats (such as" in said


def test_crossval_estimates_each_system_on_users_it_never_saw(tmp_path, tiny_taxonomy):
    from synth import SynthConfig, write_log

    write_log(SynthConfig(users=24, rows=800, seed=5), tiny_taxonomy, tmp_path / "synth.tsv")
    out = invoke("evaluate", "crossval", "--gt", str(tmp_path / "synth.tsv"), "-f", "aol", "--folds", "3",
                 "--inner", "2", "--json")  # fmt: skip
    cv = json.loads(out.output)
    assert (cv["level"], cv["folds"], cv["users"], cv["rows"], cv["model"]) == ("sessions", 3, 24, 800, None)
    systems = cv["systems"]
    assert list(systems) == [
        "time-gap 30 min", "time gap, chosen from the grid", "lexical",
        "cascade (shipped settings)", "cascade, chosen from the grid", "learned classifier",
    ]  # fmt: skip
    assert set(systems["time gap, chosen from the grid"]["chosen"]) <= {"5 min", "15 min", "26 min", "30 min", "60 min"}
    for name, system in systems.items():
        assert sum(system["chosen"].values()) == 3, name
        assert set(system["mean"]) == {"f1", "precision", "recall", "ari", "boundary_f1", "adjacent_accuracy"}
        assert all(0.0 <= v <= 1.0 for v in system["mean"].values()) and all(v >= 0 for v in system["sd"].values())
        assert sum(b["users"] for b in system["by_user_size"].values()) == 24
    assert set(systems["learned classifier"]["chosen"]) <= {"gradient_boosting", "logistic"}
    assert all(system["mean"]["f1"] > 0.7 for name, system in systems.items() if name != "lexical")  # synthetic: easy
    # where each system errs, out of fold: adjacent pairs of one user (800 rows of 24 users: 776), by kind
    errors = {name: system["errors_by_kind"] for name, system in systems.items()}
    assert all(e["pairs"] == 776 for e in errors.values())
    assert errors["time-gap 30 min"]["false join: lexically close"] + errors["time-gap 30 min"][
        "false join: neither"] > 0  # fmt: skip
    assert errors["cascade (shipped settings)"]["false break: lexically close"] == 0  # the cascade keeps those
    assert errors["lexical"]["false break: repeat across a long gap"] == 0  # lexical ignores time
    # the table, at the other level; rows rejected are counted, not lost
    damaged = tmp_path / "damaged.tsv"
    lines = (tmp_path / "synth.tsv").read_text().splitlines(keepends=True)
    damaged.write_text("".join([*lines, "999\tbroken\tnot a time\t\t\t999/s0\t999/m0\t\t\n"]))
    table = invoke("evaluate", "crossval", "--gt", str(damaged), "-f", "aol", "--folds", "2", "--inner", "2",
                   "--level", "missions").output  # fmt: skip
    flat = " ".join(table.split())
    assert "800 queries, 24 users; missions, 2 outer x 2 inner folds" in flat
    assert "(not scored: 1 row rejected (bad_time 1))" in flat
    assert "the candidate each outer fold's inner folds chose" in flat and "pair F1 by users' history length" in flat
    assert all(word in flat for word in ("time-gap", "shipped", "grid", "learned", "missions window="))
    assert "time-gap 30 min + linking" in flat and "lexical + linking" in flat  # what linking adds, apart
    assert "false breaks among the 776 pairs of adjacent queries, by kind (missions, out of fold)" in flat
    assert "false joins among the 776 pairs" in flat

    few = tmp_path / "few.tsv"
    few.write_text("".join((tmp_path / "synth.tsv").read_text().splitlines(keepends=True)[:3]))
    for args, message in (
        (
            [str(few), "--folds", "5"],
            "(at least 2 each) needs at least 5 users with two queries labelled at the "
            "sessions level; the data have 1 (among 1 users)",
        ),
        ([str(few), "--folds", "1"], "at least 2"),
        ([str(tmp_path / "synth.tsv"), "--folds", "100000000000"], "needs at least 100000000000 users"),  # at once
        (
            [str(tmp_path / "synth.tsv"), "--seed", "-1"],
            f"--seed {SEED_RANGE}, not -1",
        ),
    ):
        result = runner.invoke(app, ["evaluate", "crossval", "--gt", args[0], "-f", "aol", *args[1:]])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output


def test_crossval_refuses_folds_that_would_have_nothing_to_score(tmp_path, store):
    """A breaking helper's table: one user with queries to score and four with one query
    each. A fold of one one-query user has no pair to count and scored 1.0, so every
    rule's mean was 0.800, though every rule joins the one user's three queries, which
    the truth keeps apart (F1 0). Both commands that cross-validate refuse it in one line."""
    light = tmp_path / "light.csv"
    light.write_text(
        "u,t,q,s\nh,1677664800,pizza,a\nh,1677664860,pizza dough,b\nh,1677664920,pizza oven,c\n"
        + "".join(f"x{i},1677664800,hello,a\n" for i in range(1, 5))
    )
    for command in (["evaluate", "crossval"], ["train", "segmenter"]):
        args = [*command, "--gt", str(light), "-f", "table", "--map", "user=u,time=t,text=q,session=s"]
        result = runner.invoke(app, args)
        line = " ".join(result.output.split())
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "users with two queries labelled at the sessions level; the data have 1 (among 5 users)" in line, line
    # every other row labelled: no pair of consecutive queries for a learned segmenter. Cross-validation reported
    # the classifier fitted on nothing (it breaks every pair) as an estimate, 0.000; now the rules are estimated
    # and the classifier is named as not estimated, and `train segmenter` refuses the file in one line
    alternate = tmp_path / "alternate.csv"
    alternate.write_text("u,t,q,s\n" + "".join(
        f"u{u},{1677664800 + 60 * i + 20000 * (i == 4)},{q},{s}\n"
        for u in range(6) for i, (q, s) in enumerate([("pizza 0", "a"), ("pizza 1", ""), ("pizza 2", "a"),
                                                      ("x", ""), ("taxes 3", "b")])))  # fmt: skip
    args = ["--gt", str(alternate), "-f", "table", "--map", "user=u,time=t,text=q,session=s"]
    cv = json.loads(invoke("evaluate", "crossval", *args, "--json").output)
    assert "learned classifier" not in cv["systems"] and cv["systems"]["cascade (shipped settings)"]["mean"]["f1"] == 1
    assert cv["not_estimated"] == {"learned classifier": NO_PAIRS}
    result = runner.invoke(app, ["train", "segmenter", *args])
    assert result.exit_code == 2 and f"{alternate}: {NO_PAIRS}" in " ".join(result.output.split()), result.output
    # the crossval user's find: every user one session. `train segmenter` refused it (nothing to learn) while
    # cross-validation published the classifier that answers "same" for every pair as 1.000 ± 0.000
    one = tmp_path / "one.csv"
    one.write_text(alternate.read_text().replace(",b\n", ",a\n").replace(",\n", ",a\n"))
    args = ["--gt", str(one), "-f", "table", "--map", "user=u,time=t,text=q,session=s"]
    cv = json.loads(invoke("evaluate", "crossval", *args, "--json").output)
    said = "every pair of consecutive queries both labelled is of one kind (all one session, or all breaks"
    assert "learned classifier" not in cv["systems"] and cv["not_estimated"]["learned classifier"].startswith(said)
    assert cv["systems"]["cascade (shipped settings)"]["mean"]["f1"] < 1  # the rules split what the truth joins
    result = runner.invoke(app, ["train", "segmenter", *args])
    assert result.exit_code == 2 and f"{one}: {said}" in " ".join(result.output.split()), result.output


def test_evaluate_a_saved_segmentation(gt, tmp_path):
    invoke(
        "segment", str(gt / "webis.txt"), "--format", "webis-smc", "--output", str(tmp_path / "s"), "--method", "time"
    )
    out = invoke(
        "evaluate",
        "segmentation",
        "--gt",
        str(gt / "webis.txt"),
        "-f",
        "webis-smc",
        "--pred",
        str(tmp_path / "s"),
        "--json",
    )
    scores = json.loads(out.output)["scores"]
    assert next(iter(scores)).startswith("pred:")
    result = runner.invoke(
        app,
        [
            "evaluate",
            "segmentation",
            "--gt",
            str(gt / "webis.txt"),
            "-f",
            "webis-smc",
            "--pred",
            "x",
            "--method",
            "time",
        ],
    )
    assert result.exit_code == 2 and "exclude each other" in result.output
    # a segmentation of another log, or of this one read with other times, is refused, not scored on shared ids
    invoke("segment", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "other"))
    invoke(
        "segment", str(gt / "webis.txt"), "-f", "webis-smc", "-o", str(tmp_path / "shifted"), "--timezone", "Asia/Tokyo"
    )
    for pred in ("other", "shifted"):
        result = runner.invoke(app, ["evaluate", "segmentation", "--gt", str(gt / "webis.txt"), "-f", "webis-smc",
                                     "--pred", str(tmp_path / pred)])  # fmt: skip
        assert result.exit_code == 2 and "segments another log: " in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    # a hand-made segmentation with a row in no session (a breaking helper's find: boundary scores passed over
    # it, pair counting grouped such rows together, and both were scored without a word)
    invoke("segment", str(gt / "webis.txt"), "-f", "webis-smc", "-o", str(tmp_path / "ours"))
    holed = read_table(tmp_path / "ours" / "sessions.parquet")
    (tmp_path / "holed").mkdir()
    (tmp_path / "holed" / "report.json").write_bytes((tmp_path / "ours" / "report.json").read_bytes())
    holed.with_columns(session_id=pl.when(pl.col("row_id") == 1).then(None).otherwise("session_id")).write_parquet(
        tmp_path / "holed" / "sessions.parquet"
    )
    result = runner.invoke(app, ["evaluate", "segmentation", "--gt", str(gt / "webis.txt"), "-f", "webis-smc",
                                 "--pred", str(tmp_path / "holed")])  # fmt: skip
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: --pred {tmp_path / 'holed'}: 1 rows without a session_id (the first: row 1); `segment` "
        "writes one for every row"), result.output  # fmt: skip


def test_mine_writes_pairs_and_counts(gt, tmp_path):
    invoke("segment", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "s"))
    mined = invoke("mine", str(tmp_path / "s"), "--output", str(tmp_path / "p"), "--seed", "1")
    pairs = read_table(tmp_path / "p" / "pairs.parquet")
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    sessions = read_table(tmp_path / "s" / "sessions.parquet")
    assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (sessions.height, sessions.height, 0)
    assert f"rows in │ {sessions.height:,}" in " ".join(mined.output.split())
    assert report["pairs"] == pairs.height and report["positives"] == int(pairs["label"].sum())
    assert sum(n for kinds in report["by_split_and_kind"].values() for n in kinds.values()) == pairs.height
    assert pairs.columns == ["query_a", "query_b", "label", "kind", "user_id", "split"]
    result = runner.invoke(
        app, ["mine", str(tmp_path / "nothing"), "--output", str(tmp_path / "p"), "--engine", "local"]
    )
    assert result.exit_code == 2 and "run `sessionflow segment` first" in result.output
    assert "note: no pairs" not in mined.output
    # a few users: the splits the hash dealt none of them to are named, in the report and the summary
    absent = [split for split in ("train", "val", "test") if split not in report["by_split_and_kind"]]
    assert absent and report["empty_splits"] == absent, report
    assert f"note: no {' or '.join(absent)} pairs: users are dealt to the splits by a hash" in " ".join(
        mined.output.split()
    )
    assert "--val-share 0" not in mined.output
    # a split asked to be empty: `train session` would refuse the pairs, so `mine` says so
    no_val = invoke("mine", str(tmp_path / "s"), "--output", str(tmp_path / "p0"), "--val-share", "0")
    assert (
        "note: no val pairs (--train-share 0.8, --val-share 0): `train session` validates on val and refuses "
        "these pairs" in " ".join(no_val.output.split())
    )
    only_train = invoke("mine", str(tmp_path / "s"), "--output", str(tmp_path / "p1"), "--train-share", "1",
                        "--val-share", "0")  # fmt: skip
    assert (
        "note: no val or test pairs (--train-share 1, --val-share 0): `train session` validates on val and "
        "refuses these pairs; `evaluate pairs` reads test and finds none" in " ".join(only_train.output.split())
    )


def test_mine_short_of_negatives_offers_one_bucket_only_where_there_are_more(tmp_path):
    """The note on negatives short of the ratio offered `--partitions 1` even to a run of
    one bucket, and to a log of one user, whom no bucket gives another user to draw
    random negatives from (the mine breaker's find)."""

    def log_of(users: int, name: str) -> str:
        lines = [f"{100 + u}\tquery {i % 7} topic {(i + u) % 5}\t2006-03-01 {i // 6:02d}:{i * 7 % 60:02d}:00\t\t\n"
                 for u in range(users) for i in range(20)]  # fmt: skip
        (tmp_path / name).write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(lines))
        invoke("segment", str(tmp_path / name), "-f", "aol", "-o", str(tmp_path / f"{name}-s"))
        return str(tmp_path / f"{name}-s")

    many, one = log_of(12, "many.tsv"), log_of(1, "one.tsv")
    for sessions, buckets, offered in ((many, "8", True), (many, "1", False), (one, "8", False)):
        mined = invoke("mine", sessions, "-o", str(tmp_path / f"p{buckets}{offered}{len(sessions)}"), "--partitions",
                       buckets, "--negatives-per-positive", "40")  # fmt: skip
        said = " ".join(mined.output.split())
        assert f"negatives pair users of one bucket and split (--partitions {buckets})" in said, said
        assert ("or pass --partitions 1" in said) is offered, said


def test_mine_refuses_sessions_segment_would_not_write_before_claiming_its_output(gt, tmp_path):
    invoke("segment", str(gt / "gayo.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "s"))
    table = tmp_path / "s" / "sessions.parquet"
    parts = sorted(table.glob("*.parquet")) if table.is_dir() else [table]
    for part in parts:
        pl.read_parquet(part).with_columns(query=pl.lit(None, pl.String)).write_parquet(part)
    result = runner.invoke(app, ["mine", str(tmp_path / "s"), "-o", str(tmp_path / "p"), "--engine", "local"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "rows without query: `segment` writes none" in lines[0]
    assert not (tmp_path / "p").exists()


def test_mine_of_sessions_without_a_pair_says_why_it_found_none(gt, tmp_path):
    """Sessions of one query each give no positive, so no negative either: the summary says so."""
    single = "\n".join(line for line in GAYO.splitlines() if line.split(";")[0] in ("1", "4", "7"))
    (tmp_path / "single.csv").write_text(single + "\n")
    invoke("segment", str(tmp_path / "single.csv"), "-f", "gayo-avello", "-o", str(tmp_path / "s"))
    mined = invoke("mine", str(tmp_path / "s"), "--output", str(tmp_path / "p"))
    assert json.loads((tmp_path / "p" / "report.json").read_text())["pairs"] == 0
    assert "note: no pairs: no session holds two distinct queries" in " ".join(mined.output.split())


def test_mine_gold_reads_a_table_with_its_map_and_only_then(tmp_path):
    """`--help` offered `--format table` with --gold, which then asked for a --map that
    mine did not have (the breaking helper's find): it has the read settings now."""
    (tmp_path / "lab.csv").write_text(
        "uid,ts,q,sess\n1,2023-01-05 10:00:00,cheap flights,a\n1,2023-01-05 10:01:00,flights rome,a\n"
        "1,2023-01-05 12:00:00,pasta,b\n2,2023-01-05 10:00:00,tax forms,c\n2,2023-01-05 10:03:00,irs 1040,c\n"
    )
    invoke("mine", str(tmp_path / "lab.csv"), "--gold", "session", "-f", "table", "--map",
           "user=uid,time=ts,text=q,session=sess", "-o", str(tmp_path / "p"))  # fmt: skip
    pairs = read_table(tmp_path / "p" / "pairs.parquet")
    positives = {frozenset(pair) for pair in pairs.filter(pl.col("label") == 1).select("query_a", "query_b").rows()}
    assert positives == {frozenset(("cheap flights", "flights rome")), frozenset(("irs 1040", "tax forms"))}
    assert json.loads((tmp_path / "p" / "report.json").read_text())["unlabelled"] == 0
    recorded = json.loads((tmp_path / "p" / "report.json").read_text())["config"]["mining"]
    assert (recorded["random_share"], recorded["lexical_hard_share"], recorded["train_share"]) == (0.5, 0.0, 0.0)
    # a row without its label is read, in no pair, and counted (a new user's find: it went without a word)
    (tmp_path / "lab2.csv").write_text((tmp_path / "lab.csv").read_text() + "2,2023-01-05 11:00:00,paris metro,\n")
    mined = invoke("mine", str(tmp_path / "lab2.csv"), "--gold", "session", "-f", "table", "--map",
                   "user=uid,time=ts,text=q,session=sess", "-o", str(tmp_path / "p2"))  # fmt: skip
    report = json.loads((tmp_path / "p2" / "report.json").read_text())
    assert (report["rows_in"], report["rows_ok"], report["unlabelled"]) == (6, 6, 1)
    assert "rows without a gold session (in no pair) │ 1" in " ".join(mined.output.split())
    refused = runner.invoke(app, ["mine", str(tmp_path / "p"), "--map", "user=uid,time=ts,text=q", "-o",
                                  str(tmp_path / "q")])  # fmt: skip
    assert refused.exit_code == 2 and "error: --map reads a labelled log, with --gold" in refused.output


def test_mine_gold_says_when_its_users_hold_fewer_negatives_than_positives(tmp_path):
    """--gold draws as many negatives as positives, half other users' queries: a table of
    one user has none of those, and the shortfall went without a word, the report's
    `negatives_short` left empty under --gold (the gold breaker's find). On the
    development files nothing is short."""
    (tmp_path / "one.csv").write_text(
        "uid,ts,q,sess\n1,2006-03-01 10:00:00,cats,a\n1,2006-03-01 10:01:00,cute cats,a\n"
        "1,2006-03-01 10:02:00,cats pics,a\n1,2006-03-01 12:00:00,dogs,b\n1,2006-03-01 12:01:00,dog food,b\n"
    )
    mined = invoke("mine", str(tmp_path / "one.csv"), "--gold", "session", "-f", "table", "--map",
                   "user=uid,time=ts,text=q,session=sess", "-o", str(tmp_path / "p"))  # fmt: skip
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert (report["positives"], report["negatives"], report["negatives_short"]) == (4, 2, {"test": 2})
    assert (
        "note: 2 negatives fewer than positives: --gold draws as many, half other users' queries and half the "
        "same user's other sessions, and its one user holds fewer to draw from"
    ) in " ".join(mined.output.split())


def test_mine_gold_accounts_for_every_row_of_the_labelled_log(gt, tmp_path):
    """`mine --gold` reads a labelled log: its report and summary account for every row
    (rows in = ok + rejected, the rejected ones in rejected.parquet with their reasons)."""
    bad = tmp_path / "gayo-bad.csv"
    bad.write_text(GAYO + "\ngarbage line without fields\n99;7;q;;notadate;xx;s9\n")
    result = invoke("mine", str(bad), "--gold", "session", "-f", "gayo-avello", "-o", str(tmp_path / "p"))
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    rejected = read_table(tmp_path / "p" / "rejected.parquet")
    assert report["rows_in"] == report["rows_ok"] + report["rows_rejected"] and report["rows_rejected"] == 2
    assert rejected.height == 2 and report["rejected_by_reason"] == dict(rejected["reason"].value_counts().iter_rows())
    assert report["outputs"]["rejected.parquet"].endswith("rejected.parquet") and report["pairs"] > 0
    assert report["config"]["engine"] == "local" and report["config"]["engine_reason"].startswith("--gold")
    assert "rows rejected" in result.output
    assert all((tmp_path / "p" / name / "_manifest.json").is_file() for name in ("pairs.parquet", "rejected.parquet"))


@pytest.mark.parametrize(
    ("name", "data", "cause"),
    [
        ("cut.tsv.gz", gzip.compress(b"1\tq\t2006-03-01 00:00:00\t\t\n" * 50, mtime=0)[:20],
         "the compressed stream ends before its end marker (a truncated file), after 9 decompressed bytes"),
        ("latin1.tsv", b"1\tcaf\xe9\t2006-03-01 00:00:00\t\t\n", "the input is not UTF-8 text"),
        ("other.tsv", b"1\tq\tyesterday\t\t\n", "a wrong --format or --map (another column read as the time) is"),
        ("dmy.tsv", b"1\tq\t05/01/2023 10:00\t\t\n", "or times in a form read only with a --time-format (e.g."),
        ("iso.tsv --time-format %d/%m/%Y", b"1\tq\t2023-01-05 10:00\t\t\n",  # a wrong one given: not "give one"
         "the --time-format given ('%d/%m/%Y') does not read its time, or a wrong --format or --map"),
    ],
)  # fmt: skip
def test_a_log_of_which_nothing_is_read_is_refused_with_its_likely_cause(name, data, cause, tmp_path):
    name, *options = name.split()
    (tmp_path / name).write_bytes(data)
    done = runner.invoke(app, ["ingest", str(tmp_path / name), "-f", "aol", "-o", str(tmp_path / "o"), *options])
    assert done.exit_code == 2 and "nothing could be read: its one record was rejected, as " in done.output, done.output
    assert cause in " ".join(done.output.split()) and not (tmp_path / "o").exists()


@pytest.mark.parametrize("mapped", ["meta.user", "usr"])
def test_json_lines_without_a_mapped_key_are_refused_naming_the_key_and_the_keys_there_are(mapped, tmp_path):
    """A new user's find: a nested field (`meta.user`), or a key no line has, was told as
    "all rejected as empty_user", with the advice to check --map and nothing more."""
    lines = [{"meta": {"user": u}, "created": "2024-01-01T10:00:00Z", "prompt": "x"} for u in "ab"]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = runner.invoke(app, ["ingest", str(tmp_path / "chat.jsonl"), "-f", "table", "--map",
                               f"user={mapped},time=created,text=prompt", "-o", str(tmp_path / "o")])  # fmt: skip
    said = " ".join(done.output.split())
    assert done.exit_code == 2 and "all 2 records were rejected, most as empty_user (2)" in said, done.output
    assert said.endswith(f"its line has no key '{mapped}' (its keys: 'meta', 'created', 'prompt'); JSON lines "
                         "are read by their top-level keys: flatten a nested one first "
                         "(jq, or polars' unnest)")  # fmt: skip
    # a key that is there with no value is the usual cause's, as before
    (tmp_path / "null.jsonl").write_text(json.dumps({"usr": None, "created": "2024-01-01T10:00:00Z", "prompt": "x"}))
    done = runner.invoke(app, ["ingest", str(tmp_path / "null.jsonl"), "-f", "table", "--map",
                               "user=usr,time=created,text=prompt", "-o", str(tmp_path / "o")])  # fmt: skip
    assert " ".join(done.output.split()).endswith("a wrong --format, --map or time format is the usual cause")
    # a key with spaces around it: its keys quoted, so that the spaces show, and how --map names it
    (tmp_path / "spaced.jsonl").write_text(json.dumps({" user ": "a", "created": "2024-01-01T10:00:00Z", "p": "x"}))
    done = runner.invoke(app, ["ingest", str(tmp_path / "spaced.jsonl"), "-f", "table", "--map",
                               "user=user,time=created,text=p", "-o", str(tmp_path / "o")])  # fmt: skip
    assert done.exit_code == 2 and " ".join(done.output.split()).endswith(
        "its line has no key 'user' (its keys: ' user ', 'created', 'p'; a name is matched as written, in case and "
        "spaces: --map names ' user ' as \" user \"); JSON lines are read by their top-level keys: flatten a nested "
        "one first (jq, or polars' unnest)"
    ), done.output


@pytest.mark.parametrize(
    "command",
    [["ingest", "-f", "aol", "--engine", "local"], ["ingest", "-f", "aol", "--engine", "ray"],
     ["segment", "-f", "aol", "--engine", "local"], ["segment", "-f", "aol", "--engine", "ray"],
     ["mine", "--gold", "mission", "-f", "webis-smc"], ["evaluate", "crossval", "-f", "webis-smc", "--gt"]],
    ids=lambda words: " ".join(words),
)  # fmt: skip
def test_a_directory_of_a_log_and_its_gzipped_twin_is_refused_by_every_command_on_either_engine(command, tmp_path):
    """A new user's find: a directory holding a log and the same log gzipped beside it (`gzip
    -k`) was read as both, every query twice, exit 0: each command that reads raw logs
    refuses it in one line naming the pair, before it writes anything."""
    d = tmp_path / "dupdir"
    d.mkdir()
    (d / "webis.txt").write_text(WEBIS)
    (d / "webis.txt.gz").write_bytes(gzip.compress(WEBIS.encode()))
    words = [*command, str(d)] if command[-1] == "--gt" else [command[0], str(d), *command[1:]]
    done = runner.invoke(app, [*words, "-o", str(tmp_path / "o")] if command[0] != "evaluate" else words)
    said = " ".join(done.output.split())
    assert done.exit_code == 2 and said.startswith(f"error: {d}: holds webis.txt and webis.txt.gz, most likely one "
                                                   "log with and without its compression"), done.output  # fmt: skip
    assert len(done.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


AOL_ROWS = "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(
    f"{1 + i // 5}\tquery {i}\t2006-03-01 10:{i:02d}:00\t\t\n" for i in range(20)
)


def mixed_directory(d):
    """A new user's `mixdir`: a good AOL file, a stray Parquet file, a UTF-16 TSV and a
    workbook (an empty zip, as far as the reader sees)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d.mkdir()
    (d / "01-A.txt").write_text(AOL_ROWS)
    (d / "notes.tsv").write_bytes(AOL_ROWS.encode("utf-16"))  # Excel's Unicode Text
    pq.write_table(pa.table({"image": ["a.png", "b.png"], "prompt": ["x", "y"]}), d / "stray.parquet")
    (d / "sheet.xlsx").write_bytes(b"PK\x05\x06" + bytes(18))
    return d


def alone(path, fmt: str, out) -> str:
    """What a job says of the file at `path` named alone, of which nothing is read."""
    from sessions.ingest import ingest
    from sessions.io import scan_table
    from workflows.jobs.common import nothing_read

    report = ingest([path], fmt, out)
    return nothing_read(report.to_dict(), scan_table(out / "rejected.parquet"))


def test_a_file_of_a_directory_none_of_whose_records_is_read_is_named_with_what_it_would_get_alone(tmp_path):
    """A new user's find: in a directory of a good AOL file, a stray Parquet file, a UTF-16
    TSV and a workbook, the Parquet file became 9 rejected rows and the UTF-16 one 502,
    exit 0, and the summary named neither: its one advice, to convert from Windows-1252,
    was wrong for both. A Parquet file under a format of text and a spreadsheet are now
    skipped by name and listed; a file none of whose records was read is named NOT READ
    with why, in the words the file named alone fails with; the accounting holds."""
    from sessions.ingest import SPREADSHEET_REASON
    from workflows.cli.ingest import ingest_rows

    d = mixed_directory(tmp_path / "mixdir")
    done = runner.invoke(app, ["ingest", str(d), "-f", "aol", "-o", str(tmp_path / "o"), "--engine", "local"])
    said = " ".join(done.output.split())
    assert done.exit_code == 0 and "NOT READ" in said and "often UTF-16" in said, done.output
    assert "WINDOWS-1252" not in said  # the only bad_encoding row is the UTF-16 file's, which says its own
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert {s["path"]: s["reason"] for s in report["skipped_files"]} == {
        str(d / "sheet.xlsx"): SPREADSHEET_REASON,
        str(d / "stray.parquet"): "a Parquet file, which --format aol does not read (it reads text): read it with "
                                  "--format table"}  # fmt: skip
    assert [(f["path"], f["rows_in"], f["rows_ok"]) for f in report["files"]] == [
        (str(d / "01-A.txt"), 20, 20), (str(d / "notes.tsv"), 22, 0)]  # fmt: skip
    assert report["rows_in"] == report["rows_ok"] + report["rows_rejected"] == 42
    rows = ingest_rows(report)
    notes = d / "notes.tsv"
    by_itself = alone(notes, "aol", tmp_path / "alone")  # "nothing could be read: ... e.g. line 2 of PATH: ..."
    assert rows[f"  NOT READ {notes}"] == by_itself.removeprefix("nothing could be read: ").replace(f" of {notes}", "")
    assert [k for k in rows if "NOT READ" in k or "bad_encoding:" in k] == [f"  NOT READ {notes}"]
    # named alone, the Parquet file and the workbook say what they are
    assert "it is a Parquet file (its first bytes are PAR1)" in alone(d / "stray.parquet", "aol", tmp_path / "p")
    assert alone(d / "sheet.xlsx", "aol", tmp_path / "x").endswith(f"it is {SPREADSHEET_REASON}")
    # of many such files, the first five are named with why, the others counted
    files = [{"path": f"logs/part-{i}.txt", "rows_in": 1, "rows_ok": 0, "rejected_by_reason": {"bad_time": 1},
              "first_rejected": {"bad_time": {"line_no": 1, "raw": "1\tq\tyesterday"}}} for i in range(7)]  # fmt: skip
    rows = ingest_rows({"format": "aol", "rows_in": 7, "rows_ok": 0, "rows_rejected": 7, "files": files})
    assert [k for k in rows if "NOT READ" in k] == [*(f"  NOT READ logs/part-{i}.txt" for i in range(5)),
                                                    "  NOT READ 2 more files"]  # fmt: skip
    assert rows["  NOT READ logs/part-0.txt"].startswith("its one record was rejected, as bad_time, e.g. line 1: ")
    # a Parquet table read as Parquet, its texts not UTF-8, is told so, not that it was read as text
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sessions.formats import ReadOptions
    from sessions.ingest import ingest
    from sessions.io import scan_table
    from workflows.jobs.common import nothing_read

    texts = pa.array([b"caf\xe9", b"\xff"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"u": ["a", "b"], "t": ["2023-01-01 10:00:00"] * 2, "q": texts}), tmp_path / "t.parquet")
    report = ingest([tmp_path / "t.parquet"], "table", tmp_path / "t", options=ReadOptions(map="user=u,time=t,text=q"))
    said = nothing_read(report.to_dict(), scan_table(tmp_path / "t" / "rejected.parquet"))
    assert said.endswith("the input is not UTF-8 text (convert it, e.g. with iconv)"), said


BAD_AOL_LINES = ["1\tq\tyesterday\t\t\n", "x\ty\n", "1\t-\t2006-03-01 10:00:00\t\t\n", "\udcff\udcfe junk\n",
                 "1\tnul\x00x\t2006-03-01 10:00:00\t\t\n"]  # fmt: skip


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(
    files=st.lists(st.tuples(st.integers(0, 2), st.lists(st.sampled_from(BAD_AOL_LINES), max_size=4)),
                   min_size=2, max_size=4),
)  # fmt: skip
def test_the_summary_names_exactly_the_files_none_of_whose_records_was_read(tmp_path_factory, files):
    """Property: for any directory of AOL files, each of some good and some rejected
    records, the summary names NOT READ exactly the files that held records and none
    read, each in the words `nothing_read` says of it named alone."""
    from sessions.ingest import ingest
    from workflows.cli.ingest import ingest_rows

    tmp = tmp_path_factory.mktemp("dir")
    (tmp / "logs").mkdir()
    paths = []
    for i, (good, bad) in enumerate(files):
        path = tmp / "logs" / f"part-{i}.txt"
        text = AOL_ROWS.splitlines(keepends=True)[: 1 + good] + bad
        path.write_bytes("".join(text).encode("utf-8", "surrogateescape"))
        paths.append(path)
    rows = ingest_rows(ingest([tmp / "logs"], "aol", tmp / "out").to_dict())
    named = {key.removeprefix("  NOT READ ") for key in rows if key.startswith("  NOT READ ")}
    assert named == {str(p) for p, (good, bad) in zip(paths, files, strict=True) if not good and bad}
    for i, path in enumerate(map(Path, sorted(named))):
        by_itself = alone(path, "aol", tmp / f"alone-{i}").removeprefix("nothing could be read: ")
        assert rows[f"  NOT READ {path}"] == by_itself.replace(f" of {path}", "")


def test_a_sogou_log_with_a_time_format_of_the_time_of_day_alone_is_refused_before_any_output(tmp_path):
    """A new user's example: SogouQ writes the time of day alone (its date is in the file's
    name); `--time-format '%H:%M:%S'` wrote every ts as 0001-01-01 HH:MM:SS, exit 0."""
    (tmp_path / "sogou.tsv").write_text("time\tuid\tquery\n00:00:01\t980801\tbaidu\n00:00:02\t980801\tsohu\n")
    done = runner.invoke(app, ["ingest", str(tmp_path / "sogou.tsv"), "-f", "table", "--map",
                               "user=uid,time=time,text=query", "--time-format", "%H:%M:%S",
                               "-o", str(tmp_path / "o")])  # fmt: skip
    assert done.exit_code == 2 and len(done.output.strip().splitlines()) == 1, done.output
    assert "it reads no date, only a time of day" in done.output and not (tmp_path / "o").exists()
    (tmp_path / "dated.tsv").write_text("time\tuid\tquery\n2011-12-30 00:00:01\t980801\tbaidu\n")
    dated = ["--map", "user=uid,time=time,text=query", "--time-format", "%Y-%m-%d %H:%M:%S"]  # as the message says
    invoke("ingest", str(tmp_path / "dated.tsv"), "-f", "table", *dated, "-o", str(tmp_path / "o"))
    assert str(read_table(tmp_path / "o" / "events.parquet")["ts"][0]) == "2011-12-30 00:00:01+00:00"


def test_nothing_read_names_utf16_a_file_cut_before_any_record_and_mine_gold_alike(tmp_path):
    utf16 = "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tq\t2006-03-01 00:00:00\t\t\n".encode("utf-16")
    (tmp_path / "u16.tsv").write_bytes(utf16)
    (tmp_path / "cut.txt.gz").write_bytes(gzip.compress(b"599381\tq\t2006-03-01 01:14:05\t\t\t1\n" * 40)[:12])
    (tmp_path / "gayo.csv").write_text("x\n")
    for args, said in (
        (["ingest", "u16.tsv", "-f", "aol"], "often UTF-16 (Excel's Unicode Text): convert it to UTF-8"),
        (["ingest", "cut.txt.gz", "-f", "webis-smc"], "the compressed stream ends before its end marker (a truncated"),
        (["mine", "gayo.csv", "--gold", "session", "-f", "gayo-avello"], "its one record was rejected, as "),
    ):
        args[1] = str(tmp_path / args[1])
        done = runner.invoke(app, [*args, "-o", str(tmp_path / "o")])
        assert done.exit_code == 2 and said in " ".join(done.output.split()), done.output
        assert len(done.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_truth_with_nothing_to_count_is_refused_not_scored_perfect(tmp_path):
    """Pair counting, boundaries and adjacent pairs count nothing when no user has two
    queries, and every score was 1.000 for every system: evaluate segmentation refuses
    such a file in one line, as evaluate crossval does."""
    rows = [f"{u};{700 + u};query {u};;01/03/2006 10:00;{1141207200 + u};s{u}" for u in range(3)]  # one query a user
    (tmp_path / "gayo.csv").write_text("\n".join(rows) + "\n")
    for command in ("segmentation", "crossval"):
        done = runner.invoke(app, ["evaluate", command, "--gt", str(tmp_path / "gayo.csv"), "-f", "gayo-avello"])
        lines = done.output.strip().splitlines()
        assert done.exit_code == 2 and len(lines) == 1 and "no user has two labelled queries" in lines[0], done.output


def test_queries_without_terms_are_not_one_query_for_the_nothing_they_share(tmp_path):
    """A new user's prompt log: `🍕` then `🎉` two hours apart were one session and one
    mission (each normalises to nothing, and two empty texts counted as identical),
    where `pizza` then `party` were two; so were `the` then `what is html`."""
    (tmp_path / "emoji.csv").write_text(
        "user,time,prompt\n"
        "u1,2023-03-01T10:00:00Z,🍕\nu1,2023-03-01T12:00:00Z,🎉\n"
        "u2,2023-03-01T10:00:00Z,pizza\nu2,2023-03-01T12:00:00Z,party\n"
        "u3,2023-03-01T10:00:00Z,the\nu3,2023-03-01T12:00:00Z,what is html\n"
        "u4,2023-03-01T10:00:00Z,🍕\nu4,2023-03-01T12:00:00Z,🍕\n"
    )
    for method in ("cascade", "lexical"):
        out = tmp_path / method
        invoke("segment", str(tmp_path / "emoji.csv"), "--format", "table", "--map", "user=user,time=time,text=prompt",
               "--method", method, "--output", str(out))  # fmt: skip
        got = read_table(out / "sessions.parquet").sort("row_id")
        assert got["session_id"].to_list() == ["u1/0", "u1/1", "u2/0", "u2/1", "u3/0", "u3/1", "u4/0", "u4/0"], method
        assert got["mission_id"].to_list() == ["u1/m0", "u1/m1", "u2/m0", "u2/m1", "u3/m0", "u3/m1", "u4/m0", "u4/m0"]


def test_an_unknown_user_holding_a_comma_is_named_in_a_config_list(tmp_path):
    """On the command line `--unknown-user` splits at commas (`a,b` is two users); a user
    value that holds a comma is named whole in a `--config` file's list."""
    log = tmp_path / "log.csv"
    log.write_text('u,t,q\n"guest, anonymous",2006-03-01 10:00:00,one\nguest,2006-03-01 10:01:00,two\n'
                   "alice,2006-03-01 10:02:00,three\n")  # fmt: skip
    (tmp_path / "c.yaml").write_text('read:\n  unknown_user: ["guest, anonymous"]\n')
    args = ("ingest", str(log), "-f", "table", "--map", "user=u,time=t,text=q")
    invoke(*args, "-o", str(tmp_path / "listed"), "--config", str(tmp_path / "c.yaml"))
    invoke(*args, "-o", str(tmp_path / "split"), "--unknown-user", "guest, anonymous")
    for out, rejected_user in (("listed", "guest, anonymous"), ("split", "guest")):
        kept = read_table(tmp_path / out / "events.parquet")["user_id"].sort().to_list()
        assert kept == sorted({"guest, anonymous", "guest", "alice"} - {rejected_user})
        report = json.loads((tmp_path / out / "report.json").read_text())
        assert report["rejected_by_reason"] == {"unknown_user": 1}


def test_the_summary_says_how_each_tsv_was_read_and_counts_files_read_alike():
    """Each TSV table's reading (raw or CSV-quoted) is in the summary: by name for a few
    files, as a count when more read alike (a directory of parts stays one line)."""
    from sessions.formats.dialect import READ_AS_QUOTED, READ_AS_RAW
    from workflows.cli.ingest import ingest_rows

    files = [{"path": f"logs/part-{i}.tsv", "read_as": READ_AS_RAW} for i in range(5)]
    files += [{"path": "logs/pandas.tsv", "read_as": READ_AS_QUOTED}, {"path": "logs/a.csv", "read_as": None}]
    rows = ingest_rows({"rows_in": 9, "rows_ok": 9, "rows_rejected": 0, "files": files})
    assert rows["  5 files (logs/part-0.tsv, ...)"] == READ_AS_RAW
    assert rows["  logs/pandas.tsv"] == READ_AS_QUOTED
    assert not any("a.csv" in name for name in rows) and rows["files"] == 7


def test_evaluate_says_how_a_gold_file_that_decides_its_quoting_was_read(tmp_path):
    """The saved-back breaker's find: a Webis-SMC-12 file saved back by pandas is read as
    its writer quoted it, or raw where one field says so, and `evaluate` did not say which
    (a gold file read raw kept 72 queries in pandas' quotes, without a word). Its title
    and --json say it, as `ingest`'s summary does."""
    import pandas as pd

    from sessions.formats.dialect import READ_AS_QUOTED
    from sessions.formats.gold import WEBIS_COLUMNS

    queries = ['"free games"', "free games online", 'say "hi"', "hi there", "cats", "cat food"]
    rows = [(1 + i // 2 // 2, q, f"2012-01-01 10:{i:02d}:00", "", "", str(i // 2), "") for i, q in enumerate(queries)]
    path = tmp_path / "webis-saved.txt"
    pd.DataFrame(rows, columns=list(WEBIS_COLUMNS), dtype=str).to_csv(path, sep="\t", index=False)
    assert '"""free games"""' in path.read_text()
    evaluate = ["evaluate", "segmentation", "--gt", str(path), "--format", "webis-smc"]
    said = runner.invoke(app, [*evaluate, "--json"])
    assert said.exit_code == 0, said.output
    assert json.loads(said.output)["read_as"] == READ_AS_QUOTED
    printed = runner.invoke(app, evaluate)
    assert f"(read as {READ_AS_QUOTED})" in " ".join(printed.output.split()), printed.output


@pytest.mark.parametrize("fmt", ["aol", "table"])
def test_a_log_saved_with_pandas_index_is_told_so(tmp_path, fmt):
    """The saved-back breaker's find: pandas' default `to_csv(sep="\\t")` writes the
    frame's index as a first column without a name, and an AOL slice so saved was
    "nothing could be read ... a wrong --format, --map or time format is the usual
    cause". The cause said is the index. (A table by --map reads it: the column is not
    mapped.)"""
    import pandas as pd

    frame = pd.DataFrame({"AnonID": ["1001", "1001"], "Query": ["cats", "cat food"],
                          "QueryTime": ["2006-03-01 10:00:00", "2006-03-01 10:01:00"], "ItemRank": ["", ""],
                          "ClickURL": ["", ""]})  # fmt: skip
    path = tmp_path / "slice.tsv"
    frame.to_csv(path, sep="\t")
    read = ["--map", "user=AnonID,time=QueryTime,text=Query"] if fmt == "table" else []
    done = runner.invoke(app, ["ingest", str(path), "-f", fmt, *read, "-o", str(tmp_path / "out")])
    if fmt == "table":
        assert done.exit_code == 0, done.output
        return
    assert done.exit_code == 2 and done.output.strip().endswith(
        "its first line begins with a column without a name, as pandas writes a frame's index (to_csv without "
        "index=False): write it again with index=False"
    ), done.output


def test_mine_gold_on_a_table_without_that_label_names_the_map_key(tmp_path):
    """The mine breaker's find: `--gold mission` on a table mapped without `mission=` said
    "these events carry no gold_mission labels", not where a table's labels come from."""
    table = tmp_path / "g.csv"
    table.write_text("u,t,q,s\n1,2006-03-01 00:00:00,a,x\n1,2006-03-01 00:01:00,b,x\n")
    mined = runner.invoke(app, ["mine", str(table), "--gold", "mission", "-f", "table", "--map",
                                "user=u,time=t,text=q,session=s", "-o", str(tmp_path / "p")])  # fmt: skip
    assert mined.exit_code == 2 and not (tmp_path / "p").exists(), mined.output
    said = " ".join(mined.output.split())
    assert said == (f"error: --gold mission: no row of {table} has a mission label; a table's come from its column "
                    "named by --map ...,mission=COLUMN")  # fmt: skip
    # a log of another format without labels (a real AOL file) is told so by the same rule, not as "these events"
    log = tmp_path / "plain.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n")
    mined = runner.invoke(app, ["mine", str(log), "--gold", "session", "-f", "aol", "-o", str(tmp_path / "q")])
    assert mined.exit_code == 2 and mined.output.strip() == (
        f"error: --gold session: no row of {log} has a session label (format aol)"
    ), mined.output
    # ... and of its ingest output, by the format and --map its ingest read the log with (it said "(format None)":
    # the engines breaker's find)
    ingests = [([str(log), "-f", "aol"], " (format aol)"),
               ([str(table), "-f", "table", "--map", "user=u,time=t,text=q,session=s"],
                "; a table's come from its column named by --map ...,mission=COLUMN")]  # fmt: skip
    for i, (given, read) in enumerate(ingests):
        out = tmp_path / f"ingested-{i}"
        assert runner.invoke(app, ["ingest", *given, "-o", str(out)]).exit_code == 0
        gold = "session" if "aol" in read else "mission"
        mined = runner.invoke(app, ["mine", str(out), "--gold", gold, "-o", str(tmp_path / "r")])
        said = " ".join(mined.output.split())
        assert mined.exit_code == 2 and said == f"error: --gold {gold}: no row of {out} has a {gold} label{read}", said


def test_a_pyfunc_of_ones_own_is_refused_in_one_line_by_every_command_that_takes_a_session_model(gt, tmp_path, store):
    """A pyfunc of one's own, registered under a name of one's own, carries no kind: every
    command given it as a session model loads it and finds out. `evaluate pairs` printed a
    51-line traceback ("'M' object has no attribute 'calibration'", the scoring breaker's
    find) where the others said "is not a session model": one loader serves them all."""
    import mlflow
    import pandas as pd

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return pd.DataFrame({"p_same": [0.5] * len(model_input)})

    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["pandas"])
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "my-model")
    (tmp_path / "pairs.csv").write_text("query_a,query_b,label\ncats,cute cats,1\ncats,tax forms,0\n")
    uri, gayo = "models:/my-model/1", str(gt / "gayo.csv")
    commands = [
        ["evaluate", "pairs", "--pairs", str(tmp_path / "pairs.csv"), "--model", uri],
        ["evaluate", "segmentation", "--gt", gayo, "-f", "gayo-avello", "--model", uri],
        ["segment", gayo, "-f", "gayo-avello", "--model", uri, "-o", str(tmp_path / "s"), "--engine", "local"],
        ["score", gayo, "-f", "gayo-avello", "--session-model", uri, "-o", str(tmp_path / "t"), "--engine", "local"],
    ]
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and result.output.strip() == f"error: {uri} is not a session model", (
            command,
            result.output[-500:],
        )


@pytest.mark.parametrize("layout", ["parquet", "jsonl"])
@pytest.mark.parametrize("fmt", ["midjourney", "webis-smc", "table", "aol", "gayo-avello"])
def test_parquet_or_json_lines_named_alone_under_a_text_format_are_told_what_they_are(tmp_path, fmt, layout):
    """A breaker's finds: a Midjourney threads file as Parquet under `--format midjourney`
    was told its header line was not UTF-8 (convert it from Windows-1252), as JSON lines
    that it lacked `thread_id` among the columns `['{"text":"a dog in space"', ...]`.
    Every format of a header line says what the file is and how to read it, in one line;
    one whose header is optional or absent (AOL, Gayo-Avello) rejects the file's records
    and says the same of them."""
    from sessions.formats import ReadOptions
    from sessions.ingest import ingest

    frame = pl.DataFrame({"text": ["a dog in space"], "args": [None], "userid": [1], "timestamp": ["2023-01-21"]})
    path = tmp_path / "threads_0.csv"  # a table's layout is its name's: a .csv is read as text
    frame.write_parquet(path) if layout == "parquet" else frame.write_ndjson(path)
    held = {"parquet": "a Parquet file (its first bytes are PAR1)", "jsonl": "JSON lines (its first line is a JSON "
            "object)"}[layout]  # fmt: skip
    advice = f"it is {held}, read as text here: read it with --format table and a --map, under a name ending ."
    options = ReadOptions(map="user=userid,time=timestamp,text=text") if fmt == "table" else ReadOptions()
    if fmt in ("aol", "gayo-avello"):
        assert alone(path, fmt, tmp_path / "out").endswith(advice + layout)
        return
    with pytest.raises(ValueError) as refused:
        ingest([path], fmt, tmp_path / "out", options=options)
    assert str(refused.value) == f"{path}: --format {fmt} reads a delimited text log with a header line, and " + (
        advice + layout)  # fmt: skip
    # compressed, it is to be named so (a breaker's find: .parquet, where the file is a gzipped one)
    import gzip
    import re

    packed = tmp_path / "threads_0.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ValueError, match=re.escape(f"under a name ending .{layout}.gz")):
        ingest([packed], fmt, tmp_path / "out2", options=options)


@pytest.mark.parametrize("fmt", ["table", "midjourney", "webis-smc"])
def test_a_blank_line_before_the_header_is_told_in_one_line(tmp_path, fmt):
    """A breaker's find: a table whose first line is blank was an IndexError's traceback
    (Webis-SMC-12's was told it had no column 'UserID' among ['']); every format of a
    header line says the line is blank, in one line."""
    from sessions.formats import ReadOptions
    from sessions.ingest import ingest

    path = tmp_path / "log.csv"
    path.write_text("\n \r\nuser,time,text\na,1600000000,x\n")
    options = ReadOptions(map="user=user,time=time,text=text") if fmt == "table" else ReadOptions()
    with pytest.raises(ValueError) as refused:
        ingest([path], fmt, tmp_path / "out", options=options)
    assert str(refused.value) == (f"{path}: its first line is blank, where the header line naming its columns is "
                                  "read: remove the blank lines before the header")  # fmt: skip
