"""GPUs asked for where none can come. A job that starts its own local Ray on a machine
whose torch sees fewer GPUs than it asks for is refused in one line, before Ray, MLflow
or its output start: Ray would wait for them for ever (score's actors pend; Ray Train
retries its worker group every 60 s, with a traceback each time). A named cluster is
left to Ray, whose autoscaler may add GPU nodes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from workflows.cli import app
from workflows.distributed.runtime import cpus_per_worker, require_gpus, workers_waiting

runner = CliRunner()
JOBS_API = "http://127.0.0.1:8265"  # what a shell sets for `ray job submit`: names no cluster


@settings(max_examples=80, deadline=None)
@given(
    needed=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]),
    have=st.integers(0, 4),
    address=st.sampled_from([None, "", "local", "127.0.0.1:6379", "ray://head:10001", "auto"]),
    env=st.sampled_from([None, "", "local", JOBS_API, "10.0.0.5:6379"]),
)
def test_refused_exactly_when_an_own_local_ray_would_lack_gpus(needed, have, address, env):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "device_count", lambda: have)
        if env is None:
            patch.delenv("RAY_ADDRESS", raising=False)
        else:
            patch.setenv("RAY_ADDRESS", env)
        # Ray's `local` is a new local Ray, given as --address or as RAY_ADDRESS
        own_local_ray = address == "local" or (not address and env in (None, "", "local", JOBS_API))
        if own_local_ray and needed > 0 and have < needed:
            with pytest.raises(ValueError, match=rf"^--gpu: the job needs {needed:g} GPU\(s\) and torch sees {have} "):
                require_gpus(needed, address, "--gpu", "train on CPUs without --gpu")
        else:
            require_gpus(needed, address, "--gpu", "train on CPUs without --gpu")


TRAIN = "train on CPUs without --gpu"
SCORE = "score on CPUs: --gpus-per-worker 0"
ASKING_FOR_GPUS = [
    (["train", "session", "--pairs", "PAIRS", "--model", "tiny", "--gpu", "--workers", "2"], "--gpu", "2", TRAIN),
    (["train", "session", "--pairs", "PAIRS", "--model", "tiny", "--gpu", "--address", "local"], "--gpu", "1", TRAIN),
    (["train", "hierarchy", "--data", "wordnet-mammals", "--model", "tiny", "--gpu"], "--gpu", "1", TRAIN),
    (["train", "hierarchy", "--data", "wordnet-mammals", "--model", "lookup", "--gpu"], "--gpu", "1", TRAIN),
    (["score", "LOG", "-f", "aol", "--session-model", "models:/never-read/1", "--gpus-per-worker", "0.25",
      "-o", "OUT"], "--gpus-per-worker", "0.25", SCORE),
    (["score", "LOG", "-f", "aol", "--session-model", "models:/never-read/1", "--gpus-per-worker", "1",
      "--engine", "ray", "--address", "local", "-o", "OUT"], "--gpus-per-worker", "1", SCORE),
    (["demo", "-o", "OUT", "--session-gpu"], "--session-gpu", "2", "run the demo on CPUs without --session-gpu"),
    (["demo", "-o", "OUT", "--hierarchy-gpu"], "--hierarchy-gpu", "1", "run the demo on CPUs without --hierarchy-gpu"),
    (["demo", "-o", "OUT", "--score-gpus-per-worker", "0.25"], "--score-gpus-per-worker", "0.25",
     "run the demo on CPUs without --score-gpus-per-worker"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "option", "needed", "instead"), ASKING_FOR_GPUS)
def test_each_command_asking_for_gpus_on_a_machine_without_is_refused_before_it_starts(
    command, option, needed, instead, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)  # the machine without a GPU, on any machine
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    log = tmp_path / "log.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n")
    places = {"PAIRS": str(tmp_path / "pairs"), "LOG": str(log), "OUT": str(tmp_path / "out")}
    done = runner.invoke(app, [places.get(word, word) for word in command])
    assert done.exit_code == 2, done.output
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert lines == [f"error: {option}: the job needs {needed} GPU(s) and torch sees 0 on this machine ({instead}, "
                     "or run it on a Ray cluster with GPUs: --address)"], done.output  # fmt: skip
    assert not store.exists() and not (tmp_path / "out").exists()  # no MLflow store opened, no output claimed


REFUSAL_BEFORE_IMPORTS = """
import sys
import torch
torch.cuda.device_count = lambda: 0  # the machine without a GPU, on any machine
from workflows.main import main
sys.argv = ["sessionflow", *sys.argv[1:]]
try:
    main()
except SystemExit as stop:
    code = stop.code
heavy = sorted(name for name in ("transformers", "mlflow", "ray.train") if name in sys.modules)
print("exit", code, "imported", heavy)
"""


@pytest.mark.parametrize(
    "command",
    [["train", "session", "--model", "minilm-local", "--gpu"], ["train", "hierarchy", "--gpu"]],
    ids=["session", "hierarchy"],
)
def test_a_training_refuses_gpus_before_importing_the_encoder_or_the_tracking(command, tmp_path):
    """The refusal is the job's first act: it came after transformers' and MLflow's imports,
    about 4 s of a 6.8 s refusal here."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", REFUSAL_BEFORE_IMPORTS, *command],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "exit 2 imported []", done.stdout + done.stderr
    assert "the job needs 1 GPU(s) and torch sees 0" in done.stderr


