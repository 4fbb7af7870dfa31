"""The champion alias moves only to a better model, and only among comparable runs;
`sessionflow compare` and `promote` on a real store."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from contextlib import closing

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from workflows.tracking.store import CHAMPION, promote_if_best


def _registered(client: MlflowClient, name: str, params: dict, metric: str, value: float) -> str:
    """A new version of `name` from a run that logged `params` and `metric`: its number."""
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metric(metric, value)
    return str(client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id).version)


def _version(client: MlflowClient, data: str, value: float) -> str:
    return _registered(client, "m", {"data": data}, "map", value)


def test_champion_moves_to_a_better_model_on_the_same_data_only(store):
    client = store
    client.create_registered_model("m")
    first = _version(client, "mammals", 0.5)
    assert promote_if_best(client, "m", first, "map", same=("data",))
    worse, better_elsewhere = _version(client, "mammals", 0.4), _version(client, "nouns", 0.9)
    kept = promote_if_best(client, "m", worse, "map", same=("data",))
    assert not kept and kept.why == f"the champion, version {first}, has map 0.5000, this one 0.4000"
    # not comparable; `train` said only "no" (a new user's find: the champion was another run's tiny model)
    other = promote_if_best(client, "m", better_elsewhere, "map", same=("data",))
    assert not other and other.why == (f"the champion, version {first}, was trained with data mammals (this one "
                                       "nouns), so the two are not compared")  # fmt: skip
    better = _version(client, "mammals", 0.6)
    assert promote_if_best(client, "m", better, "map", same=("data",))
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == better


def test_a_hierarchy_model_is_champion_only_against_one_of_the_same_held_out_split(store):
    """A hierarchy model's MAP is measured on the pairs its split holds out, which its
    `--seed` draws as well as its data, holdout and share: one trained with another seed
    took the alias on a better MAP over other pairs (the seed was not compared)."""
    from workflows.jobs.train_hierarchy import SPLIT

    def version(value: float, **split: object) -> str:
        split = {"data": "wordnet-mammals", "holdout": "edges", "holdout_share": 0.1, "seed": 0, **split}
        return _registered(store, "h", split, "map", value)

    store.create_registered_model("h")
    assert promote_if_best(store, "h", version(0.5), "map", same=SPLIT)
    for other in ({"seed": 1}, {"holdout_share": 0.2}, {"holdout": "nodes"}, {"data": "wordnet-nouns"}):
        assert not promote_if_best(store, "h", version(0.9, **other), "map", same=SPLIT), other
    assert promote_if_best(store, "h", version(0.6), "map", same=SPLIT)


def test_a_segmenter_is_champion_only_against_one_estimated_on_the_same_folds(store):
    """A segmenter's `cv_f1_mean` is the mean over outer folds that `--folds` and `--seed`
    deal (seeds alone move it by about 0.01): one estimated on other folds took the
    alias on a better mean over other folds."""
    from workflows.jobs.train_segmenter import ESTIMATE

    def version(value: float, **estimate: object) -> str:
        estimate = {"gt_digest": "9a1c", "level": "sessions", "folds": 5, "seed": 0, "inner": 4,
                    "classifier": "logistic", **estimate}  # fmt: skip
        return _registered(store, "s", estimate, "cv_f1_mean", value)

    store.create_registered_model("s")
    assert promote_if_best(store, "s", version(0.85), "cv_f1_mean", same=ESTIMATE)
    for other in ({"seed": 1}, {"folds": 3}, {"level": "missions"}, {"gt_digest": "77f0"}):
        assert not promote_if_best(store, "s", version(0.9, **other), "cv_f1_mean", same=ESTIMATE), other
    # another classifier or inner procedure on the same outer folds is what the estimate compares
    assert promote_if_best(store, "s", version(0.86, classifier="gradient_boosting", inner=3), "cv_f1_mean",
                           same=ESTIMATE)  # fmt: skip


def test_compare_lists_runs_side_by_side_and_promote_moves_the_champion(store):
    import json

    from typer.testing import CliRunner

    from workflows.cli import app

    runner = CliRunner()
    mlflow.set_experiment("session-model")
    store.create_registered_model("session-model")
    runs, models = [], []
    for lr, auc in ((1e-5, 0.81), (3e-5, 0.85), (1e-4, 0.79)):
        with mlflow.start_run() as run:
            mlflow.log_params({"model": "minilm-local", "lr": lr, "workers": 2, "eval_every": 100})
            mlflow.log_metrics({"val_auc": auc, "loss": 0.3})
            models.append(_session_model() if len(runs) < 2 else None)
        runs.append(run.info.run_id)
    v1 = store.create_model_version("session-model", models[0], runs[0]).version
    v2 = store.create_model_version("session-model", models[1], runs[1]).version
    store.set_registered_model_alias("session-model", CHAMPION, v1)

    shown = runner.invoke(app, ["compare", "--json"])
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.stdout)
    assert [r["run_id"] for r in got["runs"]] == runs[::-1]  # newest first
    assert got["params"] == ["model", "lr"]  # model always; lr differs; workers and eval_every do not
    assert [r["val_auc"] for r in got["runs"]] == [0.79, 0.85, 0.81]
    assert [(r["version"], r["champion"]) for r in got["runs"]] == [(None, False), ("2", False), ("1", True)]

    promoted = runner.invoke(app, ["promote", "session-model", str(v2)])
    assert promoted.exit_code == 0, promoted.output
    assert "(was version 1)" in promoted.output
    assert str(store.get_model_version_by_alias("session-model", CHAMPION).version) == str(v2)
    again = runner.invoke(app, ["promote", "session-model", str(v2)])  # said "(was version 2)"
    assert again.exit_code == 0 and "(already the champion)" in again.output, again.output
    padded = runner.invoke(app, ["promote", "session-model", f"0{v2}"])  # said "-> .../02 (was version 2)"
    assert f"-> models:/session-model/{v2} (already the champion)" in padded.output, padded.output
    twice = runner.invoke(app, ["compare", "--json", "--metrics", "val_auc,val_auc"])  # a column twice
    assert json.loads(twice.stdout)["metrics"] == ["val_auc"]
    table = runner.invoke(app, ["compare"])
    assert "v2*" in table.stdout and "v1 " in table.stdout and "0.850" in table.stdout

    from workflows.tracking.store import run_of

    latest = store.get_model_version("session-model", str(v2)).run_id  # MLflow's `latest`: the newest version
    assert run_of("models:/session-model/latest") == run_of("models:/session-model/LATEST") == latest
    missing = runner.invoke(app, ["promote", "session-model", "9"])
    assert missing.exit_code == 2 and "version 9" in missing.output
    assert "session-model has versions 1, 2 and aliases @champion -> 2 (tracking store: sqlite:///" in missing.output
    nameless = runner.invoke(app, ["promote", "session-modle", "1"])
    assert nameless.exit_code == 2 and "registered models: session-model (tracking store: " in nameless.output
    unknown = runner.invoke(app, ["compare", "--experiment", "nothing"])
    assert unknown.exit_code == 2 and "no experiment" in unknown.output and "it has: Default" in unknown.output
    for option in ("--metrics", "--params"):  # a name no run logged: one line, not an empty column
        nothing = runner.invoke(app, ["compare", option, "val_acu"])
        assert nothing.exit_code == 2 and f"{option} val_acu: no run of session-model logged it" in nothing.output
    with mlflow.start_run():  # a setting with no value (a lookup table's hidden width): MLflow logs "None"
        mlflow.log_params({"model": "lookup", "lr": 1.0, "hidden": None})
    table = runner.invoke(app, ["compare", "--params", "model,hidden"])
    assert table.exit_code == 0 and "hidden" in table.stdout and "None" not in table.stdout, table.stdout
    # a version registered from another version has no run of its own (a tester's find: `evaluate hierarchy`
    # ended in a TypeError, and `annotate` recorded "-> run None"): the run of the model it was made of
    copy = mlflow.register_model(f"models:/session-model/{v2}", "production")
    assert copy.run_id is None and run_of("models:/production/1") == latest
    store.set_registered_model_alias("production", CHAMPION, copy.version)
    assert run_of("models:/production@champion") == latest
    # the mine breaker's find: a run registered twice, its first version champion, showed its second, unmarked
    v3 = store.create_model_version("session-model", models[1], runs[1]).version
    shown = json.loads(runner.invoke(app, ["compare", "--json"]).stdout)["runs"]
    by_run = {r["run_id"]: (r["version"], r["champion"]) for r in shown}
    assert (by_run[runs[1]], by_run[runs[0]]) == ((str(v2), True), (str(v1), False)), v3


def test_a_sqlite_store_inside_a_submitted_jobs_working_dir_warns_once(tmp_path, monkeypatch, caplog):
    """Under `ray job submit --working-dir`, the driver runs in a temporary copy of that
    directory (RAY_JOB_CONFIG_JSON_ENV_VAR names it): a SQLite store there vanishes."""
    import json

    from workflows.tracking import store as tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking, "_warned", set())
    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_0123.zip"}, "metadata": {}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    tracking.use_store()
    tracking.use_store()
    warnings = [r.getMessage() for r in caplog.records if "temporary working directory" in r.getMessage()]
    assert len(warnings) == 1 and "mlflow server" in warnings[0] and "MLFLOW_TRACKING_URI" in warnings[0]

    caplog.clear()
    monkeypatch.setattr(tracking, "_warned", set())
    with socket.create_server(("127.0.0.1", 0)) as server:  # a server (one that answers): nothing to warn of
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.getsockname()[1]}")
        tracking.use_store()
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")  # not a submitted job: nothing either
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    tracking.use_store()
    assert not [r for r in caplog.records if "temporary working directory" in r.getMessage()]


def test_an_output_inside_a_submitted_jobs_working_dir_is_refused(tmp_path, monkeypatch):
    """The breaking helper's find: `ray job submit --working-dir . -- sessionflow segment ...
    --output out/seg` succeeded, its output written into the copy of the directory that Ray
    deletes later, and the summary cut its path short. Such an output is refused in one
    line before anything is written; one outside it, or a URI, is not."""
    import json

    import pytest

    from workflows.jobs.common import check_output

    (tmp_path / "pkg").mkdir()
    monkeypatch.chdir(tmp_path / "pkg")
    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_0123.zip"}, "metadata": {}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    for output in ("out/seg", str(tmp_path / "pkg" / "x"), "."):
        with pytest.raises(ValueError, match=r"in this job's temporary working directory \(`ray job submit"):
            check_output(output)
    assert not (tmp_path / "pkg" / "out").exists()
    assert check_output(str(tmp_path / "elsewhere")) == str(tmp_path / "elsewhere")
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")  # not a submitted job: a relative output is the user's
    assert check_output("out/seg") == str(tmp_path / "pkg" / "out" / "seg")


