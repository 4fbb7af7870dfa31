"""`sessionflow annotate` and `evaluate reformulation` with a real hierarchy model
logged to a real MLflow store: labels, row accounting, and accuracy against
synthetic logs checked by an independent count."""

from __future__ import annotations

import json

import mlflow
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from models.encoder import load_encoder
from models.hierarchy import HierarchyTextModel, hierarchy_loss
from sessions.io import read_table
from sessions.reformulation import RATIO_GRID
from sessions.text import normalize
from synth import SynthConfig, write_log
from workflows.cli import app
from workflows.tracking.hierarchy_model import log_hierarchy_model

runner = CliRunner()
TEXTS = ["animal", "dog", "toy poodle", "cat", "persian cat"]
EDGES = [(1, 0), (2, 1), (2, 0), (3, 0), (4, 3), (4, 0)]  # child -> ancestor
LEVELS = [1, 1, 2, 1, 1, 2]


@pytest.fixture
def hierarchy_uri(store, tmp_path) -> str:
    """A tiny text model trained until its norms follow the levels (0.5 apart), logged."""
    model = HierarchyTextModel(load_encoder("tiny", seed=1), dim=3, seed=1)
    child, ancestor = torch.tensor([e[0] for e in EDGES]), torch.tensor([e[1] for e in EDGES])
    valid = torch.tensor([[k != c and (c, k) not in EDGES for k in range(5)] for c, _ in EDGES])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        points = model.embed(TEXTS)
        loss = hierarchy_loss(model, points[child], points[ancestor], points, valid, 10.0, 0.5, torch.tensor(LEVELS))
        loss.backward()
        optimizer.step()
    with mlflow.start_run():
        return log_hierarchy_model(model.save(tmp_path / "hierarchy"), "tiny")


def write_aol(path, rows) -> None:
    lines = ["AnonID\tQuery\tQueryTime\tItemRank\tClickURL", *("\t".join((*r, "", "")) for r in rows)]
    path.write_text("\n".join(lines) + "\n")


ROWS = [
    ("7", "animal", "2006-03-01 10:00:00"), ("7", "dog", "2006-03-01 10:01:00"),
    ("7", "toy poodle", "2006-03-01 10:02:00"), ("7", "Toy Poodle", "2006-03-01 10:02:30"),
    ("7", "dog", "2006-03-01 10:03:00"), ("7", "cat", "2006-03-01 10:04:00"),
    ("7", "persian cat", "2006-03-01 18:00:00"),  # a new session (time gap)
    ("8", "persian cat", "2006-03-02 09:00:00"), ("8", "animal", "2006-03-02 09:01:00"),
    ("8", "dog", "not a time"),  # rejected
]  # fmt: skip


