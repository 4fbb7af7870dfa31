"""The session model trained with Ray Train on two real gloo workers, a worker killed
mid-run and the run resumed from its last checkpoint, logged to a real MLflow store,
registered and served as a pyfunc; the CLI around it."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from sessions.ingest import ingest
from sessions.io import read_table, write_parquet
from sessions.missions import MissionConfig
from sessions.pairs import MiningConfig, mine_pairs
from sessions.pipeline import sessions_with_missions
from sessions.segment import SegmentConfig
from synth import SynthConfig, write_log
from workflows.cli import app
from workflows.jobs.train_session import SessionTrainConfig, TrainSessionJob, run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]
runner = CliRunner()


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory, wordnet_taxonomy) -> Path:
    tmp = tmp_path_factory.mktemp("pairs")
    write_log(SynthConfig(users=150, rows=6_000, seed=11), wordnet_taxonomy, tmp / "log.tsv")
    ingest([tmp / "log.tsv"], "aol", tmp / "events")
    sessions = sessions_with_missions(read_table(tmp / "events" / "events.parquet"), SegmentConfig(), MissionConfig())
    write_parquet(mine_pairs(sessions, MiningConfig(train_share=0.6, val_share=0.2)), tmp / "pairs" / "pairs.parquet")
    return tmp / "pairs"


def train_session(pairs: Path, cfg: SessionTrainConfig, **settings):
    """The `train session` job on `pairs` with `cfg` and the job's other settings."""
    return run(TrainSessionJob(pairs=str(pairs), session=cfg, **settings))


def tiny(**changes) -> SessionTrainConfig:
    base = dict(model="tiny", batch_size=16, lr=1e-3, max_steps=20, eval_every=10, max_val_pairs=300, workers=2)
    return SessionTrainConfig(**{**base, **changes})


