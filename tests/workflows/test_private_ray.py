"""A Ray that a command starts for itself listens on 127.0.0.1 only, whatever was
imported first. (Every test is watched for listeners beyond loopback by the
`only_loopback_listeners` fixture of tests/conftest.py; these make sure the watch
sees what it must, and cover a driver that imported Ray before anything of ours.)"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import sys
import textwrap
import time

import polars as pl
import psutil
import pytest
from listeners import ListenerWatch, decode_address, is_loopback


def ipv6_here() -> bool:
    """Whether an IPv6 socket can be bound on this machine."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.listens_everywhere
@pytest.mark.parametrize(
    ("family", "kind", "everywhere", "shown"),
    [("AF_INET", "SOCK_STREAM", "0.0.0.0", "on 0.0.0.0:"), ("AF_INET", "SOCK_DGRAM", "0.0.0.0", "on 0.0.0.0:"),
     ("AF_INET6", "SOCK_STREAM", "::", "on [::]:")],
)  # fmt: skip
def test_the_watch_sees_a_descendant_listening_on_every_interface_and_not_on_loopback(family, kind, everywhere, shown):
    if family == "AF_INET6" and not ipv6_here():
        pytest.skip("this kernel has no IPv6, so nothing can listen on it")  # runs wherever IPv6 exists (here)
    watch = ListenerWatch(interval=0.1)
    watch.start()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import socket, time
        loopback = socket.socket(socket.AF_INET, socket.{kind}); loopback.bind(("127.0.0.1", 0))
        s = socket.socket(socket.{family}, socket.{kind}); s.bind(("{everywhere}", 0))
        if socket.{kind} == socket.SOCK_STREAM:
            s.listen(); loopback.listen()
        print(loopback.getsockname()[1], s.getsockname()[1], flush=True)
        time.sleep(2)
    """)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    loopback_port, port = child.stdout.readline().split()
    child.wait(timeout=30)
    found = watch.stop()
    assert len(found) == 1 and re.fullmatch(rf"python\S*\[{child.pid}\] {re.escape(shown)}{port}", found.pop()), found
    assert loopback_port != port


def test_the_kernels_addresses_are_read_in_host_byte_order():
    assert decode_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert decode_address("0202A8C0:0016") == ("192.168.2.2", 22)
    assert decode_address("00000000000000000000000001000000:0050") == ("::1", 80)
    mapped, _ = decode_address("0000000000000000FFFF00000100007F:0050")
    assert ipaddress.ip_address(mapped).ipv4_mapped == ipaddress.ip_address("127.0.0.1") and is_loopback(mapped)
    assert not is_loopback("192.168.2.2")


def test_a_local_ray_is_private_even_when_ray_and_ray_data_were_imported_first():
    """A job's local Ray listens on the loopback address only, and is shut down after
    it; its datasets' INFO lines stay in Ray's log file, off the job's console."""
    code = textwrap.dedent("""
        import os, time
        import ray, ray.data, ray.train  # imported before anything of ours: Ray read its settings already
        from workflows.distributed.runtime import ray_runtime

        with ray_runtime(num_cpus=1):
            rows = ray.data.range(100).map_batches(lambda b: b).count()
            assert rows == 100
            print(ray.util.get_node_ip_address(), flush=True)
            time.sleep(4)  # the watch looks at every process of the tree meanwhile
    """)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RAY_")}
    watch = ListenerWatch(interval=0.2)
    watch.start()
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    found = watch.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "127.0.0.1"
    assert "Starting execution of Dataset" not in done.stdout + done.stderr
    assert not found, found
    assert time.monotonic() - started < 300
    assert not [p for p in psutil.Process().children(recursive=True) if "raylet" in p.name()]  # shut down


def test_preparing_the_task_is_left_to_the_jobs_ray_runtime():
    """Building the task puts nothing into Ray: a `ray.put` there would start a Ray of its
    own (every interface, no --address) before the job's runtime."""
    import ray

    from workflows.jobs.train_session import SessionTrainConfig
    from workflows.training.session import SessionTask

    train = pl.DataFrame({"anchor": ["a"], "positive": ["b"], "negative": ["c"], "anchor_id": [0],
                          "positive_id": [1], "negative_id": [2]})  # fmt: skip
    val = pl.DataFrame({"query_a": ["a", "a"], "query_b": ["b", "c"], "label": [1, 0]})
    task = SessionTask(SessionTrainConfig(model="tiny"), train, val)
    assert not ray.is_initialized() and task.examples == 1


def test_a_local_rays_workers_find_their_own_cluster_beside_another_local_ray():
    """Ray's state API, called in a worker (Ray Train's placement-group cleaner does),
    looks for its cluster among the Ray instances on the machine unless RAY_ADDRESS
    names it; beside another job's local Ray it found that one (as here) or raised
    "Found multiple active Ray instances" (a traceback amid `train session`'s output)."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RAY_")}
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from workflows.distributed.runtime import ray_runtime
        with ray_runtime(num_cpus=1):
            print("up", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "up"
        code = textwrap.dedent("""
            import ray
            from ray._private.services import canonicalize_bootstrap_address
            from workflows.distributed.runtime import ray_runtime

            with ray_runtime(num_cpus=1):
                found = ray.get(ray.remote(lambda: canonicalize_bootstrap_address(None)).remote())
                print(found == ray.get_runtime_context().gcs_address, flush=True)
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip().splitlines()[-1] == "True"
    finally:
        other.kill()
        other.wait(timeout=60)


def test_a_local_ray_that_does_not_start_in_time_is_one_line(tmp_path, monkeypatch):
    """The breaking helper's find: a local Ray whose processes did not come up in time (a
    loaded machine) ended the command in Ray's bare Exception, a traceback and exit 1."""
    import ray
    from typer.testing import CliRunner

    from workflows.cli import app

    def timed_out(*args, **kwargs):
        raise Exception("The current node timed out during startup. This could happen because some of the raylet "
                        "failed to startup or the GCS has become overloaded.")  # fmt: skip

    monkeypatch.setattr(ray, "init", timed_out)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    (tmp_path / "log.tsv").write_text(
        "AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n"
    )
    done = CliRunner().invoke(app, ["ingest", str(tmp_path / "log.tsv"), "-f", "aol", "--engine", "ray",
                                    "-o", str(tmp_path / "out")])  # fmt: skip
    assert done.exit_code == 2 and done.output.strip() == (
        "error: a local Ray could not start (The current node timed out during startup. This could happen because "
        "some of the raylet failed to startup or the GCS has become overloaded.); on a loaded machine try again, or "
        "run the job with --engine local"), done.output  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_training_whose_local_ray_does_not_start_is_not_told_of_an_engine_it_has_not(tmp_path, monkeypatch):
    """The new user's find: `train session` whose local Ray did not start in time was told
    to "run the job with --engine local", an option no training has (`No such option:
    --engine`). A training is told to try again; a data job keeps its way without Ray."""
    import ray
    from typer.testing import CliRunner

    from workflows.cli import app

    def timed_out(*args, **kwargs):
        raise Exception("The current node timed out during startup.")

    monkeypatch.setattr(ray, "init", timed_out)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    done = CliRunner().invoke(app, ["train", "hierarchy", "--model", "lookup", "--dim", "2", "--max-steps", "2",
                                    "--storage", str(tmp_path / "ray"), "--no-register"])  # fmt: skip
    assert done.exit_code == 2 and done.output.strip() == (
        "error: a local Ray could not start (The current node timed out during startup.); on a loaded machine try again"
    ), done.output
