"""A real two-node Ray cluster that shares no disk, with object storage and an MLflow
server (tests/workflows/cluster_driver.py, run in a network namespace whose only
interface is loopback): `ray job submit` runs segment -> mine -> train session ->
score over s3:// URIs only, and gives what the local engine gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sessions.io import read_table
from sessions.missions import MissionConfig
from sessions.pairs import MiningConfig, mine_pairs, order_pairs
from sessions.pipeline import segment_logs
from sessions.segment import SegmentConfig

pytestmark = [pytest.mark.slow, pytest.mark.own_network]
REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("cluster_driver.py")


def namespaces_allowed() -> str | None:
    """Why network and mount namespaces cannot be made here, or None when they can."""
    probe = subprocess.run(["unshare", "--net", "--mount", "--fork", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare --net --mount: {probe.stderr.strip() or probe.returncode}"


def test_two_nodes_without_a_shared_disk_run_the_pipeline_on_s3(tmp_path, tiny_taxonomy, request):
    if reason := namespaces_allowed():
        pytest.skip(f"no namespaces here ({reason})")
    from synth import SynthConfig, write_log

    log = tmp_path / "log" / "part-1.tsv"
    write_log(SynthConfig(users=60, rows=4_000, seed=11), tiny_taxonomy, log)
    work = Path(tempfile.mkdtemp(prefix="sfc-", dir="/tmp"))  # short: Ray's socket paths under it have a limit
    request.addfinalizer(lambda: shutil.rmtree(work, ignore_errors=True))
    done = subprocess.run(
        ["unshare", "--net", "--fork", sys.executable, str(DRIVER), str(work), str(log), str(REPO)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    result = json.loads((work / "result.json").read_text())
    print(json.dumps({k: v for k, v in result.items() if k != "objects"}, indent=1))  # visible with pytest -s
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    # Two nodes; each stage's work ran on both (Ray's state API: node id per task and actor).
    nodes, head = set(result["nodes"]), result["head"]
    assert len(nodes) == 2
    second = (nodes - {head}).pop()

    def ran_on(name_part: str) -> set[str]:
        return {n for name, ids in result["ran_on"].items() if name_part in name for n in ids}

    assert ran_on("_bucket_sessions") == nodes  # segment
    assert ran_on("_bucket_pairs") == nodes  # mine
    assert ran_on("RayTrainWorker") == nodes  # train session: one DDP worker on each node
    assert second in ran_on("Encoder")  # score: the registered model, loaded through the server, on node 2

    # Checkpoints on a node's own disk cannot work here: refused at the start, in one line.
    assert result["no_storage"]["status"] == "FAILED"
    assert "error: --storage (not set): this Ray cluster has 2 nodes" in result["no_storage"]["log"]
    assert "Traceback" not in result["no_storage"]["log"]
    # So is a data job's local output (it failed later: "cannot concat empty list"), and it leaves nothing.
    assert result["local_output"]["status"] == "FAILED" and not result["local_output"]["left"]
    said = f"--output {work}/local-sessions: a local path that node "
    assert said in result["local_output"]["log"] and "does not see as this one does (this Ray cluster has 2 nodes)" in (
        result["local_output"]["log"])  # fmt: skip
    assert "Traceback" not in result["local_output"]["log"]

    # Outputs on the endpoint only (nothing local), equal to the local engine's row for row.
    objects = result["objects"]
    assert any("/sessions/sessions.parquet/_manifest.json" not in o and "/sessions/sessions.parquet/" in o
               for o in objects)  # fmt: skip
    assert any(o.startswith("s3://sessionflow/mlflow/") for o in objects)  # model artifacts on object storage
    assert any(o.startswith("s3://sessionflow/ray-results/") for o in objects)  # checkpoints too
    results = work / "results"
    local = tmp_path / "local"
    segment_logs([str(log.parent)], "aol", str(local), SegmentConfig(), MissionConfig())
    expected = read_table(local / "sessions.parquet").sort("row_id")
    got = read_table(results / "sessions" / "sessions.parquet").sort("row_id")
    assert got.height == 4_000 and got.equals(expected)
    pairs = order_pairs(read_table(results / "pairs" / "pairs.parquet"))
    assert pairs.equals(mine_pairs(expected, MiningConfig()))  # in the canonical order already
    score = json.loads((results / "scores" / "report.json").read_text())
    assert score["rows_out"] == score["rows_ok"] == 4_000

    # Everything started was stopped, by PID.
    assert result["stopped"]["ray"] and result["stopped"]["s3 endpoint"] and result["stopped"]["mlflow server"]
    assert result["left_running"] == []