def test_compare_shows_hits_f1_where_a_hierarchy_run_logged_it(store):
    from workflows.tracking.compare import compare

    mlflow.set_experiment("hierarchy-model")
    with mlflow.start_run():
        mlflow.log_params({"model": "minilm-local", "holdout": "none"})
        mlflow.log_metrics({"map": 0.9, "steps": 80})
    plain = compare(store, "hierarchy-model")
    assert plain.metrics == ["map", "steps"]  # no run of HiT's protocol: no empty F1 columns
    with mlflow.start_run():
        mlflow.log_params({"model": "minilm-local", "holdout": "hit-mixed"})
        mlflow.log_metrics({"map": 0.6, "steps": 80, "multi_hop_f1_rn": 0.86, "multi_hop_f1_hn": 0.83,
                            "mixed_hop_f1_rn": 0.83, "mixed_hop_f1_hn": 0.77, "mixed_hop_lambda_hn": 3.7})  # fmt: skip
    both = compare(store, "hierarchy-model")
    assert both.metrics == ["map", "multi_hop_f1_rn", "multi_hop_f1_hn", "mixed_hop_f1_rn", "mixed_hop_f1_hn", "steps"]
    assert [r["mixed_hop_f1_hn"] for r in both.rows] == [0.77, None] and both.not_shown == 1