@settings(max_examples=200, deadline=None)
@given(nodes=st.lists(st.integers(0, 64), min_size=1, max_size=6), workers=st.integers(1, 16))
def test_cpus_per_worker_is_the_most_that_lets_every_worker_fit_on_a_node(nodes, workers):
    """CPUs too: the most CPUs a training worker asks for lets every worker fit on one
    node (`test_train_hierarchy.py` runs the cluster user's two one-CPU nodes for real)."""
    fits = lambda t: sum(n // t for n in nodes) >= workers  # noqa: E731
    t = cpus_per_worker(workers, nodes)
    assert t >= 1 and (fits(t) or t == 1) and not any(fits(u) for u in range(t + 1, max(nodes) + 2))
    assert cpus_per_worker(1, [1, 1]) == 1 and cpus_per_worker(2, [2]) == 1 and cpus_per_worker(1, [2]) == 2


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.lists(st.fixed_dictionaries({"CPU": st.integers(0, 8), "GPU": st.integers(0, 2)}), max_size=5),
    workers=st.integers(1, 12),
    gpu=st.booleans(),
)
def test_a_training_whose_workers_do_not_fit_the_nodes_says_so(nodes, workers, gpu):
    """Where the workers do not all fit on the cluster's live nodes, Ray Train waits for an
    autoscaler without a word (for ever on a cluster without one): a warning says so,
    naming what each worker asks for and what each node offers; none where they fit."""
    per_worker = {"CPU": 1, "GPU": 1} if gpu else {"CPU": cpus_per_worker(workers, [n["CPU"] for n in nodes])}
    # brute force: place workers one by one on any node with room
    room, placed = [dict(n) for n in nodes], 0
    for _ in range(workers):
        node = next((r for r in room if all(r[k] >= v for k, v in per_worker.items())), None)
        if node is None:
            break
        placed += 1
        for k, v in per_worker.items():
            node[k] -= v
    told = workers_waiting(workers, per_worker, nodes)
    assert (told is None) == (placed == workers)
    if told is not None:
        assert told.startswith(f"warning: --workers {workers} of ") and f"hold {placed} such worker(s) now" in told
        assert "\n" not in told


def test_the_waiting_warning_names_each_node():
    assert workers_waiting(3, {"CPU": 1}, [{"CPU": 1.0}, {"CPU": 1.0, "GPU": 0.0}]) == (
        "warning: --workers 3 of 1 CPU each: the cluster's nodes hold 2 such worker(s) now (CPU per node: 1, 1); "
        "Ray Train waits until an autoscaler adds nodes, retrying every 60 s, and on a cluster without one (started "
        "by `ray start`) for ever (Ctrl-C stops it; or lower --workers)"
    )
    assert workers_waiting(1, {"CPU": 1, "GPU": 1}, [{"CPU": 4.0}]) == (  # none fits: fewer workers are no help
        "warning: --workers 1 of 1 CPU and 1 GPU each: the cluster's nodes hold 0 such worker(s) now (CPU per node: "
        "4; GPU per node: 0); Ray Train waits until an autoscaler adds nodes, retrying every 60 s, and on a cluster "
        "without one (started by `ray start`) for ever (Ctrl-C stops it)"
    )
    assert workers_waiting(2, {"CPU": 2}, [{"CPU": 2.0}, {"CPU": 3.0}]) is None


def test_a_score_whose_gpu_actors_fit_no_node_says_so_before_it_waits():
    """`score --gpus-per-worker` on a cluster whose nodes have no GPU waited for ever
    behind Ray Data's own messages, which named no option (the cluster user's find):
    its actors are warned of as training's workers are, naming what to do instead."""
    from workflows.distributed.score_job import actors_waiting, encoding_pool

    cpus_only = [{"CPU": 2.0}, {"CPU": 1.0}]
    pool = encoding_pool(0, 0.25, cpus_only, partitions=8)
    assert actors_waiting(pool, cpus_only) == (
        "warning: score's actors (--gpus-per-worker 0.25) of 1 CPU and 0.25 GPU each: the cluster's nodes hold 0 "
        "such worker(s) now (CPU per node: 2, 1; GPU per node: 0, 0); the actors wait until an autoscaler adds "
        "nodes, and on a cluster without one (started by `ray start`) for ever (Ctrl-C stops it; or score on CPUs: "
        "--gpus-per-worker 0)"
    )
    with_gpu = [{"CPU": 2.0}, {"CPU": 4.0, "GPU": 1.0}]
    assert actors_waiting(encoding_pool(0, 0.25, with_gpu, partitions=8), with_gpu) is None  # four share the GPU
    assert actors_waiting(encoding_pool(0, 0.0, cpus_only, partitions=8), cpus_only) is None  # on CPUs: one a CPU
