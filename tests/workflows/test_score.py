"""`sessionflow score` on a real local Ray with models logged to a real MLflow store: a
job killed half-way and resumed, every row accounted for, the scores equal to what
the models give row by row and to the local engine's sessions."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import polars as pl
import psutil
import pyarrow.dataset as ds
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from models.calibration import Calibration
from models.encoder import load_encoder
from models.hierarchy import HierarchyTextModel
from sessions.io import read_table
from sessions.missions import MissionConfig
from sessions.pipeline import segment_logs
from sessions.reformulation import reformulation_types
from sessions.segment import SegmentConfig
from synth import SynthConfig, write_log
from workflows.cli import app
from workflows.tracking.hierarchy_model import HierarchyGeometry, log_hierarchy_model
from workflows.tracking.session_model import SessionScorer, log_session_model

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]
runner = CliRunner()


@pytest.fixture
def models(store, tmp_path) -> tuple[str, str]:
    """A tiny session model (random encoder, a steep calibration) and a tiny hierarchy model, logged."""
    with mlflow.start_run():
        encoder = load_encoder("tiny", seed=3)
        session = log_session_model(encoder.save(tmp_path / "enc"), Calibration(40.0, -36.0), "tiny", tmp_path / "w")
        hierarchy = HierarchyTextModel(load_encoder("tiny", seed=4), dim=3, seed=4)
        hierarchy_uri = log_hierarchy_model(hierarchy.save(tmp_path / "hier"), "tiny")
    return session, hierarchy_uri


def read_scores(path) -> pl.DataFrame:
    table = ds.dataset(str(path)).to_table()
    frame = pl.from_arrow(table.drop(["embedding"]) if "embedding" in table.column_names else table)
    if "embedding" in table.column_names:
        vectors = np.stack(table["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
        frame = frame.with_columns(embedding=pl.Series(vectors))
    return frame.sort("row_id")


def _descendants_killed(process: subprocess.Popen) -> None:
    tree = psutil.Process(process.pid).children(recursive=True)
    for p in [*tree, psutil.Process(process.pid)]:
        with contextlib.suppress(psutil.Error):
            p.kill()
    process.wait(timeout=60)


def test_a_killed_job_started_again_finishes_only_what_is_missing_and_scores_equal_the_models(
    models, tiny_taxonomy, tmp_path
):
    """A job killed half-way and started again finishes only what is missing, and gives
    what the models give row by row and the local engine's sessions: what an
    uninterrupted job gives (an uninterrupted run is not repeated here: each costs
    tens of seconds)."""
    session_uri, hierarchy_uri = models
    log = tmp_path / "log.tsv"
    write_log(SynthConfig(users=120, rows=10_000, style="aol", seed=4), tiny_taxonomy, log)
    with log.open("a") as f:
        f.write("999\tbroken row\tnot a time\t\t\n")

    def command(out) -> list[str]:
        return [sys.executable, "-m", "workflows", "score", str(log), "-f", "aol", "--session-model", session_uri,
                "--hierarchy-model", hierarchy_uri, "--embeddings", "--workers", "1", "--buckets", "16",
                "--engine", "ray", "-o", str(out)]  # fmt: skip

    # The job's driver runs on the module's Ray, as a job submitted to a cluster does: killed,
    # its tasks and actors die with it (a job that started a Ray of its own takes it down too).
    import ray

    address = ["--address", ray.get_runtime_context().gcs_address]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    job = subprocess.Popen(command(tmp_path / "cut") + address, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    encoded = tmp_path / "cut" / ".score-work" / "encoded"
    deadline = time.monotonic() + 300
    while job.poll() is None and len(list(encoded.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.poll() is None, f"the job ended (status {job.returncode}) before it was to be killed"
    _descendants_killed(job)
    done_before = len(list(encoded.glob("*.json")))
    assert 2 <= done_before < 16, "the job was not stopped half-way"
    assert not (tmp_path / "cut" / "scores.parquet").exists()

    again = runner.invoke(app, command(tmp_path / "cut")[3:])  # started again, here (the module's Ray)
    assert again.exit_code == 0, again.output
    report = json.loads((tmp_path / "cut" / "report.json").read_text())
    assert report["resumed"]["stage"] == 1 and report["resumed"]["encode"] >= done_before
    assert report["encoders"]["actors"] == 1 and "note" not in report["encoders"]  # --workers 1
    assert re.search(rf"encoding actors +│ 1 \({report['encoders']['cpus_each']} CPU each\)", again.output)

    resumed = read_scores(tmp_path / "cut" / "scores.parquet")
    assert resumed.height == report["rows_ok"] == 10_000
    check_scores_against_the_models(resumed, tmp_path / "cut", log, models, tmp_path)

    # the in-process engine (what `--engine auto` takes for a log this small) gives the same scores
    local_command = [a for a in command(tmp_path / "one")[3:] if a != "ray"]
    local_command[local_command.index("--engine") + 1 : local_command.index("--engine") + 1] = ["local"]
    done = runner.invoke(app, local_command)
    assert done.exit_code == 0, done.output
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    assert (one["config"]["engine"], report["config"]["engine"]) == ("local", "ray")  # where every data job has it
    assert (one["config"]["engine_reason"], report["config"]["engine_reason"]) == (
        "--engine local; --workers and --buckets are the ray engine's: not used", "--engine ray")  # fmt: skip
    assert {k: one[k] for k in ("rows_in", "rows_ok", "rows_rejected", "distinct_texts", "sessions")} == {
        k: report[k] for k in ("rows_in", "rows_ok", "rows_rejected", "distinct_texts", "sessions")}  # fmt: skip
    local = read_scores(tmp_path / "one" / "scores.parquet")
    assert local["session_id"].to_list() == resumed["session_id"].to_list()
    assert local["reformulation"].to_list() == resumed["reformulation"].to_list()
    np.testing.assert_allclose(local["p_same_prev"].to_numpy(), resumed["p_same_prev"].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(local["specificity"].to_numpy(), resumed["specificity"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.stack(local["embedding"].to_numpy()), np.stack(resumed["embedding"].to_numpy()),
                               atol=2e-3)  # fmt: skip
    differ = local.filter(pl.col("mission_id") != resumed["mission_id"])  # a link on the threshold (see below)
    assert differ["user_id"].n_unique() <= 3, differ["user_id"].unique().to_list()
    assert read_table(tmp_path / "one" / "rejected.parquet")["row_id"].to_list() == [10_000]


def check_scores_against_the_models(scores: pl.DataFrame, out, log, models: tuple[str, str], tmp_path) -> None:
    """Every row accounted for; each score what the models give for that row; sessions
    those of the local engine with the same model."""
    session_uri, hierarchy_uri = models
    report = json.loads((out / "report.json").read_text())
    assert (report["rows_in"], report["rows_ok"], report["rows_rejected"]) == (10_001, 10_000, 1)
    assert not (out / ".score-work").exists()
    assert scores["row_id"].to_list() == list(range(10_000))  # the rejected row is the last one
    assert read_table(out / "rejected.parquet")["row_id"].to_list() == [10_000]
    assert report["distinct_texts"] == scores["query"].n_unique()

    # p_same_prev: the model's own p_same of each (previous, current) query of a user
    model = SessionScorer(session_uri)
    ordered = scores.sort("user_id", "ts", "row_id")
    prev = ordered.with_columns(prev=pl.col("query").shift(1).over("user_id")).filter(pl.col("prev").is_not_null())
    expected = model(prev["prev"], prev["query"])
    assert np.allclose(prev["p_same_prev"].to_numpy(), expected, atol=1e-5)
    assert ordered.group_by("user_id").agg(pl.col("p_same_prev").first().is_null())["p_same_prev"].all()
    assert 0.05 < (prev["p_same_prev"] >= 0.5).mean() < 0.95  # the calibration makes both decisions happen
    vectors = model.embed(scores["query"])
    assert np.allclose(np.stack(scores["embedding"].to_numpy()), vectors, atol=2e-3)  # float16

    # sessions and missions: those of `segment --method cascade --model` on the local engine
    local = segment_logs([log], "aol", tmp_path / "local", SegmentConfig(method="cascade"), MissionConfig(),
                         scorer=model, embedder=model)  # fmt: skip
    assert local.rows_out == 10_000
    sessions = read_table(tmp_path / "local" / "sessions.parquet").sort("row_id")
    assert scores["session_id"].to_list() == sessions["session_id"].to_list()
    # Missions compare centroids of session vectors with a threshold: the two paths encode
    # in batches of other lengths (float noise of ~1e-7), which can flip a link that sits
    # on the threshold (a fresh clone met one among 25 users, renumbering that user's missions).
    differ = scores.with_columns(ref=sessions["mission_id"]).filter(pl.col("mission_id") != pl.col("ref"))
    assert differ["user_id"].n_unique() <= 3, differ["user_id"].unique().to_list()  # of 120

    # specificity and reformulation: the hierarchy model's norms, and what `annotate` types on these sessions
    geometry = HierarchyGeometry.load(hierarchy_uri)
    in_order = scores.sort("session_id", "session_seq")
    assert np.allclose(in_order["specificity"].to_numpy(), geometry.specificity(in_order["query"]), atol=1e-6)
    assert in_order["reformulation"].to_list() == reformulation_types(in_order, geometry).to_list()
    assert set(in_order["reformulation"].drop_nulls()) == {"specialisation", "generalisation", "lateral", "repeat"}
    firsts = scores.filter(pl.col("session_seq") == 0)
    assert firsts["reformulation"].null_count() == firsts.height


def test_a_log_without_one_good_row_fails_naming_why_and_leaves_no_output(models, tmp_path):
    session_uri, _ = models
    log = tmp_path / "bad.tsv"
    log.write_text(
        "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n7\tdog\tnot a time\t\t\n8\t\t2006-03-01 10:00:00\t\t\n"
    )
    done = runner.invoke(
        app, ["score", str(log), "-f", "aol", "--session-model", session_uri, "-o", str(tmp_path / "o")]
    )
    assert done.exit_code == 2
    assert "nothing could be read: all 2 records were rejected, most as bad_time (1), empty_text (1)" in done.output
    assert not (tmp_path / "o").exists()


def test_the_onnx_int8_backend_is_exported_once_logged_beside_the_model_and_scores_what_it_gives(
    models, store, tmp_path
):
    """`--backend onnx-int8`: the session model's encoder exported once (logged in the
    model's run as onnx/), the job encodes with it (in one process: `--engine auto` on a log
    this small), the report names the backend and the engine, and
    p_same_prev is the calibration of the int8 vectors' dot products, row by row."""
    from models.onnx_encoder import OnnxTextEncoder
    from sessions.segment import user_time_order
    from workflows.tracking.session_model import CALIBRATION_FILE, onnx_encoder_dir, onnx_export_location

    session_uri, _ = models
    log = tmp_path / "log.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n" + "".join(
        f"{u}\t{q}\t2006-03-01 10:{m:02d}:00\t\t\n" for u in (1, 2) for m, q in
        enumerate(["cute cats", "cute cat toys", "cat food", "new york", "weather"])))  # fmt: skip
    exported = []
    leftover = tmp_path / "b" / ".score-work"  # an interrupted Ray job's work in the output, its job.json first
    leftover.mkdir(parents=True)
    (leftover / "job.json").write_text("{}")
    (leftover / "staged.json").write_text("{}")
    for out in ("a", "b"):
        done = runner.invoke(app, ["score", str(log), "-f", "aol", "--session-model", session_uri,
                                   "--backend", "onnx-int8", "-o", str(tmp_path / out)])  # fmt: skip
        assert done.exit_code == 0, done.output
        assert "engine" in done.output and "resumed" not in done.output  # one process: it names itself, never resumes
        run_id, path = onnx_export_location(session_uri)
        logged = Path(store.get_run(run_id).info.artifact_uri.removeprefix("file://")) / path
        exported.append((logged / "model-int8.onnx").stat().st_mtime_ns)
    assert exported[0] == exported[1]  # exported by the first job only
    assert not leftover.exists()  # the finished output holds no other job's work for a later run to trust
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["backend"] == "onnx-int8" and report["rows_out"] == 10 and report["config"]["engine"] == "local"
    logged = [a.path for a in store.list_artifacts(run_id, path)]
    assert path.startswith("onnx/") and {f"{path}/{name}" for name in ("model.onnx", "model-int8.onnx",
                                                                      CALIBRATION_FILE)} <= set(logged)  # fmt: skip

    directory = onnx_encoder_dir(session_uri)
    calibration = Calibration(**json.loads((Path(directory) / CALIBRATION_FILE).read_text()))
    scores = user_time_order(read_scores(tmp_path / "b" / "scores.parquet"))
    vectors = OnnxTextEncoder(directory, "onnx-int8").encode(scores["query"].to_list())
    dots = (vectors[1:] * vectors[:-1]).sum(1)
    same_user = (scores["user_id"][1:] == scores["user_id"][:-1]).to_numpy()
    np.testing.assert_allclose(scores["p_same_prev"].to_numpy()[1:][same_user], calibration(dots[same_user]),
                               atol=1e-4)  # fmt: skip


