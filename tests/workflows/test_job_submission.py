"""A real Ray cluster on this machine: `ray start --head` on 127.0.0.1 with ports and
a temp dir of its own, a segment + mine job through `ray job submit`, its outputs,
what listens where, and the cluster stopped by its own processes' PIDs."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sessions.io import read_table

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cluster_processes(temp_dir: Path) -> list[psutil.Process]:
    """Every process of the cluster: those naming its temp dir, and their children."""
    roots = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(temp_dir) in arg for arg in p.info["cmdline"] or []):
                roots.append(p)
        except psutil.Error:
            continue
    found = {p.pid: p for p in roots}
    for p in roots:
        try:
            found.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            continue
    return list(found.values())


def alive_not_zombie(p: psutil.Process) -> bool:
    """Still running (an exited process its parent has not reaped yet holds nothing)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def head(tmp_path_factory):
    temp_dir = Path(tmp_path_factory.mktemp("ray-head"))
    gcs, dashboard, client, agent = free_ports(4)
    env = {
        **os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "disabled",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's single-machine mode: every service on 127.0.0.1
    }  # fmt: skip
    subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
         f"--dashboard-agent-listen-port={agent}", f"--temp-dir={temp_dir}", "--num-cpus=2", "--disable-usage-stats"],
        check=True, env=env, capture_output=True, timeout=180,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{dashboard}", temp_dir, env
    finally:
        processes = cluster_processes(temp_dir)
        for p in processes:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(processes, timeout=20)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        assert not [p for p in cluster_processes(temp_dir) if alive_not_zombie(p)]


def test_segment_and_mine_submitted_as_a_ray_job(head, tmp_path, tiny_taxonomy):
    from synth import SynthConfig, write_log

    address, temp_dir, env = head
    write_log(SynthConfig(users=40, rows=3_000, seed=4), tiny_taxonomy, tmp_path / "log.tsv")
    job = (
        f"sessionflow segment {tmp_path / 'log.tsv'} --format aol --output {tmp_path / 'sessions'} && "
        f"sessionflow mine {tmp_path / 'sessions'} --output {tmp_path / 'pairs'}"
    )
    start = time.monotonic()
    submitted = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", address, "--", "bash", "-c", job],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(submitted.stdout[-2500:])  # what `ray job submit` reports (visible with pytest -s)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert "succeeded" in submitted.stdout + submitted.stderr
    report = json.loads((tmp_path / "sessions" / "report.json").read_text())
    assert report["rows_in"] == report["rows_ok"] == 3000 and report["config"]["engine"] == "ray"
    sessions = read_table(tmp_path / "sessions" / "sessions.parquet")
    assert sessions.height == 3000 and sessions["session_id"].n_unique() == report["sessions"]
    pairs = json.loads((tmp_path / "pairs" / "report.json").read_text())
    assert pairs["positives"] > 0 and pairs["negatives"] > 0
    assert time.monotonic() - start < 600

    listening = set()
    for p in cluster_processes(temp_dir):
        try:
            listening |= {c.laddr.ip for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