def test_annotate_types_each_pair_and_accounts_for_every_row(hierarchy_uri, tmp_path):
    log = tmp_path / "log.tsv"
    write_aol(log, ROWS)
    segment = ["segment", str(log), "-f", "aol", "--method", "time", "--engine", "local", "-o", str(tmp_path / "s")]
    segmented = runner.invoke(app, segment)
    assert segmented.exit_code == 0, segmented.output
    done = runner.invoke(app, ["annotate", str(tmp_path / "s"), "--model", hierarchy_uri, "-o", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    got = read_table(tmp_path / "a" / "annotations.parquet").sort("row_id")
    assert got["reformulation"].to_list() == [
        None, "specialisation", "specialisation", "repeat", "generalisation", "lateral",
        None,
        None, "generalisation",
    ]  # fmt: skip
    spec = dict(zip(got["query"], got["specificity"], strict=False))
    assert spec["animal"] < spec["dog"] < spec["toy poodle"] and spec["cat"] < spec["persian cat"]
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["annotate"]["reformulations"] == {
        "start": 3, "specialisation": 2, "generalisation": 2, "lateral": 1, "repeat": 1,
    }  # fmt: skip
    # the model as the alias names it now, and the run behind it: still known when the alias moves
    from workflows.tracking.store import run_of

    model = report["annotate"]
    assert (model["model"], model["model_run"]) == (hierarchy_uri, f"{hierarchy_uri} -> run {run_of(hierarchy_uri)}")
    # its outputs are its own: the segment run's tables, settings and command are named apart, as that run's
    annotated = str(tmp_path / "a" / "annotations.parquet")
    assert report["outputs"] == {"annotations.parquet": annotated, "report.json": str(tmp_path / "a" / "report.json")}
    segmented_at = str(tmp_path / "s")
    assert report["segmented"]["output"] == segmented_at and report["segmented"]["config"]["output"] == segmented_at
    assert report["segmented"]["outputs"]["sessions.parquet"] == str(tmp_path / "s" / "sessions.parquet")
    assert "config" not in report and "command" in report["segmented"]
    assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (10, 9, 1)  # the segment run's rows
    assert "sessions from" in done.output and "queries: first of a session" in done.output

    # raw logs: sessions are found first (the default cascade), every row accounted for
    annotate = ["annotate", str(log), "--format", "aol", "--model", hierarchy_uri, "-o", str(tmp_path / "r")]
    raw = runner.invoke(app, annotate)
    assert raw.exit_code == 0, raw.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (10, 9, 1)
    again = read_table(tmp_path / "r" / "annotations.parquet").sort("row_id")
    assert again["row_id"].to_list() == got["row_id"].to_list()
    assert again["specificity"].to_list() == pytest.approx(got["specificity"].to_list())
    assert read_table(tmp_path / "r" / "rejected.parquet").height == 1
    assert set(report["outputs"]) == {"annotations.parquet", "sessions.parquet", "rejected.parquet", "report.json"}
    assert all(str(tmp_path / "r") in line for line in raw.output.splitlines() if ".parquet" in line)


def test_a_query_the_model_cannot_read_has_no_specificity_as_score_writes_it(hierarchy_uri, tmp_path):
    """A tester's find: `annotate` wrote NaN for a query the model reads as unknown tokens
    alone (emoji), where `score` writes null: a column's mean was NaN."""
    log = tmp_path / "log.tsv"
    write_aol(log, [("7", "cat photos", "2006-03-01 10:00:00"), ("7", "\U0001f600\U0001f525", "2006-03-01 10:00:05")])
    done = runner.invoke(app, ["annotate", str(log), "-f", "aol", "--model", hierarchy_uri, "-o", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    got = read_table(tmp_path / "a" / "annotations.parquet").sort("row_id")
    assert got["specificity"].is_null().to_list() == [False, True] and got["specificity"].is_nan().sum() == 0
    assert json.loads((tmp_path / "a" / "report.json").read_text())["annotate"]["unread_texts"] == 1
    assert "queries the model cannot read (no specificity) │ 1" in " ".join(done.output.split())


def test_evaluate_reformulation_agrees_with_an_independent_count(hierarchy_uri, tiny_taxonomy, tmp_path):
    for name, seed in (("dev", 1), ("test", 2)):
        write_log(SynthConfig(users=40, rows=3_000, style="aol", seed=seed), tiny_taxonomy, tmp_path / f"{name}.tsv")
    done = runner.invoke(
        app,
        ["evaluate", "reformulation", "--gt", str(tmp_path / "test.tsv"), "--tune-on", str(tmp_path / "dev.tsv"),
         "--model", hierarchy_uri, "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    results = json.loads(done.stdout)
    assert set(results) == {"hierarchy model", "term count", "always lateral"}

    log = pl.read_csv(tmp_path / "test.tsv", separator="\t", quote_char=None, infer_schema=False)
    log = log.with_columns(terms=normalize(pl.col("Query")).str.split(" "))
    judged = lateral = right = 0
    previous = (None, None)
    for session, terms, gold in log.select("gold_session", "terms", "gold_reformulation").iter_rows():
        terms = [t for t in terms if t]
        if session == previous[0] and gold in ("specialisation", "generalisation", "lateral"):
            judged += 1
            lateral += gold == "lateral"
            removed = [t for t in previous[1] if t not in terms]
            added = [t for t in terms if t not in previous[1]]
            if not removed and not added:
                guess = "repeat"
            elif not removed or (added and len(added) > len(removed)):
                guess = "specialisation"
            elif not added or len(added) < len(removed):
                guess = "generalisation"
            else:
                guess = "lateral"
            right += guess == gold
        previous = (session, terms)
    assert judged > 100 and results["always lateral"]["pairs"] == judged
    assert results["always lateral"]["accuracy"] == pytest.approx(lateral / judged, abs=1e-4)
    assert results["term count"]["accuracy"] == pytest.approx(right / judged, abs=1e-4)
    model = results["hierarchy model"]
    assert model["ratio"] in RATIO_GRID and sum(model["confusion"]["specialisation"].values()) > 0
    assert model["ratio_at_grid_end"] == (model["ratio"] in (RATIO_GRID[0], RATIO_GRID[-1]))


@pytest.mark.parametrize("where", ["--gt", "--tune-on"])
def test_evaluate_reformulation_of_a_log_with_nothing_to_judge_says_so(hierarchy_uri, tiny_taxonomy, tmp_path, where):
    """A one-row synthetic log (the breaking helper's) gave accuracy and recalls of 0.000 and
    exit 0: 0 of 0 pairs. Now one line, for the log judged and the log the ratio is tuned on."""
    write_log(SynthConfig(users=1, rows=1, style="aol", seed=1), tiny_taxonomy, tmp_path / "one.tsv")
    write_log(SynthConfig(users=20, rows=1_000, style="aol", seed=2), tiny_taxonomy, tmp_path / "log.tsv")
    logs = {"--gt": "log.tsv", "--tune-on": "log.tsv", where: "one.tsv"}
    given = [word for option, name in logs.items() for word in (option, str(tmp_path / name))]
    done = runner.invoke(app, ["evaluate", "reformulation", "--model", hierarchy_uri, *given])
    assert done.exit_code == 2 and done.output.strip() == (
        f"error: {tmp_path / 'one.tsv'}: no query in it is a specialisation, generalisation or lateral "
        "reformulation of the one before it in its gold session: nothing to judge (a log of sessions of two or "
        "more queries has them)"
    ), done.output


def test_evaluate_reformulation_tuned_on_the_log_it_judges_is_refused(hierarchy_uri, tiny_taxonomy, tmp_path):
    """The breaking helper's find: `--tune-on` the `--gt` file itself chose the ratio on the
    pairs it then scored (0.7 there), and printed that accuracy without a word."""
    write_log(SynthConfig(users=20, rows=1_000, style="aol", seed=2), tiny_taxonomy, tmp_path / "log.tsv")
    (tmp_path / "same.tsv").symlink_to(tmp_path / "log.tsv")
    for tune_on in ("log.tsv", "same.tsv"):
        done = runner.invoke(app, ["evaluate", "reformulation", "--model", hierarchy_uri, "--gt",
                                   str(tmp_path / "log.tsv"), "--tune-on", str(tmp_path / tune_on)])  # fmt: skip
        assert done.exit_code == 2 and done.output.strip().startswith(
            f"error: --tune-on {tmp_path / tune_on} is the --gt log itself"), done.output  # fmt: skip


def test_evaluate_reformulation_of_a_lookup_table_says_what_it_is(hierarchy_uri, tiny_taxonomy, tmp_path):
    """A tester's find: a lookup table's URI got MLflow's "Could not find an MLmodel
    configuration file" where `annotate` and `score` say what the run holds."""
    write_log(SynthConfig(users=20, rows=1_000, style="aol", seed=2), tiny_taxonomy, tmp_path / "log.tsv")
    (tmp_path / "points").mkdir()
    (tmp_path / "points" / "points.npy").write_bytes(b"x")
    with mlflow.start_run() as run:  # what `train hierarchy --model lookup` logs: its points, no model
        mlflow.log_artifacts(str(tmp_path / "points"), "table")
    uri = f"runs:/{run.info.run_id}/table"
    done = runner.invoke(app, ["evaluate", "reformulation", "--model", uri, "--gt", str(tmp_path / "log.tsv")])
    assert done.exit_code == 2 and done.output.strip() == (
        f"error: {uri}: a lookup table (train hierarchy --model lookup), whose points are its data's nodes: it "
        "reads no text; this takes a hierarchy model"), done.output  # fmt: skip


def test_annotate_into_its_own_earlier_output_leaves_nothing_of_that_run(hierarchy_uri, tmp_path):
    """An annotation of a raw log writes sessions, rejected rows and annotations; one of
    a `segment` output into the same directory writes annotations only, and the first
    run's sessions and rejected rows stayed beside them, of another log (a tester's
    find). Now the earlier run's outputs go first, and the directory holds this run's."""
    log = tmp_path / "log.tsv"
    write_aol(log, ROWS)
    segment = ["segment", str(log), "-f", "aol", "--method", "time", "--engine", "local", "-o", str(tmp_path / "s")]
    assert runner.invoke(app, segment).exit_code == 0
    out = str(tmp_path / "a")
    raw = runner.invoke(app, ["annotate", str(log), "--format", "aol", "--model", hierarchy_uri, "-o", out])
    assert raw.exit_code == 0 and {"sessions.parquet", "rejected.parquet"} <= {
        p.name for p in (tmp_path / "a").iterdir()
    }
    again = runner.invoke(app, ["annotate", str(tmp_path / "s"), "--model", hierarchy_uri, "-o", out])
    assert again.exit_code == 0, again.output
    left = {p.name for p in (tmp_path / "a").iterdir()}
    assert left == {"annotations.parquet", "report.json"}, left  # the sessions and rejected rows are the input's


def test_the_output_of_another_job_is_refused_naming_what_annotate_reads(hierarchy_uri, tmp_path):
    """A `score` output given to annotate was refused as "this one reads raw logs (with
    --format) or an `ingest` output", leaving out the `segment` output it reads too."""
    log = tmp_path / "log.tsv"
    write_aol(log, ROWS)
    assert (
        runner.invoke(app, ["segment", str(log), "-f", "aol", "--engine", "local", "-o", str(tmp_path / "s")]).exit_code
        == 0
    )
    assert (
        runner.invoke(app, ["mine", str(tmp_path / "s"), "--engine", "local", "-o", str(tmp_path / "p")]).exit_code == 0
    )
    done = runner.invoke(app, ["annotate", str(tmp_path / "p"), "--model", hierarchy_uri, "-o", str(tmp_path / "a")])
    said = (
        "the output of another job; annotate reads a `segment` output, a sessions table, an `ingest` output or raw logs"
    )
    assert done.exit_code == 2 and said in done.output and not (tmp_path / "a").exists()


def test_annotate_of_a_job_output_given_read_settings_refuses_them(hierarchy_uri, tmp_path):
    """A `segment` or `ingest` output holds events read already: --format, --timezone and
    the other read settings given with it would change nothing, so they are refused."""
    log = tmp_path / "log.tsv"
    write_aol(log, ROWS)
    for job in ("segment", "ingest"):
        done = runner.invoke(app, [job, str(log), "-f", "aol", "--engine", "local", "-o", str(tmp_path / job)])
        assert done.exit_code == 0, done.output
        kind = f"a `{job}` output" if job == "segment" else "an `ingest` output"
        out = tmp_path / f"a-{job}"
        result = runner.invoke(app, ["annotate", str(tmp_path / job), "--model", hierarchy_uri, "-o", str(out),
                                     "--timezone", "Europe/Rome"])  # fmt: skip
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert f"{kind}, its events read already" in lines[0] and "--timezone reads raw logs" in lines[0], lines[0]
        assert not out.exists()


def test_annotate_reads_a_sessions_table_of_ones_own_with_its_sessions(hierarchy_uri, tmp_path):
    """A sessions table written back by pandas (`mine` reads one): in a directory as
    sessions.parquet, annotate said "give the file itself", and the file itself was a log
    that needed --format and was segmented again, its sessions ignored (the scoring
    breaker's find). It is read as it is, in the directory or by its path, its own
    sessions kept: every row of user 7 in one session gives one start, not two."""
    log = tmp_path / "log.tsv"
    write_aol(log, ROWS)
    segment = ["segment", str(log), "-f", "aol", "--method", "time", "--engine", "local", "-o", str(tmp_path / "s")]
    assert runner.invoke(app, segment).exit_code == 0
    own = tmp_path / "own"
    own.mkdir()
    frame = read_table(tmp_path / "s" / "sessions.parquet").to_pandas()
    frame.loc[frame["user_id"] == "7", "session_id"] = "7/all"  # one session where the time rule found two
    frame.to_parquet(own / "sessions.parquet", index=False)
    for given in (own, own / "sessions.parquet"):
        out = tmp_path / f"a-{given.name}"
        done = runner.invoke(app, ["annotate", str(given), "--model", hierarchy_uri, "-o", str(out)])
        assert done.exit_code == 0, done.output
        report = json.loads((out / "report.json").read_text())
        assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (9, 9, 0)
        assert report["annotate"]["reformulations"]["start"] == 2  # user 7's one session, user 8's
        got = read_table(out / "annotations.parquet")
        assert got.group_by("user_id").agg(pl.col("session_id").n_unique()).sort("user_id").rows() == [
            ("7", 1),
            ("8", 1),
        ]
        assert got.filter(pl.col("user_id") == "7")["session_id"].unique().to_list() == ["7/all"]
    # session ids numbered per user, as integers (`0, 1, ...`): a new user starts a new session (the change breaker's
    # find: user 8's first query was typed against user 7's last, both in "session 0")
    segmented = pl.from_pandas(frame).sort("user_id", "ts", "row_id")  # user 7 in one session, user 8 in one
    numbered = segmented.with_columns(pl.col("session_id").rank("dense").over("user_id").cast(pl.Int64) - 1)
    numbered = numbered.with_columns(pl.col("user_id").cast(pl.Int64))  # users too (AOL's AnonIDs): were refused
    numbered.write_parquet(own / "numbered.parquet")
    done = runner.invoke(app, ["annotate", str(own / "numbered.parquet"), "--model", hierarchy_uri, "-o",
                               str(tmp_path / "n")])  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "n" / "report.json").read_text())
    assert numbered["session_id"].to_list() == [0] * 9  # each user's session 0
    assert report["annotate"]["reformulations"]["start"] == segmented["session_id"].n_unique() == 2
    firsts = (
        read_table(tmp_path / "n" / "annotations.parquet").sort("user_id", "ts", "row_id").group_by("user_id").first()
    )
    assert firsts["reformulation"].to_list() == [None, None]
    assert firsts["user_id"].dtype == pl.Int64  # the table's own ids, kept as given
    # pandas' `category` columns (a prompt-log breaker's user_id was refused as Categorical by mine and annotate)
    segmented.with_columns(pl.col("user_id", "query", "session_id", "mission_id").cast(pl.Categorical)).write_parquet(
        own / "categories.parquet"
    )
    done = runner.invoke(app, ["annotate", str(own / "categories.parquet"), "--model", hierarchy_uri, "-o",
                               str(tmp_path / "k")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert read_table(tmp_path / "k" / "annotations.parquet").sort("row_id").drop("user_id", "query", "session_id",
           "mission_id").equals(read_table(out / "annotations.parquet").sort("row_id").drop("user_id", "query",
           "session_id", "mission_id"))  # fmt: skip
    refused = runner.invoke(app, ["annotate", str(own), "--format", "aol", "--model", hierarchy_uri, "-o",
                                  str(tmp_path / "b")])  # fmt: skip
    assert refused.exit_code == 2 and "a sessions table, its events read already by whatever wrote it" in refused.output
    frame.drop(columns="mission_id").to_parquet(own / "sessions.parquet", index=False)
    refused = runner.invoke(app, ["annotate", str(own), "--model", hierarchy_uri, "-o", str(tmp_path / "c")])
    assert (
        refused.exit_code == 2
        and "no column mission_id: annotate reads the sessions `segment` writes" in refused.output
    )