def test_compare_prints_one_metric_column_in_one_form():
    """A λ of 3 beside one of 3.9 reads 3.000 and 3.900; steps stay whole numbers; pairs/s
    of 1,997 beside 50.452 read 1,997.3 and 50.5, not 1,997 and 50.452 (a new user's find:
    fifty thousand at a glance)."""
    from workflows.cli.models import _numbers

    assert _numbers([3.9, 3.0, None]) == ["3.900", "3.000", ""]
    assert _numbers([80.0, 200.0]) == ["80", "200"]
    assert _numbers([0.5, 12_345.6, float("nan")]) == ["0.5", "12,345.6", "nan"]
    assert _numbers([1_997.3, 50.452]) == ["1,997.3", "50.5"]


def test_a_submitted_job_whose_server_does_not_answer_is_not_offered_a_store_that_vanishes(tmp_path, monkeypatch):
    """Outside a submitted job, a server that does not answer is told with the way back to
    ./mlflow.db; inside one (`ray job submit --working-dir`) that store lies in the copy of
    the working directory Ray deletes, which the job's own warning says: it is not offered
    there (the cluster user's find)."""
    import json

    from workflows.tracking import store as tracking

    monkeypatch.chdir(tmp_path)
    said = "no MLflow tracking server answers at http://127.0.0.1:9 (MLFLOW_TRACKING_URI: connection refused); "
    with pytest.raises(ValueError) as outside:
        tracking._open("http://127.0.0.1:9")
    assert (
        str(outside.value)
        == f"{said}start it (`mlflow server --workers 1`), or unset MLFLOW_TRACKING_URI for ./mlflow.db"
    )
    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_0123.zip"}, "metadata": {}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    with pytest.raises(ValueError) as inside:
        tracking._open("http://127.0.0.1:9")
    assert str(inside.value) == f"{said}start it (`mlflow server --workers 1`)"


