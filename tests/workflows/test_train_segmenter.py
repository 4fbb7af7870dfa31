"""`sessionflow train segmenter` on the real Gayo-Avello development users: the nested
CV estimate it logs, the registered model, and `segment --method learned` with it
(one engine here; the Ray engine's agreement is in test_ray_engine.py)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from sessions.io import read_table
from sessions.learned import LearnedConfig, LearnedMethod
from workflows.cli import app
from workflows.jobs.evaluate_segmentation import read_gold

ROOT = Path(__file__).resolve().parents[2]
GAYO = ROOT.parent / "shared" / "data" / "sessions-gt" / "gayo-avello-2009.dev.csv"
runner = CliRunner()
pytestmark = pytest.mark.skipif(not GAYO.exists(), reason="the shared ground truth is not here")


def test_a_table_with_a_column_map_is_the_same_truth(tmp_path):
    """`--format table --map ...` reaches the reader of every command that reads truth (`labelled_users`)."""
    from sessions.formats.options import ReadOptions
    from workflows.jobs.evaluate_crossval import labelled_users

    gayo = labelled_users(str(GAYO), "gayo-avello", None).gold
    table = tmp_path / "mine.csv"
    gayo.select(person="user_id", when=pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), q="query",
                s="gold_session").write_csv(table)  # fmt: skip
    mapped = labelled_users(str(table), "table", None, ReadOptions(map="user=person,time=when,text=q,session=s"))
    assert mapped.level == "sessions" and mapped.gold["user_id"].n_unique() == 80
    assert mapped.gold.select("user_id", "ts", "query").equals(gayo.select("user_id", "ts", "query"))
    blank = tmp_path / "blank.csv"  # an empty or blank label cell is no label: that user has none
    first = gayo["user_id"][0]
    label = pl.when(pl.col("user_id") == first).then(pl.lit(" ")).otherwise("gold_session")
    gayo.select(person="user_id", when=pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), q="query",
                s=label).write_csv(blank)  # fmt: skip
    options = ReadOptions(map="user=person,time=when,text=q,session=s")
    assert labelled_users(str(blank), "table", None, options).users_unlabelled == 1
    refused = runner.invoke(app, ["train", "segmenter", "--gt", str(table), "--format", "table"])
    assert refused.exit_code == 2 and "needs a column mapping: --map" in refused.output


def test_train_segmenter_logs_its_estimate_registers_and_segments_a_log(store, tmp_path):
    trained = runner.invoke(app, ["train", "segmenter", "--gt", str(GAYO), "--format", "gayo-avello",
                                  "--classifier", "logistic"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "models:/segmenter-model/1" in trained.output and "0.862 ± 0.066" in trained.output

    version = store.get_model_version_by_alias("segmenter-model", "champion")
    run = store.get_run(version.run_id)
    # the figures of docs/segmentation.md: the classifier (logistic) and the shipped cascade, nested CV, seed 0
    assert run.data.metrics["cv_f1_mean"] == pytest.approx(0.862, abs=5e-4)
    assert run.data.metrics["cascade_cv_f1_mean"] == pytest.approx(0.873, abs=5e-4)
    assert run.data.metrics["cv_boundary_f1_mean"] == pytest.approx(0.915, abs=5e-4)
    assert run.data.params["level"] == "sessions" and run.data.params["users"] == "80"
    assert run.data.params["gt"] == str(GAYO.resolve())  # one file, however it was named
    # what a reviewer reads in the MLflow UI: a name, a description, what produced it, what it read
    assert run.info.run_name == "logistic on gayo-avello-2009.dev.csv (sessions)"
    assert "nested CV pair F1 0.862" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["version.mlflow"] == mlflow.__version__ and "version.scikit-learn" in run.data.tags
    assert len(run.data.tags.get("git.commit", "0" * 40).removesuffix("-dirty")) == 40
    (read,) = run.inputs.dataset_inputs
    assert read.dataset.name == "ground truth" and read.dataset.digest and read.tags[0].value == "training"
    assert 'mlflow.pyfunc.load_model("models:/segmenter-model/1")' in version.description
    assert version.tags["cv_f1_mean"] == f"{run.data.metrics['cv_f1_mean']:.4f}"
    assert "nested CV" in store.get_registered_model("segmenter-model").description
    folds = json.loads(Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/crossval.json")).read_text())
    assert {row["fold"] for row in folds["folds"]} == set(range(5))

    out = tmp_path / "learned"
    segment = ["segment", str(GAYO), "--format", "gayo-avello", "--engine", "local", "--output"]
    champion = "models:/segmenter-model@champion"
    done = runner.invoke(app, [*segment, str(out), "--method", "learned", "--model", champion])
    assert done.exit_code == 0, done.output
    segmented = read_table(out / "sessions.parquet").sort("row_id")

    # the same sessions as the classifier fitted here on every user, and as the pyfunc's predict
    gold = read_gold(str(GAYO), "gayo-avello").events
    method = LearnedMethod(LearnedConfig(model="logistic"))
    expected = method.fit(gold)(gold).sort("row_id")
    assert segmented["session_id"].to_list() == expected["session_id"].to_list()
    shuffled = gold.sample(fraction=1.0, shuffle=True, seed=1)  # the pyfunc answers in the order it is asked
    # row_id orders queries of one time stamp (without it, their order in the frame does)
    naive_utc = shuffled.select("user_id", pl.col("ts").dt.replace_time_zone(None), "query", "row_id")
    served = mlflow.pyfunc.load_model("models:/segmenter-model/1").predict(naive_utc.to_pandas())
    assert served["query"].tolist() == shuffled["query"].to_list() and "mission_id" in served.columns
    by_row = dict(zip(expected["row_id"], expected["session_id"], strict=True))
    assert served["session_id"].tolist() == [by_row[r] for r in shuffled["row_id"]]

    python_model = mlflow.pyfunc.load_model("models:/segmenter-model/1").unwrap_python_model()
    mistakes = (({"row_id": [0, 0]}, "row_id must be unique"), ({"user_id": ["u", None]}, "1 rows have no user_id"),
                ({"ts": [pd.NaT, pd.NaT]}, "2 rows have no ts"))  # fmt: skip
    for bad, says in mistakes:
        asked = pd.DataFrame({"user_id": ["u", "u"], "ts": pd.to_datetime(["2006-03-01 10:00", "2006-03-01 10:01"]),
                              "query": ["a", "b"], **bad})  # fmt: skip
        with pytest.raises(ValueError, match=says):
            python_model.predict(None, asked)

    # a segmenter model decides `learned` only: one line, no output
    wrong = runner.invoke(app, [*segment, str(tmp_path / "c"), "--model", "models:/segmenter-model/1"])
    assert wrong.exit_code == 2 and not (tmp_path / "c").exists()
    assert "is a segmenter model: it decides --method learned, not cascade" in wrong.output
    for bad, message in (
        (["--classifier", "forest"], "--classifier forest: choose gradient_boosting, logistic or auto"),
        (["--level", "missions"], "has gold sessions only"),
        (["--threshold", "1.5"], "threshold must be in (0, 1)"),
    ):
        refused = runner.invoke(app, ["train", "segmenter", "--gt", str(GAYO), "--format", "gayo-avello", *bad])
        assert refused.exit_code == 2 and message in refused.output, refused.output