def test_two_session_models_of_one_run_each_have_their_own_onnx_export(store, tmp_path):
    """The code reviewer's find: the export was logged and cached by the model's run
    alone, so the second session model that a run logged (a notebook's, a sweep's) was
    scored with the first one's export: its ONNX vectors were 0.676 from its own."""
    from models.onnx_encoder import OnnxTextEncoder
    from workflows.tracking.session_model import SessionScorer, load_onnx_session, onnx_export_location

    with mlflow.start_run():
        uris = [log_session_model(load_encoder("tiny", seed=seed).save(tmp_path / f"enc{seed}"),
                                  Calibration(40.0, -36.0 - seed), "tiny", tmp_path / f"w{seed}")
                for seed in (1, 2)]  # fmt: skip
    texts = ["cheap flights", "new york weather", "cute cats"]
    for uri, seed in zip(uris, (1, 2), strict=True):
        encoder, calibration = load_onnx_session(uri, "onnx", 1)
        assert isinstance(encoder, OnnxTextEncoder)
        np.testing.assert_allclose(encoder.encode(texts), SessionScorer(uri).encoder.encode(texts), atol=1e-5)
        assert calibration["intercept"] == -36.0 - seed
    assert len({onnx_export_location(uri) for uri in uris}) == 2


def test_an_onnx_export_a_stopped_job_logged_in_part_is_made_again(models, store, tmp_path):
    """A `score --backend onnx-int8` stopped while it logged the export left part of it in
    the model's run (a cut-off model-int8.onnx, no calibration) and every later job failed
    on it, on either engine, leaving a staging folder each time: an export counts only
    with its marker, logged last, and a local copy without it is replaced. A damaged
    export is one line, not ONNX Runtime's traceback."""
    import tempfile

    from models.onnx_encoder import OnnxTextEncoder
    from workflows.tracking import session_model

    load_onnx_session, onnx_calibration = session_model.load_onnx_session, session_model.onnx_calibration
    onnx_encoder_dir, EXPORT_COMPLETE = session_model.onnx_encoder_dir, session_model.EXPORT_COMPLETE

    session_uri, _ = models
    run_id, path = session_model.onnx_export_location(session_uri)
    key = Path(path).name
    part = tmp_path / "part" / "onnx"
    part.mkdir(parents=True)
    (part / "model-int8.onnx").write_bytes(b"\x08\x07" * 1000)  # cut off
    (part / "tokenizer_config.json").write_text("{}")
    store.log_artifacts(run_id, str(part), path)
    cache = Path(tempfile.gettempdir()) / "sessionflow-onnx"
    (cache / key).mkdir(parents=True, exist_ok=True)  # a copy of the part, as the first rerun made
    (cache / key / "model-int8.onnx").write_bytes(b"\x08\x07")
    log = tmp_path / "log.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcute cats\t2006-03-01 10:00:00\t\t\n"
                   "1\tcat toys\t2006-03-01 10:01:00\t\t\n")  # fmt: skip
    done = runner.invoke(app, ["score", str(log), "-f", "aol", "--session-model", session_uri,
                               "--backend", "onnx-int8", "-o", str(tmp_path / "out")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert EXPORT_COMPLETE in {Path(a.path).name for a in store.list_artifacts(run_id, path)}
    assert (cache / key / EXPORT_COMPLETE).is_file()
    assert not list(cache.glob(f".{key}-*"))  # no staging folder left
    directory = onnx_encoder_dir(session_uri)
    assert OnnxTextEncoder(directory, "onnx-int8").encode(["cute cats"]).shape[0] == 1
    (Path(directory) / "model-int8.onnx").write_bytes(b"\x08\x07")  # damaged by hand
    with pytest.raises(ValueError, match=r"no whole ONNX export of a session model here \(") as refused:
        OnnxTextEncoder(directory, "onnx-int8")
    assert "\n" not in str(refused.value)
    (Path(directory) / "calibration.json").write_text("{bad")  # a bare JSON error had named no file
    with pytest.raises(ValueError, match=rf"^{directory}/calibration.json: the export's calibration cannot be read"):
        onnx_calibration(directory)
    # the score breaker's find: a damaged export in the store was named by its local copy alone,
    # which, deleted, came back as damaged from the store; the message names the store's copy too
    stored = f"{store.get_run(run_id).info.artifact_uri}/{path}"
    with pytest.raises(ValueError, match=rf"\(the store's copy, of run {run_id}: {re.escape(stored)}\)$") as refused:
        load_onnx_session(session_uri, "onnx-int8", 1)
    assert str(refused.value).startswith(f"{directory}: no whole ONNX export") and "\n" not in str(refused.value)
    # the Ray engine says it in one line too, before any actor starts (each actor's traceback, 290 lines, before)
    (Path(directory) / "calibration.json").write_text(json.dumps(Calibration(40.0, -36.0).to_dict()))
    for engine in ("local", "ray"):
        done = runner.invoke(app, ["score", str(log), "-f", "aol", "--session-model", session_uri, "--backend",
                                   "onnx-int8", "--engine", engine, "-o", str(tmp_path / f"out-{engine}")])  # fmt: skip
        said = done.output.strip()
        assert done.exit_code == 2 and len(said.splitlines()) == 1 and "no whole ONNX export" in said, done.output


@pytest.mark.parametrize("damage", ["weights cut short", "weights deleted", "calibration NaN"])
def test_a_session_model_whose_files_are_damaged_is_one_line_wherever_it_is_loaded(models, store, tmp_path, damage):
    """The breaking helper's finds: a registered session model whose weight file was cut
    short (a partial copy, a full disk) ended `score` and `evaluate pairs` in
    safetensors' traceback, where `promote` said it in one line; a calibration of `NaN`
    was promoted, and `score` wrote every probability as missing. Each is one line now,
    and `score` leaves no output."""
    session_uri, _ = models
    location = Path(urlparse(mlflow.get_logged_model(session_uri.split("/")[-1]).artifact_location).path)
    if damage == "weights cut short":
        weights = next(location.rglob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "weights deleted":  # `score` said "no model there (OSError)" of a model that is there
        next(location.rglob("*.safetensors")).unlink()
    else:
        next(location.rglob("calibration.json")).write_text('{"slope": NaN, "intercept": 0.0}')
    version = mlflow.register_model(session_uri, "session-model").version
    log = tmp_path / "log.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcute cats\t2006-03-01 10:00:00\t\t\n"
                   "1\tcat toys\t2006-03-01 10:01:00\t\t\n")  # fmt: skip
    (tmp_path / "pairs.csv").write_text("query_a,query_b,label\ncats,kittens,1\nbank,pizza,0\n")
    for args in (["score", str(log), "-f", "aol", "--session-model", session_uri, "-o", str(tmp_path / "out")],
                 ["evaluate", "pairs", "--model", session_uri, "--pairs", str(tmp_path / "pairs.csv")],
                 ["promote", "session-model", str(version)]):  # fmt: skip
        refused = runner.invoke(app, args)
        assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
        said = [line for line in refused.output.splitlines() if line.startswith("error: ")]  # beside weights' bars
        assert len(said) == 1 and "its model files cannot be read (" in said[0], refused.output
    assert not (tmp_path / "out").exists()


def test_a_pair_with_a_missing_query_has_no_probability(models):
    """The breaking helper's find: the registered pyfunc scored a missing query (None, NaN)
    as the empty text, p_same 0.63: "same session". Such a pair's p_same and score are NaN,
    as are an empty query's, which has no token for the model to read (`unread_texts`)."""
    import pandas as pd

    session_uri, _ = models
    out = mlflow.pyfunc.load_model(session_uri).predict(
        pd.DataFrame({"query_a": [None, np.nan, "", "cats"], "query_b": ["baz", "baz", "baz", None]}))  # fmt: skip
    assert out["p_same"].isna().to_list() == [True, True, True, True] and out["score"].isna().sum() == 4


def test_evaluate_pairs_scores_a_pair_the_model_cannot_read_as_no_evidence(models, tmp_path):
    """The code reader's find: the pyfunc answers NaN for a pair with a query the model
    cannot read (emoji alone), and `evaluate pairs` ended in scikit-learn's "Input
    contains NaN". Such a pair scores the p_same of a dot product of 0, as training's
    validation scores it, and is counted."""
    from workflows.jobs.evaluate_pairs import evaluate_pairs, read_pairs
    from workflows.tracking import session_model

    session_uri, _ = models
    (tmp_path / "pairs.csv").write_text("query_a,query_b,label\ncats,kittens,1\n\U0001f431,\U0001f600\U0001f525,1\n"
                                        "bank,pizza,0\ncats,\U0001f431,0\n")  # fmt: skip
    done = runner.invoke(app, ["evaluate", "pairs", "--model", session_uri, "--pairs", str(tmp_path / "pairs.csv"),
                               "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    assert shown["unread_pairs"] == 2 and all(0 <= m["auc"] <= 1 for m in shown["metrics"].values())
    result = evaluate_pairs(session_uri, read_pairs(tmp_path / "pairs.csv")[0])
    no_evidence = session_model.p_same_at(session_model.load(session_uri), 0.0)
    assert result.pairs["p_same"].to_list()[1::2] == pytest.approx([no_evidence] * 2)
    assert not np.isnan(result.pairs["p_same"].to_numpy()).any()
    right, wrong = result.examples(5)  # a new user's find: unread pairs were listed as the most confident
    assert set(right["query_a"]) | set(wrong["query_a"]) == {"cats", "bank"} and right.height + wrong.height == 2


def test_a_runs_uri_without_the_models_path_names_the_model_the_run_logged(models):
    """A tester's find: `runs:/RUN` of a run that logged a session model said "run RUN
    logs no model": MLflow 3 keeps a run's models apart from its files."""
    from workflows.tracking.store import require_model, run_of

    run = run_of(models[0])
    with pytest.raises(ValueError, match=rf"^runs:/{run}: no model at this path; run {run} logs runs:/{run}/model;"):
        require_model(f"runs:/{run}", ("hierarchy",))


def test_a_baseline_that_is_no_encoder_is_refused_naming_the_option(models, tmp_path):
    """The breaking helper's find: `evaluate pairs --baseline` of no encoder ended in
    transformers' message (a Hub repo id's rules, a missing `model_type`), naming no
    option, as `train session --model` does."""
    session_uri, _ = models
    (tmp_path / "pairs.csv").write_text("query_a,query_b,label\ncats,kittens,1\nbank,pizza,0\n")
    for baseline in ("models:/session-model/2", str(tmp_path)):
        refused = runner.invoke(app, ["evaluate", "pairs", "--model", session_uri, "--pairs",
                                      str(tmp_path / "pairs.csv"), "--baseline", baseline])  # fmt: skip
        assert refused.exit_code == 2 and refused.output.startswith(f"error: --baseline {baseline}: no such encoder (")
        assert len(refused.output.strip().splitlines()) == 1, refused.output


def test_an_onnx_backend_on_gpus_is_refused_in_one_line(models, tmp_path):
    session_uri, _ = models
    done = runner.invoke(app, ["score", str(tmp_path / "x.tsv"), "-f", "aol", "--session-model", session_uri,
                               "--backend", "onnx", "--gpus-per-worker", "1", "-o", str(tmp_path / "o")])  # fmt: skip
    assert done.exit_code == 2 and "--backend onnx runs on CPUs" in done.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("workers", "gpus", "nodes", "partitions", "pool"),
    [
        (0, 0.0, [{"CPU": 2.0}], 16, {"actors": 2, "cpus_each": 1, "gpus_each": 0.0}),  # one per CPU
        (1, 0.0, [{"CPU": 4.0}], 16, {"actors": 1, "cpus_each": 4, "gpus_each": 0.0}),  # its threads: the CPUs
        (1, 0.0, [{"CPU": 1.0}, {"CPU": 1.0}], 16, {"actors": 1, "cpus_each": 1, "gpus_each": 0.0}),  # one node's
        (2, 0.0, [{"CPU": 4.0}, {"CPU": 2.0}], 16, {"actors": 2, "cpus_each": 2, "gpus_each": 0.0}),
        (1000, 0.0, [{"CPU": 2.0}], 16, {"actors": 16, "cpus_each": 1, "gpus_each": 0.0,
                                         "note": "--workers 1000: 16 text partitions, one an actor"}),
        (8, 0.0, [{"CPU": 2.0}], 16, {"actors": 8, "cpus_each": 1, "gpus_each": 0.0,
                                     "note": "--workers 8: the cluster's 2 CPUs hold 2 actors of 1 CPU now; "
                                             "the others wait for resources"}),
        (0, 0.25, [{"CPU": 16.0, "GPU": 1.0}], 16, {"actors": 4, "cpus_each": 1, "gpus_each": 0.25}),
        (4, 1.0, [{"CPU": 2.0}], 16, {"actors": 4, "cpus_each": 1, "gpus_each": 1.0,  # an autoscaler adds GPU nodes
                                     "note": "--workers 4: the cluster's 0 GPUs hold 1 actor of 1 GPU now; "
                                             "the others wait for resources"}),
    ],
)  # fmt: skip
def test_the_encoding_pool_is_reported_with_why_it_is_not_what_was_asked(workers, gpus, nodes, partitions, pool):
    """`--workers 1000` on two CPUs ran as many actors as fit without a word in the
    report; an autoscaling cluster (`cluster.yaml`: no GPU node until a job asks) still
    gets the pool asked for. `--workers 1` on two one-CPU nodes asked for an actor of 2
    CPUs (the cluster's CPUs over the actors), which no node has: now one node's."""
    from workflows.distributed.score_job import encoding_pool

    assert encoding_pool(workers, gpus, nodes, partitions) == pool


@given(
    nodes=st.lists(st.integers(1, 8), min_size=1, max_size=4),
    workers=st.integers(0, 12),
    partitions=st.integers(1, 20),
)
def test_every_encoding_actor_fits_on_one_node(nodes, workers, partitions):
    """The kind of the breaker's find: each actor asks for no more CPUs than one node
    has, and where the nodes hold the actors, all of them fit at once, an actor a node."""
    from workflows.distributed.score_job import encoding_pool

    pool = encoding_pool(workers, 0.0, [{"CPU": float(n)} for n in nodes], partitions)
    assert 1 <= pool["cpus_each"] <= max(nodes)
    if pool["actors"] <= sum(nodes):
        assert sum(n // pool["cpus_each"] for n in nodes) >= pool["actors"]


def test_one_encoding_actor_on_two_one_cpu_nodes_scores_as_the_local_engine(models, tiny_taxonomy, tmp_path):
    """The breaker's find on a real two-node Ray (Ray's own `cluster_utils.Cluster`: two
    raylets of one CPU here): `score --engine ray --workers 1` asked for an encoding
    actor of 2 CPUs, which no node has, and Ray waited for ever without a word (a
    timeout fails it here). Now it finishes with the local engine's scores."""
    from ray.cluster_utils import Cluster

    session_uri, _ = models
    log = tmp_path / "log.tsv"
    write_log(SynthConfig(users=12, rows=300, style="aol", seed=5), tiny_taxonomy, log)
    score = ["score", str(log), "-f", "aol", "--session-model", session_uri]
    local = runner.invoke(app, [*score, "--engine", "local", "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        done = subprocess.run([sys.executable, "-m", "workflows", *score, "--engine", "ray", "--workers", "1",
                               "--buckets", "4", "--address", cluster.address, "-o", str(tmp_path / "ray")],
                              env=env, capture_output=True, text=True, timeout=240)  # fmt: skip
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert report["encoders"] == {"actors": 1, "cpus_each": 1, "gpus_each": 0.0}
    ray_scores, local_scores = (
        read_scores(tmp_path / "ray" / "scores.parquet"),
        read_scores(tmp_path / "local" / "scores.parquet"),
    )
    assert ray_scores.height == local_scores.height == report["rows_ok"] > 0
    assert ray_scores["session_id"].to_list() == local_scores["session_id"].to_list()
    np.testing.assert_allclose(ray_scores["p_same_prev"].to_numpy(), local_scores["p_same_prev"].to_numpy(), atol=1e-5)


def test_a_query_the_model_cannot_read_has_no_probability_nor_specificity(models, tmp_path):
    """The breaking helper's find: every emoji-only query (and a "word" past 100
    characters) was the one vector `[UNK]` gives, so `😀🔥💯` -> `🐱` scored a higher
    p_same_prev than `cats` -> `big cats` and such queries shared one specificity. A
    query the model cannot read has no p_same_prev with its neighbours, no specificity,
    and the report counts them; the pyfunc gives such a pair no probability either."""
    import pandas as pd

    session_uri, hierarchy_uri = models
    texts = ["cats", "big cats", "😀🔥💯", "🐱", "y" * 200, "cats again"]
    rows = "".join(f"u1,2023-03-01T10:{i:02d}:00Z,{t}\n" for i, t in enumerate(texts))
    (tmp_path / "log.csv").write_text("user,time,q\n" + rows)
    done = runner.invoke(app, ["score", str(tmp_path / "log.csv"), "-f", "table", "--map", "user=user,time=time,text=q",
                               "--session-model", session_uri, "--hierarchy-model", hierarchy_uri, "--engine", "local",
                               "--workers", "2", "-o", str(tmp_path / "out")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "--workers is the ray engine's: not used" in " ".join(done.output.split())  # accepted without a word
    scores = read_scores(tmp_path / "out" / "scores.parquet")
    unread = [False, False, True, True, True, False]
    assert scores["specificity"].is_null().to_list() == unread
    # the first query has no previous one; the others none where either side cannot be read
    assert scores["p_same_prev"].is_null().to_list() == [True, False, True, True, True, True]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["distinct_texts"], report["unread_texts"]) == (6, 3)
    assert "texts the model cannot read │ 3" in done.output
    out = mlflow.pyfunc.load_model(session_uri).predict(pd.DataFrame({"query_a": ["😀🔥💯", "cats"],
                                                                      "query_b": ["🐱", "big cats"]}))  # fmt: skip
    assert out["p_same"].isna().to_list() == [True, False]
    # where the model decides every pair (learned), the lexical evidence decides those it cannot read: a repeat
    # of one emoji is one session, two others are two (the one [UNK] vector had made all three one)
    emoji = "".join(f"u1,2023-03-01T10:{i:02d}:00Z,{t}\n" for i, t in enumerate(["🐱", "🐱", "😀🔥💯"]))
    (tmp_path / "emoji.csv").write_text("user,time,q\n" + emoji)
    for scorer in ("score", "segment"):
        model = ["--session-model" if scorer == "score" else "--model", session_uri]
        done = runner.invoke(app, [scorer, str(tmp_path / "emoji.csv"), "-f", "table", "--map",
                                   "user=user,time=time,text=q", *model, "--method", "learned", "--engine", "local",
                                   "-o", str(tmp_path / scorer)])  # fmt: skip
        assert done.exit_code == 0, done.output
        name = "scores.parquet" if scorer == "score" else "sessions.parquet"
        got = read_table(tmp_path / scorer / name).sort("row_id")
        assert got["session_seq"].to_list() == [0, 1, 0], scorer