def test_two_workers_train_resume_after_a_killed_worker_log_register_and_serve(
    pairs_dir, store, kill_a_worker, tmp_path
):
    """One run does it all (each Ray Train start costs tens of seconds here): two gloo
    workers, one killed after the checkpoint of step 20; the worker is replaced and
    both resume from that checkpoint; every step is logged, those between the
    checkpoint and the failure twice; the model is registered, champion, and served."""
    storage = tmp_path / "ray"
    outcome: dict = {}
    cfg = tiny(epochs=10, max_steps=60, eval_every=20, patience=100, max_failures=2)

    def run() -> None:
        outcome["result"] = train_session(pairs_dir, cfg, storage=str(storage))

    thread = threading.Thread(target=run)
    thread.start()
    # Kill once step 30 is logged and the checkpoint of step 20 is registered.
    kill_a_worker(thread, storage, "session-model", 30, workers=2)
    assert list(storage.glob("*/checkpoint_*")), "no checkpoint was written"
    thread.join(timeout=600)
    first = outcome["result"]
    run_info = store.get_run(first.run_id)
    resumed = int(run_info.data.tags["resumed_from_step"])
    assert resumed % 20 == 0 and 0 < resumed < 60
    steps = [m.step for m in store.get_metric_history(first.run_id, "loss")]
    times = Counter(steps)
    assert set(times) == set(range(1, 61)) and all(times[s] == 1 for s in range(1, resumed + 1))
    redone = [s for s, n in times.items() if n == 2]  # steps between the checkpoint and the failure ran twice
    assert set(times.values()) <= {1, 2} and len(redone) < 20 + 10 and all(s > resumed for s in redone)
    # ... and drew the same: the same batches, and the same dropout masks (`step_seed`; torch was seeded once
    # a worker start, so a resumed run drew other masks and ended elsewhere: the kill breaker's find)
    twice = {}
    for m in store.get_metric_history(first.run_id, "loss"):
        twice.setdefault(m.step, []).append(m.value)
    assert redone and all(twice[s][0] == pytest.approx(twice[s][1], rel=1e-6) for s in redone), twice
    assert first.metrics["steps"] == 60
    throughput = [m.value for m in store.get_metric_history(first.run_id, "pairs_per_s")]  # each step's
    assert [(m.step, m.value) for m in store.get_metric_history(first.run_id, "pairs_per_s_median")] == [
        (60, pytest.approx(float(np.median(throughput))))
    ]  # the run's own figure, which `compare` shows (it showed the last step's)

    assert first.registered == "models:/session-model/1" and first.champion
    assert run_info.data.params["model"] == "tiny" and run_info.data.params["workers"] == "2"
    assert sorted({m.step for m in store.get_metric_history(first.run_id, "eval/val_auc")}) == [20, 40, 60]
    # the model's own value once, at the last step; the curve is eval/val_auc
    assert [(m.step, m.value) for m in store.get_metric_history(first.run_id, "val_auc")] == [
        (60, pytest.approx(first.metrics["val_auc"]))
    ]
    assert {"val_roc.png", "config.json"} <= {a.path for a in store.list_artifacts(first.run_id)}
    assert run_info.data.metrics["val_auc"] == pytest.approx(first.metrics["val_auc"])
    assert 0.5 < first.metrics["val_auc"] <= 1.0

    model = mlflow.pyfunc.load_model("models:/session-model@champion")
    p = model.predict(pd.DataFrame({"query_a": ["cute catd", "cute cats"], "query_b": ["cute cats", "new york"]}))
    assert list(p.columns) == ["p_same", "score"] and ((p["p_same"] >= 0) & (p["p_same"] <= 1)).all()
    vectors = np.stack(model.predict(pd.DataFrame({"query": ["cute cats", "new york", "x"]}))["embedding"])
    assert vectors.shape == (3, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    score = float(vectors[0] @ vectors[1])
    assert p["score"][1] == pytest.approx(score, abs=1e-5)  # p_same is a function of the dot product
    # the registered encoder is the same model to sentence-transformers (docs/session-model.md)
    from sentence_transformers import SentenceTransformer

    local = mlflow.artifacts.download_artifacts("models:/session-model@champion", dst_path=str(tmp_path / "served"))
    theirs = SentenceTransformer(f"{local}/artifacts/model", device="cpu").encode(["cute cats", "new york"])
    np.testing.assert_allclose(theirs, vectors[:2], atol=2e-5)
    with pytest.raises(Exception, match="query_a and query_b"):
        model.predict(pd.DataFrame({"text": ["a"]}))


def test_cli_train_evaluate_and_learned_segmentation(pairs_dir, store, tmp_path, tiny_taxonomy):
    trained = runner.invoke(
        app,
        ["train", "session", "--pairs", f"{pairs_dir}/", "--model", "tiny", "--workers", "1", "--max-steps", "6",
         "--eval-every", "3", "--batch-size", "16", "--lr", "1e-3", "--storage", str(tmp_path / "ray")],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "models:/session-model/1" in trained.output and "runs:/" in trained.output
    assert "stopped │ --max-steps 6" in " ".join(trained.output.split())  # why it ended where it did
    run = store.get_run(store.get_model_version("session-model", "1").run_id)
    assert run.info.run_name == "tiny on pairs, 1 worker(s), lr 0.001"
    assert run.data.params["pairs"] == str(pairs_dir)  # as the runs of the same pairs compare, however written
    assert "InfoNCE" in run.data.tags["mlflow.note.content"]
    assert sorted(i.dataset.name for i in run.inputs.dataset_inputs) == ["pairs (train)", "pairs (validation)"]

    evaluated = runner.invoke(
        app, ["evaluate", "pairs", "--model", "models:/session-model@champion", "--pairs", str(pairs_dir), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert json.loads(evaluated.stdout)["split"] == "test"
    names = list(metrics)
    assert names[0].startswith("session model") and names[1] == "tiny, not fine-tuned" and names[2] == "3-gram Jaccard"
    test_pairs = read_table(pairs_dir / "pairs.parquet").filter(pl.col("split") == "test")
    assert all(m["pairs"] == test_pairs.height for m in metrics.values())
    assert metrics["3-gram Jaccard"]["auc"] > 0.6  # synthetic sessions share words
    # each scorer against each kind of negative alone, here Jaccard's, computed apart
    from sklearn.metrics import roc_auc_score

    from sessions.lexicon import trigram_jaccard

    kinds = sorted(test_pairs.filter(pl.col("label") == 0)["kind"].unique())
    assert len(kinds) >= 2 and all(f"auc_vs_{kind}" in m for m in metrics.values() for kind in kinds)
    for kind in kinds:
        chosen = test_pairs.filter((pl.col("label") == 1) | (pl.col("kind") == kind))
        jaccard = trigram_jaccard(chosen["query_a"], chosen["query_b"]).to_numpy()
        assert metrics["3-gram Jaccard"][f"auc_vs_{kind}"] == round(roc_auc_score(chosen["label"], jaccard), 4)

    csv = tmp_path / "pairs.csv"
    pd.DataFrame(
        {"query_a": ["cute cats", "cute cats"], "query_b": ["cute catd", "tax forms"], "label": [1, 0]}
    ).to_csv(csv, index=False)
    table = runner.invoke(
        app, ["evaluate", "pairs", "--model", "models:/session-model/1", "--pairs", str(csv), "--examples", "1"]
    )
    assert table.exit_code == 0, table.output
    assert "3-gram Jaccard" in table.output and "most confident right" in table.output
    assert "AUC vs" not in table.output  # pairs without kinds
    # a CSV has no splits: all of it is scored (the title holds the path, which a narrow terminal folds anywhere)
    assert "pairs.csv(all):2pairs" in "".join(table.output.split())
    from models.encoder import encoding_progress
    from workflows.jobs.evaluate_pairs import EvaluatePairsJob
    from workflows.jobs.evaluate_pairs import run as evaluate_pairs

    encoded: list[int] = []  # what `evaluate pairs` shows on its progress bar: minutes on a CPU without one
    with encoding_progress(encoded.append):
        evaluate_pairs(EvaluatePairsJob(model="models:/session-model/1", pairs=str(csv)))
    assert sum(encoded) == 2 * 3  # the model's 3 distinct texts, then its base encoder's

    log = tmp_path / "log.tsv"
    write_log_rows(log)
    for method in ("learned", "cascade"):
        out = tmp_path / method
        done = runner.invoke(
            app, ["segment", str(log), "--format", "aol", "--method", method, "--model", "models:/session-model/1",
                  "--engine", "local", "--output", str(out)],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        report = json.loads((out / "report.json").read_text())
        assert report["rows_ok"] == 6 and report["config"]["model"] == "models:/session-model/1"
        assert report["config"]["model_run"] == f"models:/session-model/1 -> run {run.info.run_id}"
    missing = runner.invoke(app, ["segment", str(log), "--format", "aol", "--method", "learned", "--output", "x"])
    assert missing.exit_code == 2 and "needs --model" in missing.output

    # in nested CV: the cascade with the model, its p_same chosen by the inner folds, and where it errs
    from synth import SynthConfig, write_log
    from workflows.jobs.evaluate_crossval import MODEL_GRID

    write_log(SynthConfig(users=12, rows=300, seed=5), tiny_taxonomy, tmp_path / "synth.tsv")
    cv = runner.invoke(app, ["evaluate", "crossval", "--gt", str(tmp_path / "synth.tsv"), "-f", "aol", "--folds", "2",
                             "--inner", "2", "--model", "models:/session-model/1", "--json"])  # fmt: skip
    assert cv.exit_code == 0, cv.output
    assert json.loads(cv.stdout)["model"] == "models:/session-model/1"
    systems = json.loads(cv.stdout)["systems"]
    with_model = systems["cascade + session model, p_same chosen"]
    assert set(with_model["chosen"]) <= {f"min_p_same={p:g}" for p in MODEL_GRID}
    assert sum(with_model["chosen"].values()) == 2 and 0.0 <= with_model["mean"]["f1"] <= 1.0
    assert with_model["errors_by_kind"]["pairs"] == systems["cascade (shipped settings)"]["errors_by_kind"]["pairs"]


def test_a_model_whose_scores_become_nan_with_finite_parameters_is_said_to_have_diverged(pairs_dir, store, tmp_path):
    """The breaker's find: at --lr 1e10 the parameters stayed finite and the model's scores
    became NaN; the validation AUC failed inside sklearn, Ray retried the worker and the
    command ended in its traceback, exit 1. Now it is the loop's divergence: one line,
    exit 2, the run FAILED and tagged `diverged_at_step`, no model."""
    diverged = runner.invoke(
        app,
        ["train", "session", "--pairs", str(pairs_dir), "--model", "tiny", "--workers", "1", "--batch-size", "8",
         "--max-steps", "2", "--eval-every", "1", "--lr", "1e10", "--storage", str(tmp_path / "ray")],
    )  # fmt: skip
    assert diverged.exit_code == 2, diverged.output
    said = " ".join(diverged.output.split())
    assert re.search(r"error: training diverged at step 1: its scores of [\d,]+ of its [\d,]+ validation pairs "
                     r"became NaN or infinite, and no model is kept", said)  # fmt: skip
    assert store.search_model_versions("name='session-model'") == []
    (failed,) = store.search_runs([store.get_experiment_by_name("session-model").experiment_id])
    assert failed.info.status == "FAILED" and failed.data.tags["diverged_at_step"].startswith("1 its scores of ")


def write_log_rows(path: Path) -> None:
    rows = [
        ("7", "cute cats", "2006-03-01 10:00:00"), ("7", "cute catd", "2006-03-01 10:01:00"),
        ("7", "tax forms", "2006-03-01 10:30:00"), ("7", "tax forms 2005", "2006-03-01 10:31:00"),
        ("8", "new york hotels", "2006-03-02 09:00:00"), ("8", "weather", "2006-03-02 09:20:00"),
    ]  # fmt: skip
    lines = ["AnonID\tQuery\tQueryTime\tItemRank\tClickURL", *("\t".join((*r, "", "")) for r in rows)]
    path.write_text("\n".join(lines) + "\n")


def test_a_fine_tuned_model_no_better_than_its_encoder_is_said_to_be_so():
    """The new user's find: 10 steps gave validation AUC 0.9038 against 0.9041 for the
    encoder not fine-tuned, which the summary showed as 0.904 and 0.904 beside "champion:
    yes". A note gives both to four decimals; a model that beats its encoder gets none."""
    from workflows.cli.progress import out
    from workflows.cli.train import print_outcome
    from workflows.jobs.train_session import fine_tuning_notes
    from workflows.tracking.store import Promotion
    from workflows.training.loop import TrainOutcome

    worse = {"val_auc": 0.9038, "val_auc_not_fine_tuned": 0.9041}
    (note,) = fine_tuning_notes(worse, "minilm-local")
    assert note == (
        "fine-tuning did not beat the encoder it started from on the validation pairs: AUC 0.9038, minilm-local not "
        "fine-tuned 0.9041 (more steps, more pairs, or another --lr may)"
    )
    assert fine_tuning_notes({"val_auc": 0.9041, "val_auc_not_fine_tuned": 0.9041}, "m")  # equal is no gain either
    assert fine_tuning_notes({"val_auc": 0.95, "val_auc_not_fine_tuned": 0.9041}, "m") == ()
    outcome = TrainOutcome("r", "runs:/r/model", "models:/session-model/1", Promotion(True), worse, None, [],
                           notes=(note,))  # fmt: skip
    with out.capture() as printed:
        print_outcome("train session", outcome)
    assert f"note: {note}" in " ".join(printed.get().split())