def test_a_store_that_cannot_be_opened_is_named_in_one_line(tmp_path, monkeypatch):
    """A file that is no database, a server that does not answer (MLflow's client
    retried it for minutes): one line, exit 2, from every command that reads the store."""
    from typer.testing import CliRunner

    from workflows.cli import app

    bad = tmp_path / "bad.db"
    bad.write_text("runs and models\n")
    (tmp_path / "runs").mkdir()
    cases = {
        f"sqlite:///{bad}": f"{bad}: not an MLflow store this can open (file is not a database)",
        f"sqlite:///{tmp_path / 'runs'}": f"{tmp_path / 'runs'} is a directory, not an MLflow store",  # retried ~110 s
        "http://127.0.0.1:9": "no MLflow tracking server answers at http://127.0.0.1:9 (MLFLOW_TRACKING_URI: "
        "connection refused)",
        # a scheme MLflow has no store for (the breaking helper's): MLflow's own exception, a traceback
        "bogus://x": "MLFLOW_TRACKING_URI=bogus://x: MLflow keeps no store at such a URI; give sqlite:///",
    }
    if importlib.util.find_spec("pyodbc") is None:  # a database whose driver is not installed: an ImportError
        cases["mssql://nohost/db"] = "MLFLOW_TRACKING_URI=mssql://nohost/db: the database driver it needs is not"

    def no_ray(*args, **kwargs):  # a training names the store before Ray starts (tens of seconds on a cluster)
        raise AssertionError("Ray started before the store was checked")

    monkeypatch.setattr("workflows.distributed.runtime.ray_runtime", no_ray)
    for uri, message in cases.items():
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        for command in (
            ["compare"],
            ["promote", "session-model", "1"],
            ["evaluate", "hierarchy", "--model", "models:/hierarchy-model/1"],
            ["train", "segmenter", "--gt", "no.csv", "--format", "gayo-avello"],  # before its cross-validation
            ["train", "hierarchy", "--model", "lookup", "--dim", "2", "--max-steps", "1"],
        ):
            result = CliRunner().invoke(app, command)
            lines = result.output.strip().splitlines()
            assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (command, result.output)
    # a new store under a file (MLflow's mkdir said only "[Errno 17] File exists: ...")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{bad}/runs/mlflow.db")
    result = CliRunner().invoke(app, ["train", "segmenter", "--gt", "no.csv", "--format", "gayo-avello"])
    message = f"{bad}/runs/mlflow.db: no MLflow store can be made there: {bad} is a file, not a directory"
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}", result.output
    assert bad.read_text() == "runs and models\n"


