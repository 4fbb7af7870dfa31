"""A two-node Ray cluster with object storage and an MLflow server, all on one machine,
and the pipeline submitted to it with `ray job submit` over s3:// URIs only.

Run by tests/workflows/test_cluster.py inside a network namespace of its own whose
only interface is loopback (`unshare --net`), so that nothing started here can be
reached from outside, whatever it binds to:

- an S3 endpoint on 127.0.0.1 (moto's standalone server) standing in for the cloud;
- `mlflow server` on 127.0.0.1, runs in SQLite, artifacts on that endpoint (without
  MLflow's job execution, three more processes this pipeline has no use for);
- the head node (`ray start --head`, 1 CPU) and a second node (1 CPU) started in a
  mount namespace of its own with a private tmpfs over WORK: what one node writes
  under WORK (Ray's session files, spilled objects, working-dir copies) the other
  never sees, as between two machines;
- jobs: segment -> mine -> train session (2 workers) -> score, reading and writing
  s3:// only, reaching MLflow through MLFLOW_TRACKING_URI in the runtime env; then
  training without `--storage`, which two nodes cannot use, refused at its start.

Writes WORK/result.json: per stage the Ray node ids its tasks and actors ran on, the
outputs copied back from the endpoint to WORK/results/, and the PIDs stopped.

    python tests/workflows/cluster_driver.py WORK LOG REPO
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
BUCKET = "sessionflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError as err:
            if getattr(err, "code", None):  # an HTTP error status: the server answers
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer") from None
            time.sleep(0.3)


def run_checked(command: list[str], **kwargs) -> None:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def processes_naming(text: str) -> list[psutil.Process]:
    """Processes whose command line names `text`, with their descendants."""
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(text in arg for arg in p.info["cmdline"] or []):
                found[p.pid] = p
                found.update({c.pid: c for c in p.children(recursive=True)})
    return list(found.values())


def stop(groups: dict[str, list[psutil.Process]]) -> dict[str, list[int]]:
    """Stop every group's processes by PID, all at once: SIGTERM, then SIGKILL for those
    still running after 5 s (a throwaway cluster has nothing to flush). The PIDs, by group."""
    processes = [p for group in groups.values() for p in group]
    for p in processes:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(processes, timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    return {name: sorted(p.pid for p in group) for name, group in groups.items()}


def main(work: Path, log: Path, repo: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    s3_port, mlflow_port, gcs_port, dashboard_port = (free_port() for _ in range(4))
    endpoint, tracking = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{mlflow_port}"
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_", "AWS_"))}
    env |= aws | {"PATH": f"{BIN}{os.pathsep}{env['PATH']}", "RAY_AUTH_MODE": "disabled"}
    os.environ.update(aws)
    result: dict = {"stages": {}, "stopped": {}, "phase_seconds": {}}
    clock = [time.monotonic()]

    def phase(name: str) -> None:  # seconds since the last phase ended, for the test's printout
        now = time.monotonic()
        result["phase_seconds"][name] = round(now - clock[0], 1)
        clock[0] = now

    started: dict[str, list[psutil.Process]] = {}
    head_dir, node_dir = work / "ray-head", work / "ray-node"
    try:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            env=env,
            stdout=(work / "moto.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        started["s3 endpoint"] = [psutil.Process(moto.pid)]
        wait_http(endpoint)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        from sessions import storage

        storage.copy_file(str(log), f"s3://{BUCKET}/logs/{log.name}")
        phase("s3 endpoint")

        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
             "--artifacts-destination", f"s3://{BUCKET}/mlflow", "--host", "127.0.0.1", "--port", str(mlflow_port),
             "--workers", "1"],
            env=env | {"MLFLOW_S3_ENDPOINT_URL": endpoint, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=(work / "mlflow.log").open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started["mlflow server"] = [psutil.Process(server.pid)]  # ready by the time both nodes are up

        ray = str(BIN / "ray")
        run_checked(
            [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs_port}", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dashboard_port}", f"--temp-dir={head_dir}", "--num-cpus=1", "--disable-usage-stats"],
            env=env, timeout=240,
        )  # fmt: skip
        # The second node: the same machine, but WORK is a tmpfs of its own there.
        node = (
            f"mount -t tmpfs tmpfs {work} && exec {ray} start --address=127.0.0.1:{gcs_port} "
            f"--node-ip-address=127.0.0.1 --temp-dir={node_dir} --num-cpus=1 --disable-usage-stats"
        )
        run_checked(
            ["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", node], env=env, timeout=240
        )
        wait_http(f"{tracking}/health")
        phase("mlflow server, ray head and node")

        from ray.job_submission import JobSubmissionClient
        from ray.util.state import list_actors, list_nodes, list_tasks

        address = f"http://127.0.0.1:{dashboard_port}"
        nodes = [n for n in list_nodes(address=address) if n.state == "ALIVE"]
        result["nodes"] = sorted(n.node_id for n in nodes)
        result["head"] = next(n.node_id for n in nodes if n.is_head_node)
        client = JobSubmissionClient(address)
        job_env = {"env_vars": aws | {"MLFLOW_TRACKING_URI": tracking, "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"},
                   "working_dir": str(repo)}  # fmt: skip
        s3 = f"s3://{BUCKET}"
        commands = {
            "segment": f"sessionflow segment {s3}/logs/ --format aol --output {s3}/sessions",
            "mine": f"sessionflow mine {s3}/sessions --output {s3}/pairs",
            "train": f"sessionflow train session --pairs {s3}/pairs --model tiny --workers 2 --batch-size 8 "
            f"--max-steps 4 --eval-every 2 --storage {s3}/ray-results",
            "score": f"sessionflow score {s3}/logs/ --format aol --output {s3}/scores "
            "--session-model models:/session-model@champion",
        }
        # One submission of the four commands (a job's start costs seconds on every node; a
        # stage's tasks and actors are told apart by their names), and beside it, once the
        # pairs are there, training without --storage on two nodes: refused at its start.
        began = time.monotonic()
        pipeline = client.submit_job(entrypoint=" && ".join(commands.values()), runtime_env=job_env)
        refused, pairs = None, f"{s3}/pairs/report.json"
        # and a data job whose output is a local path of the head's, which the second node does not see
        local_output = client.submit_job(entrypoint=f"sessionflow segment {s3}/logs/ --format aol --output "
                                         f"{work}/local-sessions", runtime_env=job_env)  # fmt: skip
        while not client.get_job_status(pipeline).is_terminal():
            if refused is None and storage.exists(pairs):
                refused = client.submit_job(entrypoint=commands["train"].split(" --storage")[0], runtime_env=job_env)
            time.sleep(1)
        while any(j is not None and not client.get_job_status(j).is_terminal() for j in (refused, local_output)):
            time.sleep(1)
        result["local_output"] = {"status": client.get_job_status(local_output).value,
                                  "log": client.get_job_logs(local_output)[-600:],
                                  "left": os.path.exists(f"{work}/local-sessions")}  # fmt: skip
        logs = client.get_job_logs(pipeline)
        (work / "pipeline.log").write_text(logs)
        if (status := client.get_job_status(pipeline)).value != "SUCCEEDED":
            raise RuntimeError(f"pipeline: {status.value}\n{logs[-4000:]}")
        result["stages"]["pipeline"] = {"seconds": round(time.monotonic() - began, 1)}
        if refused is None:
            raise RuntimeError(f"the pipeline succeeded but {pairs} was never seen")
        result["no_storage"] = {"status": client.get_job_status(refused).value,
                                "log": client.get_job_logs(refused)[-600:]}  # fmt: skip
        # Where every task and actor ran (each `sessionflow` command is a Ray job of its own, so all of them).
        tasks = list_tasks(address=address, limit=10_000, detail=True, raise_on_missing_output=False)
        actors = list_actors(address=address, limit=10_000, detail=True, raise_on_missing_output=False)
        by_name: dict[str, set[str]] = {}
        for item in [*tasks, *actors]:
            name = getattr(item, "class_name", None) or item.name  # actors by class, tasks by name
            if item.node_id:
                by_name.setdefault(name, set()).add(item.node_id)
        result["ran_on"] = {name: sorted(ids) for name, ids in sorted(by_name.items())}
        phase("jobs and state")

        results = work / "results"
        for name in ("sessions/sessions.parquet", "sessions/report.json", "pairs/pairs.parquet", "scores/report.json"):
            from sessions import io

            source = f"{s3}/{name}"
            target = results / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".json"):
                target.write_text(storage.read_text(source))
            else:
                io.write_parquet(io.read_table(source), target)
        result["objects"] = storage.list_files(s3, recursive=True)
        phase("results copied")
    finally:
        groups = {"ray": processes_naming(str(head_dir)) + processes_naming(str(node_dir))}
        groups |= {name: [*procs, *(c for p in procs for c in _children(p))] for name, procs in started.items()}
        result["stopped"] = stop(groups)
        mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}  # this driver and its launchers
        result["left_running"] = sorted(p.pid for p in processes_naming(str(work)) if p.pid not in mine and _alive(p))
        phase("stopped")
        (work / "result.json").write_text(json.dumps(result, indent=1))


def _children(p: psutil.Process) -> list[psutil.Process]:
    try:
        return p.children(recursive=True)
    except psutil.Error:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
