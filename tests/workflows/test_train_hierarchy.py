"""Hierarchy models trained with Ray Train on the WordNet mammals, logged to a real
MLflow store; the text model registered and served; the CLI around them."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from one_worker import steps
from typer.testing import CliRunner

from workflows.cli import app
from workflows.cli.progress import out
from workflows.jobs.train_hierarchy import HierarchyTrainConfig, TrainHierarchyJob, run
from workflows.training.hierarchy import load_data

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]
runner = CliRunner()


def train_hierarchy(cfg: HierarchyTrainConfig, **settings):
    """The `train hierarchy` job with `cfg` and the job's other settings."""
    return run(TrainHierarchyJob(hierarchy=cfg, **settings))


def test_lookup_poincare_on_two_workers_holds_hits_multi_hop_pairs_out_and_scores_them(store, tmp_path):
    """HiT's multi-hop inference on the mammals (He et al. 2024; `hierarchies.hit`): a
    lookup table on two workers trains on the direct edges only and tells held-out
    transitive pairs from random and sibling negatives; `evaluate hierarchy --protocol
    hit` gives the same F1 again, and refuses a model that trained on the test pairs."""
    cfg = HierarchyTrainConfig(model="lookup", dim=5, holdout="hit-multi", eval_every=100, workers=2)  # 300 steps
    outcome = train_hierarchy(cfg, storage=str(tmp_path / "ray"))
    m = outcome.metrics
    # HiT's Poincaré lookup table on all WordNet nouns: 0.864 / 0.830; here 0.85 / 0.84
    assert m["multi_hop_f1_rn"] > 0.8 and m["multi_hop_f1_hn"] > 0.8, m
    assert m["multi_hop_test_positives"] == 268 and "mixed_hop_f1_rn" not in m  # it trained on mixed-hop's test
    assert 0.0 < m["link_map"] < m["map"]  # transitive pairs ranked by distance alone are harder than seen ones
    assert m["spearman_norm_depth"] > 0.1  # 0.24: direct edges say less of depth than the closure (0.63)
    assert outcome.registered is None and outcome.model_uri.endswith("/table")
    from workflows.cli.train import print_outcome

    with out.capture() as shown:  # the summary says why (it said "(not registered)", as after --no-register)
        print_outcome("train hierarchy", outcome)
    assert "not registered: a lookup table reads no text" in " ".join(shown.get().split())
    params = store.get_run(outcome.run_id).data.params
    assert params["lr"] == "25.0" and params["epochs"] == "150" and params["burnin_epochs"] == "10"  # as used
    inputs = {i.dataset.name for i in store.get_run(outcome.run_id).inputs.dataset_inputs}
    assert inputs == {"hierarchy pairs (train)", "hierarchy pairs (held out)"}
    logged = {a.path for a in store.list_artifacts(outcome.run_id)}
    assert outcome.figures == ["poincare_disk.png", "specificity_by_depth.png"] and set(outcome.figures) <= logged
    history = store.get_metric_history(outcome.run_id, "eval/multi_hop_f1_rn")
    assert sorted(h.step for h in history)[:2] == [100, 200]  # scored at every evaluation
    assert len(store.get_metric_history(outcome.run_id, "multi_hop_f1_rn")) == 1  # the model's, once

    evaluated = runner.invoke(app, ["evaluate", "hierarchy", "--model", outcome.run_id, "--protocol", "hit", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    again = json.loads(evaluated.stdout)
    for key in (
        "map",
        "link_map",
        "multi_hop_f1_rn",
        "multi_hop_f1_hn",
        "multi_hop_lambda_rn",
        "multi_hop_threshold_hn",
    ):
        assert again[key] == pytest.approx(m[key]), key
    refused = runner.invoke(
        app, ["evaluate", "hierarchy", "--model", outcome.run_id, "--protocol", "hit", "--holdout", "hit-mixed"]
    )
    assert refused.exit_code == 2 and "among its training pairs" in refused.output
    assert "Traceback" not in refused.output and len(refused.output.strip().splitlines()) == 1
    missing = runner.invoke(app, ["evaluate", "hierarchy", "--model", "0" * 32, "--protocol", "hit"])
    assert missing.exit_code == 2 and "0" * 32 in missing.output and "Traceback" not in missing.output
    # a lookup table reads no text: the commands that need a text model say so (it said "cannot read its MLmodel")
    (tmp_path / "log.tsv").write_text(
        "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n"
    )
    (tmp_path / "gold.csv").write_text("1;7;cats;;01/03/2006 10:00;1141207200;s1\n2;7;dogs;;01/03/2006 10:01;;s2\n")
    for uri in (outcome.model_uri, f"runs:/{outcome.run_id}"):
        log = [str(tmp_path / "log.tsv"), "-f", "aol", "-o", str(tmp_path / "out")]
        gold = ["--gt", str(tmp_path / "gold.csv"), "-f", "gayo-avello", "--model", uri]
        for command, wanted in ((["annotate", *log, "--model", uri], "a hierarchy"),
                                (["score", *log, "--session-model", uri], "a session"),
                                (["segment", *log, "--model", uri], "a session model or a segmenter"),
                                (["evaluate", "segmentation", *gold], "a session model or a segmenter"),
                                (["evaluate", "crossval", *gold], "a session")):  # fmt: skip
            refused = runner.invoke(app, command)
            lines = refused.output.strip().splitlines()
            assert refused.exit_code == 2 and len(lines) == 1, refused.output
            assert f"{uri}: a lookup table" in lines[0] and lines[0].endswith(f"this takes {wanted} model"), lines[0]
            assert not (tmp_path / "out").exists()


MAMMALS_TABLE = {"data": "wordnet-mammals", "model": "lookup", "holdout": "hit-mixed", "seed": 0}
NOUNS_TEXT = {"data": "wordnet-nouns", "model": "tiny", "holdout": "none", "seed": 0}
CAPTIONS_TEXT = {"data": "hierarcaps:captions", "model": "tiny", "holdout": "none", "seed": 0}


@pytest.mark.parametrize(
    ("trained", "given", "split"),
    [
        (MAMMALS_TABLE, {}, "hit-mixed"),  # its own split
        (MAMMALS_TABLE, {"holdout": "hit-multi"}, "hit-multi"),  # transitive test pairs: never trained on either
        ({**MAMMALS_TABLE, "holdout": "hit-multi"}, {"holdout": "hit-mixed"}, "among its training pairs"),
        ({**MAMMALS_TABLE, "holdout": "edges"}, {}, "among its training pairs"),
        (NOUNS_TEXT, {"data": "wordnet-mammals"}, "the mammals are part of the nouns"),
        ({**NOUNS_TEXT, "data": "wordnet-mammals", "holdout": "hit-mixed"}, {"data": "wordnet-nouns"}, "among its"),
        (MAMMALS_TABLE, {"seed": 1}, "among its training pairs"),
        (CAPTIONS_TEXT, {"data": "wordnet-nouns"}, "hit-mixed"),  # another hierarchy: a transfer
        (CAPTIONS_TEXT, {}, "built on WordNet"),
        (MAMMALS_TABLE, {"holdout": "edges"}, "holds out HiT's pairs"),
    ],
)
def test_hit_scores_a_model_only_on_pairs_it_never_trained_on(trained, given, split):
    from workflows.jobs.evaluate_hierarchy import hit_split

    if split.startswith("hit-"):
        assert hit_split(trained, given) == split
    else:
        with pytest.raises(ValueError, match=split):
            hit_split(trained, given)


def test_text_model_on_two_workers_registers_serves_and_reports_level_order_and_retrieval(store, tmp_path, monkeypatch):
    """A text model on a small HierarCaps (`train hierarchy` as the CLI runs it, two
    workers): registered and served as points in the ball; its level order and
    retrieval figures, and what `evaluate hierarchy` gives again from the registry, run
    in another directory (a relative `hierarcaps:DIR` was read again from there: another
    hierarchy's figures, under the model's data name)."""
    import gzip

    from hierarchies.hierarcaps import EXPANDED_FILE, TEST_FILE

    animals = ["dog", "cat", "horse", "bird", "fish", "cow"]
    chains = [f"animal => {a} => a small {a} => a small {a} on the grass at {n}" for n in range(4) for a in animals]
    captions = tmp_path / "captions"
    captions.mkdir()
    pl.DataFrame({"id": range(6), "captions": chains[:6], "image_url": [f"t{i}" for i in range(6)]}).write_csv(
        captions / TEST_FILE
    )
    expanded = pl.DataFrame({"positive": chains, "negative": chains[::-1], "image_url": [f"i{i}" for i in range(24)]})
    (captions / EXPANDED_FILE).write_bytes(gzip.compress(expanded.write_csv().encode()))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        ["train", "hierarchy", "--data", "hierarcaps:captions", "--model", "tiny", "--dim", "4", "--workers", "2",
         "--max-steps", "8", "--eval-every", "4", "--batch-size", "16", "--negatives", "8", "--lr", "1e-2",
         "--storage", str(tmp_path / "ray")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "models:/hierarchy-model/1" in result.output and "stopped │ --max-steps 8" in " ".join(result.output.split())
    run = store.get_run(store.get_model_version("hierarchy-model", "1").run_id)
    m, params = run.data.metrics, run.data.params
    assert (params["lr"], params["encoder_lr"], params["schedule"]) == ("0.01", "3e-05", "linear")  # given; by model
    # the tables it read, as `train session` logs its pairs (a hierarchy run logged none, though the README said so)
    inputs = {i.dataset.name: i.dataset for i in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["HierarCaps test chains", "hierarchy pairs (train)"]  # nothing held out on HierarCaps
    assert json.loads(inputs["hierarchy pairs (train)"].profile)["num_rows"] == int(params["train_edges"])
    assert json.loads(inputs["HierarCaps test chains"].profile)["num_rows"] == 6
    assert inputs["hierarchy pairs (train)"].source == json.dumps({"uri": str(captions)})
    assert params["data"] == f"hierarcaps:{captions}"  # the directory read, wherever the run is evaluated
    # the head fitted first (50 epochs of the training pairs in batches of 16), logged at step 0 by rank 0
    pairs = int(params["train_edges"])
    assert (params["hidden"], params["head_epochs"]) == ("512", "50") and m["head_fit_steps"] == 50 * (pairs // 16)
    assert m["head_fit_seconds"] > 0 and np.isfinite(m["head_fit_loss"])
    assert -1.0 <= m["kendall_tau"] <= 1.0 and -1.0 <= m["kendall_tau_pretrained_norm"] <= 1.0
    for prefix in ("retrieval", "pretrained_cosine_retrieval"):
        # 3 ancestors per query: precision at 3 equals recall at 3; recall grows with k
        assert m[f"{prefix}_precision_at_3"] == pytest.approx(m[f"{prefix}_recall_at_3"])
        assert m[f"{prefix}_recall_at_1"] <= m[f"{prefix}_recall_at_3"] <= m[f"{prefix}_recall_at_5"] <= 1.0

    model = mlflow.pyfunc.load_model("models:/hierarchy-model@champion")
    out = model.predict(pd.DataFrame({"text": ["animal", "a small dog", "a small dog"]}))
    points = np.stack(out["point"])
    assert points.shape == (3, 4) and np.all(np.linalg.norm(points, axis=1) < 1)  # inside the ball
    assert np.allclose(points[1], points[2]) and np.all(np.isfinite(out["norm"]))

    (tmp_path / "elsewhere" / "captions").mkdir(parents=True)  # another directory of that name, empty
    monkeypatch.chdir(tmp_path / "elsewhere")
    evaluated = runner.invoke(app, ["evaluate", "hierarchy", "--model", "models:/hierarchy-model@champion", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    again = json.loads(evaluated.stdout)
    for key in ("kendall_tau", "retrieval_recall_at_5", "pretrained_cosine_retrieval_recall_at_5"):
        assert again[key] == pytest.approx(m[key]), key

    # the hierarchy breaker's find: learning rates that drive the loss to NaN registered a model of NaN points,
    # scored MAP 0.2 by ranks of NaN distances; the workers stop at the first NaN loss and no model is kept
    monkeypatch.chdir(tmp_path)
    diverged = runner.invoke(
        app,
        ["train", "hierarchy", "--data", "hierarcaps:captions", "--model", "tiny", "--dim", "4", "--manifold",
         "euclidean", "--max-steps", "4", "--eval-every", "2", "--batch-size", "16", "--negatives", "8", "--lr",
         "1e30", "--head-lr", "1e30", "--encoder-lr", "1e30", "--storage", str(tmp_path / "ray2")],
    )  # fmt: skip
    assert diverged.exit_code == 2, diverged.output
    assert re.search(r"error: training diverged at step \d: its loss became nan, and no model is kept", diverged.output)
    assert [str(v.version) for v in store.search_model_versions("name='hierarchy-model'")] == ["1"]
    failed = store.search_runs([run.info.experiment_id], order_by=["start_time DESC"], max_results=1)[0]
    assert failed.info.status == "FAILED" and failed.data.tags["diverged_at_step"].endswith(" nan")
    # a finite loss, then a step that drives the points to NaN just before an evaluation (the change breaker's
    # find: the evaluation's NaN distances ended in a Ray traceback)
    points = runner.invoke(
        app,
        ["train", "hierarchy", "--data", "hierarcaps:captions", "--model", "tiny", "--dim", "4", "--head-epochs", "0",
         "--max-steps", "2", "--eval-every", "1", "--batch-size", "16", "--negatives", "8", "--lr", "1e30",
         "--encoder-lr", "1e30", "--storage", str(tmp_path / "ray3")],
    )  # fmt: skip
    assert points.exit_code == 2, points.output
    assert re.search(r"error: training diverged at step 1: the points of \d+ of its \d+ nodes became", points.output)
    assert [str(v.version) for v in store.search_model_versions("name='hierarchy-model'")] == ["1"]


def test_a_run_killed_and_resumed_ends_where_an_uninterrupted_run_ends(store, kill_a_worker, tmp_path):
    """Batches, negatives and initialisation depend on the seed and the step alone, so the
    steps redone after the checkpoint are the same steps: the result is the same table.
    The uninterrupted run is the task stepped in this process, as one worker steps it
    (the same numbers as an uninterrupted Ray Train run, to the last bit, in 10 s instead of 50)."""
    cfg = HierarchyTrainConfig(
        model="lookup", dim=5, holdout="edges", max_steps=300, epochs=100, batch_size=128, negatives=20,
        burnin_epochs=1, eval_every=100, patience=100, workers=1, max_failures=1,
    )  # fmt: skip
    task, table, _ = steps(cfg, load_data(cfg.resolved()).split)
    whole = task.evaluate(table, 0, 1)  # MAP 0.431: it rises at every evaluation, so the best step is the last

    import tempfile

    copies = set(Path(tempfile.gettempdir()).glob("sessionflow-resume-*"))  # the checkpoints a resume reads
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(r=train_hierarchy(cfg, storage=str(tmp_path / "cut"))))
    thread.start()
    kill_a_worker(thread, tmp_path / "cut", "hierarchy-model", 150, workers=1)  # after step 100's checkpoint
    thread.join(timeout=600)
    resumed = outcome["r"]
    run = store.get_run(resumed.run_id)
    assert int(run.data.tags["resumed_from_step"]) in (100, 200) and resumed.metrics["steps"] == 300
    assert resumed.metrics["best_step"] == 300
    for key in ("map", "mean_rank", "link_map", "spearman_norm_depth"):
        assert resumed.metrics[key] == pytest.approx(whole[key], rel=1e-9), key
    logged = torch.load(Path(mlflow.artifacts.download_artifacts(resumed.model_uri)) / "table.pt", weights_only=True)
    assert torch.equal(logged["weight"], table.state_dict()["weight"])  # the same table, to the last bit
    left = set(Path(tempfile.gettempdir()).glob("sessionflow-resume-*")) - copies  # (other tests' come and go)
    assert not left, left  # the review's find: a resume left its copy of the checkpoint


@pytest.mark.parametrize("model", ["lookup", "tiny"])
def test_a_batch_larger_than_the_data_is_refused_before_anything_starts(model, monkeypatch, tmp_path):
    """The breaking helper's find: `--batch-size 100000` failed in every worker's first
    step, was retried twice as a worker's failure, and ended in six tracebacks after
    80 s. Now one line, exit 2, before the MLflow run and Ray start (as `train session`)."""
    import workflows.jobs.train_hierarchy
    import workflows.tracking.store

    def started(*args, **kwargs):
        raise RuntimeError("started: the batch size was not refused first")

    monkeypatch.setattr(workflows.jobs.train_hierarchy, "train_best", started)
    monkeypatch.setattr(workflows.tracking.store, "training_run", started)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    done = runner.invoke(app, ["train", "hierarchy", "--model", model, "--batch-size", "100000", "--no-register"])
    lines = done.output.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1, done.output
    said = "training examples: fewer than one global batch (100,000: 100,000 a worker, 1 worker); lower --batch-size"
    assert lines[0].startswith("error: ") and said in lines[0] and not (tmp_path / "mlflow.db").exists()


TRAINERS = [["hierarchy", "--model", "lookup"], ["session", "--model", "tiny", "--pairs", "x"]]


@pytest.mark.parametrize("command", TRAINERS, ids=["hierarchy", "session"])
def test_more_workers_than_cpus_on_a_machines_own_ray_are_refused_at_once(command, monkeypatch, tmp_path):
    """The breaking helper's find: `--workers 4` on a 2-core machine asked its own local
    Ray for 4 CPUs, and Ray Train retried its worker group every 60 s for ever."""
    import os

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    have = len(os.sched_getaffinity(0))
    done = runner.invoke(app, ["train", *command, "--workers", str(have + 1), "--no-register"])
    assert done.exit_code == 2 and done.output.strip() == (
        f"error: --workers {have + 1}: each worker takes a CPU, and this machine has {have} (lower --workers, or "
        "run it on a Ray cluster: --address)"
    ), done.output


def test_a_worker_asks_for_no_more_cpus_than_one_node_has(s3, tmp_path):
    """The cluster user's find: on CPUs each worker asked for the whole cluster's CPUs
    divided by the workers, so `--workers 1` on two one-CPU nodes asked for 2 CPUs, which
    no node has, and Ray Train retried its worker group every 60 s for ever, without a
    word. A real two-node Ray (Ray's own `cluster_utils.Cluster`: two raylets here),
    checkpoints on the S3 endpoint as a cluster needs. Then more workers than the nodes
    hold: Ray Train waits for an autoscaler (this cluster has none: for ever), and the
    job says so in a warning before it waits, where it had waited without a word."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ray.cluster_utils import Cluster

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    train = [sys.executable, "-m", "workflows", "train", "hierarchy", "--model", "lookup", "--dim", "2",
             "--max-steps", "10", "--storage", f"{s3}/ray", "--no-register"]  # fmt: skip
    warning = "warning: --workers 3 of 1 CPU each: the cluster's nodes hold 2 such worker(s) now (CPU per node: 1, 1)"
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        # no --storage on two nodes: refused before an MLflow run exists (it left a FAILED run)
        local = [arg for arg in train if arg not in ("--storage", f"{s3}/ray")]
        refused = subprocess.run([*local, "--address", cluster.address], env=env, capture_output=True, text=True,
                                 timeout=240)  # fmt: skip
        assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1] == (
            "error: --storage (not set): this Ray cluster has 2 nodes; checkpoints need storage every node "
            "reaches: an object store URI such as s3://BUCKET/ray-results"
        ), refused.stderr[-3000:]
        client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
        assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []  # not even FAILED
        done = subprocess.run([*train, "--address", cluster.address], env=env, capture_output=True, text=True,
                              timeout=240)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "warning: --workers" not in done.stderr
        with open(tmp_path / "waiting.err", "w+") as err:
            waiting = subprocess.Popen([*train, "--address", cluster.address, "--workers", "3"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
            try:
                deadline = time.monotonic() + 180
                while warning not in (told := (tmp_path / "waiting.err").read_text()) and time.monotonic() < deadline:
                    assert waiting.poll() is None, told[-3000:]
                    time.sleep(0.5)
                assert warning in told, told[-3000:]
                # one Ctrl-C ends it, as the warning says (the change breaker's find: Ray Train's handler waited
                # for ever on a controller that waits for resources; three Ctrl-C ended it)
                waiting.send_signal(signal.SIGINT)
                waiting.wait(timeout=90)
                told = (tmp_path / "waiting.err").read_text()
                assert waiting.returncode == 130 and told.strip().splitlines()[-1] == "stopped by Ctrl-C", told[-3000:]
            finally:
                if waiting.poll() is None:
                    waiting.kill()
                    waiting.wait()
    finally:
        cluster.shutdown()


def test_a_lookup_table_cannot_hold_out_nodes():
    with pytest.raises(ValueError, match="held-out nodes"):
        HierarchyTrainConfig(model="lookup", holdout="nodes")


@pytest.mark.parametrize(("sent", "when", "said"), [("SIGTERM", "early", "stopped by SIGTERM"),
                                                    ("SIGTERM", "training", "stopped by SIGTERM"),
                                                    ("SIGINT", "training", "stopped by Ctrl-C")])  # fmt: skip
def test_a_training_stopped_by_a_signal_ends_its_run_and_says_so(sent, when, said, tmp_path):
    """SIGTERM (`kill`, `timeout`, a scheduler) two seconds into the run (the task being
    built, or Ray starting), or once Ray Train's worker trains: Python's default ended
    the process at once and left its MLflow run RUNNING for good, and Ray's (during its
    start) exited 15 without a word. Now SIGTERM ends a command as Ctrl-C does: one line,
    the run FAILED, exit 128 + the signal's number. (Inside Ray's blocking calls Ray
    raises a plain KeyboardInterrupt for it: the line still says SIGTERM.) Ctrl-C while
    the worker trains went to Ray Train's own handler, which aborts the run: the command
    ended with exit 1 and no word; now it ends as Ctrl-C anywhere else does."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    length = ["--head-epochs", "100000"] if when == "early" else ["--head-epochs", "1", "--max-steps", "100000"]
    job = subprocess.Popen(
        [sys.executable, "-m", "workflows", "train", "hierarchy", "--model", "tiny", "--dim", "4", *length,
         "--storage", str(tmp_path / "ray")],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def training() -> bool:
        try:
            return any("RayTrainWorker" in " ".join(p.cmdline()) for p in psutil.Process(job.pid).children(True))
        except psutil.Error:
            return False

    try:
        client, deadline, runs = MlflowClient(uri), time.monotonic() + 240, []
        while (
            (not runs or (when == "training" and not training())) and time.monotonic() < deadline and job.poll() is None
        ):
            time.sleep(1)
            if (tmp_path / "mlflow.db").exists():
                experiment = client.get_experiment_by_name("hierarchy-model")
                runs = client.search_runs([experiment.experiment_id]) if experiment else []
        assert runs and runs[0].info.status == "RUNNING", job.communicate(timeout=60)
        time.sleep(2)  # into the head's fit, or the training steps
        job.send_signal(getattr(signal, sent))
        _, err = job.communicate(timeout=120)
        status = 128 + getattr(signal, sent)
        assert job.returncode == status and err.strip().splitlines()[-1] == said, err[-3000:]
        assert "PreemptionWatcher" not in err  # a private local Ray runs no preemption watcher (its error line)
        assert client.get_run(runs[0].info.run_id).info.status == "FAILED"
    finally:  # a job that did not stop must not leave its Ray (its workers) to the tests after it
        if job.poll() is None:
            for process in [*psutil.Process(job.pid).children(recursive=True), psutil.Process(job.pid)]:
                with contextlib.suppress(psutil.Error):
                    process.kill()


def write_hierarcaps(directory: Path, train: list[str], test: list[str]) -> str:
    """A HierarCaps-shaped directory of `train` chains (the expanded file) and `test` chains: `hierarcaps:DIR`."""
    import gzip

    from hierarchies.hierarcaps import EXPANDED_FILE, TEST_FILE

    directory.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"id": range(len(test)), "captions": test, "image_url": [f"te{i}" for i in range(len(test))]},
                 schema={"id": pl.Int64, "captions": pl.String, "image_url": pl.String}).write_csv(
        directory / TEST_FILE)  # fmt: skip
    expanded = pl.DataFrame({"positive": train, "negative": ["x => y => z => w"] * len(train),
                             "image_url": [f"tr{i}" for i in range(len(train))]}).write_csv()  # fmt: skip
    (directory / EXPANDED_FILE).write_bytes(gzip.compress(expanded.encode()))
    return f"hierarcaps:{directory}"


# the tester's dag_onlyemoji
ONLY_EMOJI = ["food => dessert => cake => 蛋糕 🍰", "food => fruit => pome => apple",
              "food => fruit => citrus => lemon", "animal => bird => raptor => eagle"]  # fmt: skip


@pytest.mark.parametrize("model", ["tiny", "minilm-local"])
def test_a_node_the_model_cannot_read_is_refused_before_training_in_one_line(model, monkeypatch, tmp_path):
    """The tester's find: a caption read as `[UNK]` alone (`蛋糕 🍰`) has no point (NaN, by
    design), and training stopped at its first evaluation as "training diverged at step 5:
    the points of 1 of its 13 nodes became NaN or infinite ... lower the learning rates",
    whatever the learning rates. Now one line, exit 2, before the MLflow run and Ray start."""
    import workflows.jobs.train_hierarchy
    import workflows.tracking.store

    def started(*args, **kwargs):
        raise RuntimeError("started: the unread node was not refused first")

    monkeypatch.setattr(workflows.jobs.train_hierarchy, "train_best", started)
    monkeypatch.setattr(workflows.tracking.store, "training_run", started)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    data = write_hierarcaps(tmp_path / "dag_onlyemoji", ONLY_EMOJI, ["animal => bird => raptor => eagle"])
    done = runner.invoke(app, ["train", "hierarchy", "--data", data, "--model", model, "--max-steps", "10",
                               "--batch-size", "8", "--no-register"])  # fmt: skip
    lines = done.output.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1, done.output
    said = (
        f"{data}: 1 of its 13 nodes have a text that {model} reads as unknown tokens alone (the first: "
        "'蛋糕 🍰'), so no point can place them; remove or reword them in the data, or give --model an encoder"
    )
    assert lines[0].startswith("error: ") and said in lines[0], lines[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_a_wordnet_node_the_model_cannot_read_is_refused_too(monkeypatch, tmp_path):
    """Every data source goes through the one check: a WordNet hierarchy with a node of emoji alone."""
    import workflows.jobs.train_hierarchy
    from hierarchies.datasets import build_hierarchy
    from workflows.training.hierarchy import HierarchyData, split_edges

    h = build_hierarchy(pl.DataFrame({"id1": ["dog.n.01", "🐱.n.01"], "id2": ["mammal.n.01"] * 2}),
                        pl.DataFrame({"child": ["dog.n.01", "🐱.n.01"], "parent": ["mammal.n.01"] * 2}))  # fmt: skip
    monkeypatch.setattr(workflows.jobs.train_hierarchy, "load_data", lambda cfg: HierarchyData(split_edges(h, 0.0)))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    done = runner.invoke(app, ["train", "hierarchy", "--model", "tiny", "--batch-size", "1", "--no-register"])
    assert done.exit_code == 2 and len(done.output.strip().splitlines()) == 1, done.output
    said = "wordnet-mammals: 1 of its 3 nodes have a text that tiny reads as unknown tokens alone (the first: '🐱')"
    assert said in done.output, done.output