def test_a_database_of_other_tables_is_no_store_and_is_left_as_it_was(tmp_path, monkeypatch):
    """MLflow added its tables to any SQLite file, a user's own database too, even for a
    command that only reads a model."""
    import sqlite3

    from typer.testing import CliRunner

    from workflows.cli import app

    db = tmp_path / "app.db"
    with closing(sqlite3.connect(db)) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        connection.commit()
    before = db.read_bytes()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    for command in (["compare"], ["evaluate", "hierarchy", "--model", "models:/hierarchy-model/1"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and result.output.strip() == (
            f"error: {db}: a SQLite database of other tables, not an MLflow store; set MLFLOW_TRACKING_URI to a "
            "store of its own"
        ), result.output
    assert db.read_bytes() == before


def test_a_store_reached_through_a_link_into_a_new_directory_is_made_there(tmp_path, monkeypatch):
    """./mlflow.db a link to a store in a directory not yet made: SQLite makes no
    directory, and MLflow retried `unable to open database file` for minutes."""
    from workflows.tracking.store import use_store

    (tmp_path / "mlflow.db").symlink_to(tmp_path / "shared" / "runs" / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_store().search_experiments()
    assert (tmp_path / "shared" / "runs" / "mlflow.db").is_file() and (tmp_path / "mlflow.db").is_symlink()


def test_a_store_that_cannot_be_written_is_named_before_a_job_writes(tmp_path, monkeypatch):
    """A read-only store (the breaking helper bind-mounted one read-only): `train
    session` failed at its first write with five tracebacks of `attempt to write a
    readonly database`. Commands that write are refused in one line first; those that
    only read (compare) read it. (As root only a read-only mount is unwritable, so
    `os.access` answers as it would there.)"""
    import mlflow
    from typer.testing import CliRunner

    from workflows.cli import app
    from workflows.tracking import store as store_module

    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.MlflowClient().search_experiments()  # the store exists, writable, with its tables
    real = os.access
    monkeypatch.setattr(store_module.os, "access", lambda p, mode: False if mode == os.W_OK else real(p, mode))
    result = CliRunner().invoke(app, ["train", "segmenter", "--gt", "no.csv", "--format", "gayo-avello"])
    said = f"error: the MLflow store {db} cannot be written here (read-only)"
    assert result.exit_code == 2 and result.output.strip().startswith(said), result.output
    assert len(result.output.strip().splitlines()) == 1
    read = CliRunner().invoke(app, ["compare"])  # reads: no run there yet, and that is what it says
    assert "no experiment 'session-model'" in read.output and "cannot be written" not in read.output
    moved = CliRunner().invoke(app, ["promote", "session-model", "1"])  # writes an alias: SQLAlchemy's traceback
    assert moved.exit_code == 2 and moved.output.strip() == (
        f"{said}: this command moves the champion alias in it; set MLFLOW_TRACKING_URI to a store it may write"
    ), moved.output


def test_jobs_started_together_on_a_new_store_all_land(tmp_path):
    """MLflow creates a new SQLite store's tables for tracking and for the registry
    apart, the registry's without a lock: three jobs started together on a new store
    all failed in its migrations and left it half-migrated for good."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = (
        "import sys; from workflows.tracking.store import use_store; use_store().create_registered_model(sys.argv[1])"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    jobs = [subprocess.Popen([sys.executable, "-c", code, f"m{i}"], env=env, stderr=subprocess.PIPE, text=True)
            for i in range(3)]  # fmt: skip
    failed = [job.stderr.read()[-2000:] for job in jobs if job.wait(timeout=300) != 0]
    assert not failed, failed
    assert sorted(m.name for m in MlflowClient(uri, registry_uri=uri).search_registered_models()) == ["m0", "m1", "m2"]


class _Nothing(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def _session_model() -> str:
    """The URI of a pyfunc model of kind `session`, logged to the active run."""
    return mlflow.pyfunc.log_model(name="model", python_model=_Nothing(), metadata={"kind": "session"},
                                   pip_requirements=["mlflow"]).model_uri  # fmt: skip


def test_promote_refuses_a_version_whose_model_files_are_gone(store):
    """A version whose artifacts were deleted was made the champion, which every job then
    refused to load (`cannot read its MLmodel file`): promote refuses it first, for the
    project's names and a user's own alike, and the champion stays where it was."""
    import shutil
    from pathlib import Path
    from urllib.parse import urlparse

    from typer.testing import CliRunner

    from workflows.cli import app

    with mlflow.start_run():
        kept, gone, part_gone = _session_model(), _session_model(), _session_model()
    for name in ("session-model", "my-model"):
        for uri in (kept, gone, part_gone):
            mlflow.register_model(uri, name)
        store.set_registered_model_alias(name, CHAMPION, "1")
    shutil.rmtree(Path(urlparse(store.get_model_version_download_uri("session-model", "2")).path))
    # its MLmodel kept, a file the model loads gone: a project's name loads the model before it promotes it
    (Path(urlparse(store.get_model_version_download_uri("session-model", "3")).path) / "python_model.pkl").unlink()
    for name, version in (("session-model", "2"), ("my-model", "2"), ("session-model", "3")):
        refused = CliRunner().invoke(app, ["promote", name, version])
        assert refused.exit_code == 2, refused.output
        assert refused.output.startswith(f"error: {name} version {version}: its model files cannot be read ("), (
            refused.output
        )
        assert len(refused.output.strip().splitlines()) == 1
        assert str(store.get_model_version_by_alias(name, CHAMPION).version) == "1"
    assert CliRunner().invoke(app, ["promote", "session-model", "1"]).exit_code == 0  # a whole one loads


def test_promote_refuses_a_champion_of_another_kind_for_the_projects_own_names(store):
    """A session model registered as hierarchy-model (the breaking helper's) was made its
    champion, which annotate, score and evaluate hierarchy then all refused. Promote now
    refuses it first; the right kind, and names of the user's own, are promoted."""
    from typer.testing import CliRunner

    from workflows.cli import app

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_Nothing(), metadata={"kind": "session"},
                                       pip_requirements=["mlflow"])  # fmt: skip
    for name in ("hierarchy-model", "session-model", "my-model"):
        mlflow.register_model(info.model_uri, name)
    runner = CliRunner()
    wrong = runner.invoke(app, ["promote", "hierarchy-model", "1"])
    assert wrong.exit_code == 2 and wrong.output.strip() == (
        "error: hierarchy-model version 1 is a session model: the champion of hierarchy-model must be a hierarchy "
        "model (register it under its own name)"
    ), wrong.output
    for spelled in (" 1", "1 ", "01"):  # the kind's check read no version of " 1"; MLflow moved the alias
        again = runner.invoke(app, ["promote", "hierarchy-model", spelled])
        assert again.exit_code == 2 and again.output == wrong.output, again.output
    for nonsense in ("+1", "v1", "1.0", "\u00b2"):  # a superscript two is a digit to str.isdigit
        refused = runner.invoke(app, ["promote", "hierarchy-model", nonsense])
        assert refused.output.strip() == f"error: VERSION {nonsense!r}: a version is a whole number (1, 2, ...)"
    assert not store.get_registered_model("hierarchy-model").aliases  # no champion made
    for name in ("session-model", "my-model"):
        done = runner.invoke(app, ["promote", name, "1"])
        assert done.exit_code == 0, done.output
        assert str(store.get_model_version_by_alias(name, CHAMPION).version) == "1"


def test_a_run_whose_job_was_killed_is_ended_killed_not_left_running(store):
    """A job killed with SIGKILL cannot end its MLflow run: it stayed RUNNING in the UI and
    in `compare` for ever. `compare` and the next training run of the experiment end it
    KILLED, since its process is gone; a run whose process lives is left running."""
    import json
    import signal

    from typer.testing import CliRunner

    from workflows.cli import app
    from workflows.tracking.store import ENDED_TAG, PROCESS_TAG, training_run

    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal; from workflows.tracking.store import training_run\n"
         "with training_run('session-model', 'train session', {'lr': 1}) as run_id:\n"
         "    print(run_id, flush=True); os.kill(os.getpid(), signal.SIGKILL)"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_id = killed.stdout.strip()
    assert store.get_run(run_id).info.status == "RUNNING"
    # the fourth breaking helper's find: a process this one cannot see (a container sharing the host's name, in
    # a PID namespace of its own; another machine of that name, another boot) is not taken for gone
    dead = json.loads(store.get_run(run_id).data.tags[PROCESS_TAG])
    unseen = []
    for other in ({"pid_namespace": "1"}, {"boot": "another-boot"}):
        unseen.append(store.create_run(store.get_run(run_id).info.experiment_id).info.run_id)
        store.set_tag(unseen[-1], PROCESS_TAG, json.dumps({**dead, **other}))
    with training_run("session-model", "train session", {"lr": 2}) as live:  # this process: alive
        shown = CliRunner().invoke(app, ["compare", "--json"])
        assert shown.exit_code == 0, shown.output
        status = {r["run_id"]: r["status"] for r in json.loads(shown.stdout)["runs"]}
        assert status == {run_id: "KILLED", live: "RUNNING", **dict.fromkeys(unseen, "RUNNING")}
    assert store.get_run(run_id).data.tags[ENDED_TAG].startswith("its process ended")
    assert store.get_run(live).info.status == "FINISHED"


def test_a_run_id_as_compare_shows_it_is_named_as_a_part_of_one(store):
    """`compare` shows a run id's first 8 digits; given one, `evaluate` said only "no
    model there (no MLmodel file)", as of a path."""
    import pytest

    from workflows.tracking.store import require_model, run_of

    for check in (require_model, run_of):
        with pytest.raises(ValueError, match=r"b883f736: no model there \(no MLmodel file\), and not a whole run id "
                                             r"\(8 of its 32 digits"):  # fmt: skip
            check("b883f736")
    with pytest.raises(ValueError, match=r"^notes: no model there \(no MLmodel file\); give"):
        require_model("notes")


def test_what_a_test_logs_to_mlflow_stays_out_of_the_checkout(store, monkeypatch, pytestconfig):
    """MLflow resolves a SQLite store's default artifact root, `./mlruns`, against the
    working directory, and a job given no MLFLOW_TRACKING_URI makes ./mlflow.db there:
    run from the checkout, the suite left a ./mlruns of the Default experiment's and the
    jobs' experiments' artifacts in it (test_annotate, test_tracking, test_train_segmenter,
    ...), and a ./mlflow.db (test_cli_sessions, test_train_segmenter). Tests run in a
    directory of the session's own (tests/conftest.py)."""
    from pathlib import Path

    from workflows.tracking.store import training_run
    from workflows.tracking.uri import tracking_uri

    checkout = pytestconfig.rootpath
    with mlflow.start_run() as default_run:  # the Default experiment of a test's store
        mlflow.log_text("logged", "a.txt")
    with training_run("session-model", "test", {}) as job_run:  # an experiment a job makes
        mlflow.log_text("logged", "a.txt")
    for run_id in (default_run.info.run_id, job_run):
        logged = Path(store.get_run(run_id).info.artifact_uri.removeprefix("file://")) / "a.txt"
        assert logged.read_text() == "logged" and not logged.is_relative_to(checkout)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert not Path(tracking_uri().removeprefix("sqlite:///")).is_relative_to(checkout)


def _champion(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        return None


def _logged(auc: float) -> tuple[str, str]:
    """A run that logged a session model and `val_auc`: (the model's URI, the run id)."""
    with mlflow.start_run() as run:
        mlflow.log_metric("val_auc", auc)
        return _session_model(), run.info.run_id


@pytest.mark.parametrize("method", ["update_model_version", "set_model_version_tag", "set_registered_model_alias"])
def test_a_registration_broken_off_inside_a_registry_call_leaves_no_version(store, monkeypatch, method):
    """The breaker's find: a SIGTERM as `Created version` was printed left that version
    registered (no description, no metric tag) of a run that failed, and `promote` took
    it. A registration is one unit: a stop raised inside any of its registry calls after
    the version is made deletes it, puts the champion alias back, and deletes the
    registered model it made."""
    from workflows.tracking.store import register

    first, _ = _logged(0.6)
    assert register(first, "fresh", "val_auc")[1]  # version 1, the champion
    better, _ = _logged(0.9)
    original = getattr(MlflowClient, method)

    def stopped(self, *args, **kwargs):
        original(self, *args, **kwargs)  # done, then the stop lands
        raise KeyboardInterrupt

    monkeypatch.setattr(MlflowClient, method, stopped)
    for name in ("fresh", "new-name"):
        with pytest.raises(KeyboardInterrupt):
            register(better, name, "val_auc")
    monkeypatch.undo()
    assert [str(v.version) for v in store.search_model_versions("name='fresh'")] == ["1"]
    assert _champion(store, "fresh") == "1"
    assert [m.name for m in store.search_registered_models()] == ["fresh"]  # new-name made, then deleted


def test_a_sigterm_during_registration_is_held_off_then_registers_nothing(store, monkeypatch):
    """With the command's handlers (`stop_on_signals`), a SIGTERM inside a registry call
    waits until the registration's steps are done (no write broken off), which are then
    undone before `Stopped` is raised; the run it came in ends FAILED, at once."""
    import signal
    import time

    from workflows import errors
    from workflows.tracking.store import register, training_run

    monkeypatch.setattr(errors, "_received", [])  # this process's stops, for this test alone
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    original = MlflowClient.update_model_version
    sent = []

    def signalled(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        sent.append(True)  # went on: the handler raised nothing here
        return original(self, *args, **kwargs)

    try:
        errors.stop_on_signals()
        monkeypatch.setattr(MlflowClient, "update_model_version", signalled)
        started = time.monotonic()
        with pytest.raises(errors.Stopped), training_run("Default", "test", {}) as run_id:
            register(_session_model(), "session-model", "val_auc")
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)
    assert sent and errors.stopped_by() == "SIGTERM"
    assert not store.search_model_versions(f"run_id='{run_id}'")
    assert not store.search_registered_models()
    assert store.get_run(run_id).info.status == "FAILED"
    assert time.monotonic() - started < 15  # nothing waited on a lock


def test_a_failed_job_deletes_the_version_it_registered(store):
    """A job that fails (or is stopped) after its model was registered, inside its
    `training_run`, leaves no version of its failed run; the champion goes back."""
    from workflows.tracking.store import register, training_run

    kept, _ = _logged(0.5)
    register(kept, "session-model", "val_auc")
    with pytest.raises(RuntimeError), training_run("Default", "test", {}) as run_id:
        mlflow.log_metric("val_auc", 0.9)
        assert register(_session_model(), "session-model", "val_auc")[1]  # took the alias
        raise RuntimeError("after the registration")
    assert store.get_run(run_id).info.status == "FAILED"
    assert [str(v.version) for v in store.search_model_versions("name='session-model'")] == ["1"]
    assert _champion(store, "session-model") == "1"


def test_a_stop_inside_a_registry_commit_ends_the_run_failed_at_once(store):
    """The breaker's `database is locked`: a stop raised inside a registry call's commit
    left that transaction's lock on the SQLite store, the run's end (FAILED) waited its
    20 s for it and failed, and the run stayed RUNNING until `compare` marked it KILLED.
    The broken write is let go; the run ends FAILED, and no version is left."""
    import time

    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import event

    from workflows.tracking.store import register, tracking_uri, training_run

    store.search_registered_models()  # the registry's engine made
    engine = SqlAlchemyStore._engine_map[tracking_uri()]
    fired = []

    def stop_in_commit(connection):
        if not fired:
            fired.append(True)
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), training_run("Default", "test", {}) as run_id:
        model = _session_model()
        event.listen(engine, "commit", stop_in_commit)
        try:
            register(model, "session-model", "val_auc")
        finally:
            event.remove(engine, "commit", stop_in_commit)
    assert fired and time.monotonic() - started < 15
    assert store.get_run(run_id).info.status == "FAILED"
    assert not store.search_model_versions(f"run_id='{run_id}'")


def test_promote_refuses_a_version_of_a_run_that_did_not_finish(store, monkeypatch):
    """The breaker's find: `promote session-model 7` made the champion of a version whose
    run had FAILED (a stopped job's). Refused in one line, before its model is loaded
    (it was loaded first: seconds for a model then refused); the alias stays."""
    from typer.testing import CliRunner

    from workflows.cli import app

    finished, _ = _logged(0.5)
    failed, failed_run = _logged(0.9)
    for uri in (finished, failed):
        mlflow.register_model(uri, "session-model")
    store.set_registered_model_alias("session-model", CHAMPION, "1")
    store.set_terminated(failed_run, "FAILED")
    loaded = []
    load_model = mlflow.pyfunc.load_model
    monkeypatch.setattr(mlflow.pyfunc, "load_model", lambda *a, **k: loaded.append(a) or load_model(*a, **k))
    refused = CliRunner().invoke(app, ["promote", "session-model", "2"])
    assert not loaded
    assert refused.exit_code == 2, refused.output
    assert refused.output.strip() == (
        f"error: session-model version 2: its run {failed_run} ended FAILED, not FINISHED: the model of a job "
        "that did not finish is not made the champion"
    )
    assert _champion(store, "session-model") == "1"
    store.set_terminated(failed_run, "RUNNING")
    assert "is still RUNNING" in CliRunner().invoke(app, ["promote", "session-model", "2"]).output
    store.set_terminated(failed_run, "FINISHED")
    assert CliRunner().invoke(app, ["promote", "session-model", "2"]).exit_code == 0


def test_hierarchy_runs_that_differ_only_in_a_seed_that_draws_nothing_are_compared(store, tmp_path):
    """A tester's find: runs differing only in `--seed` were never compared for champion
    ("trained with seed 0 (this one 1), so the two are not compared"), even where the seed
    draws nothing (HierarCaps, or WordNet with `--holdout none`). The champion now compares
    the digest of the evaluation data actually used (`evaluation_digest`), as the session
    model compares its validation pairs': the same whatever the seed where it draws nothing,
    another where it draws the held-out pairs, and another for a directory whose files changed."""
    import gzip
    from dataclasses import replace

    from hierarchies.hierarcaps import EXPANDED_FILE, TEST_FILE
    from workflows.jobs.train_hierarchy import CHAMPION_SAME, HierarchyTrainConfig, evaluation_digest
    from workflows.training.hierarchy import load_data

    def digest(cfg: HierarchyTrainConfig) -> str:
        return evaluation_digest(load_data(cfg), cfg)

    mammals = HierarchyTrainConfig(model="tiny")
    assert digest(mammals) == digest(replace(mammals, seed=1))
    held = replace(mammals, holdout="edges")
    assert digest(held) != digest(replace(held, seed=1)) and digest(held) != digest(mammals)

    def write(test: str) -> HierarchyTrainConfig:
        (tmp_path / TEST_FILE).write_text(f"id,captions,image_url\n0,{test},te0\n")
        expanded = "positive,negative,image_url\nfood => fruit => pome => apple,x => y => z => w,tr0\n"
        (tmp_path / EXPANDED_FILE).write_bytes(gzip.compress(expanded.encode()))
        return HierarchyTrainConfig(data=f"hierarcaps:{tmp_path}", model="tiny").resolved()

    caps = write("animal => bird => raptor => eagle")
    first = digest(caps)
    assert first == digest(replace(caps, seed=1)) and first != digest(mammals)
    assert digest(write("animal => bird => songbird => robin")) != first  # the same path, other test chains

    def version(value: float, **params: object) -> str:
        return _registered(store, "h2", {"data": caps.data, "seed": 0, "eval_digest": first, **params}, "map", value)

    store.create_registered_model("h2")
    assert promote_if_best(store, "h2", version(0.5), "map", same=CHAMPION_SAME)
    assert promote_if_best(store, "h2", version(0.6, seed=1), "map", same=CHAMPION_SAME)  # the seed drew nothing
    changed = promote_if_best(store, "h2", version(0.9, eval_digest="0" * 16), "map", same=CHAMPION_SAME)
    assert not changed and "was trained with eval_digest" in changed.why
