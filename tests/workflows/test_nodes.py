"""Every node of a Ray cluster must reach a job's locations before its work starts there
(`workflows.distributed.nodes`): a node without the object store's credentials (set
only where the user starts jobs) failed a training at its first checkpoint with a
140-line worker traceback and a FAILED MLflow run. A real two-node Ray (Ray's own
`cluster_utils.Cluster`: two raylets on this machine) whose second node has no
credentials for the S3 endpoint (moto on 127.0.0.1) the first has them for."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import mlflow
import pytest

from sessions import storage

CREDENTIALS = "every node needs the store's credentials: set them on each node (or give the nodes an instance role), "
SUBMIT_KEYS = (
    '`ray job submit --runtime-env-json \'{"env_vars": {"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}}\'`'
)
ON_TWO = "(this Ray cluster has 2 nodes; the job's driver reaches it)"
ANOTHER_STORE = (
    "that node asks another store than the driver does: give every node the driver's endpoint and credentials (set "
    """them on each node, or pass them with `ray job submit --runtime-env-json '{"env_vars": {"AWS_ENDPOINT_URL": """
    """..., "AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}}'`) """ + ON_TWO
)


def without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a node whose Ray has no credentials for the store (empty: the SDK asks anonymously)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "")


def test_a_node_without_credentials_answers_in_the_stores_words_and_is_told_what_to_do(s3, monkeypatch):
    """What a node answers (`unreached`, run here as a node runs it) and the driver's one line."""
    from workflows.distributed.nodes import Reach, refusal, unreached

    boto3.client("s3").put_object(Bucket=s3.removeprefix("s3://"), Key="in/log.tsv", Body=b"12345")
    without_credentials(monkeypatch)
    write, read = Reach("--output", f"{s3}/out", write=True), Reach("input", f"{s3}/in/log.tsv", size=5)
    index, why, cause = unreached([write, read])
    assert index == 0 and "ACCESS_DENIED" in why and cause == "credentials", why
    said = str(refusal(write, "10.0.0.2", why, cause, 2))
    assert said.startswith(f"--output {s3}/out: node 10.0.0.2 cannot write there: ") and "\n" not in said
    assert "ACCESS_DENIED" in said and "(set AWS credentials" not in said  # the node's advice: below
    assert said.endswith(f"; {CREDENTIALS}or pass them with {SUBMIT_KEYS} {ON_TWO}"), said
    index, why, cause = unreached([read])
    said = str(refusal(read, "10.0.0.2", why, cause, 3, failed=2))
    assert said.startswith(f"input {s3}/in/log.tsv: node 10.0.0.2 cannot read it: ") and "ACCESS_DENIED" in said
    assert said.endswith("(this Ray cluster has 3 nodes; 1 other node cannot either; the job's driver reaches it)")


def test_ray_trains_checkpoints_are_probed_at_the_drivers_endpoint_and_the_nodes_environment_is_kept(
    s3, s3_endpoint, monkeypatch
):
    """Ray Train writes `--storage` through the filesystem the driver made, which carries the
    driver's S3 endpoint to every node (a data job's tasks ask their node's own): a node
    whose AWS_ENDPOINT_URL names nothing still writes checkpoints, and is not refused."""
    from workflows.distributed.nodes import Reach, unreached

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # this node's own: nothing listens
    driver = (("AWS_ENDPOINT_URL_S3", None), ("AWS_ENDPOINT_URL", s3_endpoint))
    assert unreached([Reach("--storage", f"{s3}/ray", write=True, env=driver)]) is None
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9" and "AWS_ENDPOINT_URL_S3" not in os.environ
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    objects = client.list_objects_v2(Bucket=s3.removeprefix("s3://")).get("Contents", [])
    assert not [o["Key"] for o in objects if ".probe-" in o["Key"]]  # written and deleted


@pytest.mark.parametrize(
    ("settings", "why", "cause", "said"),
    [
        (dict(what="--output", location="s3://bkt/out", write=True),
         "--output s3://bkt: cannot reach the endpoint http://10.0.0.9:9000 (AWS_ENDPOINT_URL): could not connect",
         "unreachable",
         "--output s3://bkt/out: node 10.0.0.2 cannot write there: s3://bkt: cannot reach the endpoint "
         "http://10.0.0.9:9000 (AWS_ENDPOINT_URL): could not connect; every node must reach the store: check that "
         "node's network and its AWS_ENDPOINT_URL (set it on each node, or pass it with `ray job submit "
         """--runtime-env-json '{"env_vars": {"AWS_ENDPOINT_URL": ...}}'`) """ + ON_TWO),
        (dict(what="--storage", location="s3://bkt/ray", write=True, env=(("AWS_ENDPOINT_URL", None),)),
         "--storage s3://bkt: cannot reach the endpoint https://s3.amazonaws.com (AWS_ENDPOINT_URL): timed out",
         "unreachable",
         "--storage s3://bkt/ray: node 10.0.0.2 cannot write there: s3://bkt: cannot reach the endpoint "
         "https://s3.amazonaws.com (AWS_ENDPOINT_URL): timed out; every node must reach the store: check that "
         "node's network " + ON_TWO),
        # `resolve`'s words where the node has no endpoint (a region looked up at AWS; its advice, which names
        # credentials, not in the reason): the breaker's case, once told as credentials missing
        (dict(what="--output", location="s3://bkt/out", write=True),
         "--output s3://bkt/out: When resolving region for bucket 'bkt': AWS Error NETWORK_CONNECTION during "
         "HeadBucket operation: curlCode: 28, Timeout was reached", "unreachable",
         "--output s3://bkt/out: node 10.0.0.2 cannot write there: When resolving region for bucket 'bkt': AWS Error "
         "NETWORK_CONNECTION during HeadBucket operation: curlCode: 28, Timeout was reached; every node must reach "
         "the store: check that node's network and its AWS_ENDPOINT_URL (set it on each node, or pass it with `ray "
         """job submit --runtime-env-json '{"env_vars": {"AWS_ENDPOINT_URL": ...}}'`) """ + ON_TWO),
        (dict(what="input", location="s3://bkt/in/a.gz", size=3),
         "s3://bkt/in/a.gz: the bucket bkt does not exist at AWS_ENDPOINT_URL http://10.0.0.9:9000", "bucket",
         "input s3://bkt/in/a.gz: node 10.0.0.2 cannot read it: the bucket bkt does not exist at AWS_ENDPOINT_URL "
         "http://10.0.0.9:9000; " + ANOTHER_STORE),
        # a file of another size, its key holding words of a refusal for credentials: the cause told, not the words
        (dict(what="input", location="s3://bkt/403/credentials.gz", size=3),
         "s3://bkt/403/credentials.gz: a file of 5 bytes there, not 3", "",
         "input s3://bkt/403/credentials.gz: node 10.0.0.2 cannot read it: a file of 5 bytes there, not 3; "
         + ANOTHER_STORE),
        (dict(what="input", location="/data/a.gz", size=3), "", "",
         "input /data/a.gz: a local path that node 10.0.0.2 does not see as this one does (this Ray cluster has 2 "
         "nodes); give a URI every node reaches (s3://BUCKET/...), or a file system mounted alike on every node"),
        (dict(what="--output", location="/out/.sessionflow-seen-0a1b", named="/out"), "", "",
         "--output /out: a local path that node 10.0.0.2 does not see as this one does (this Ray cluster has 2 "
         "nodes); give a URI every node reaches (s3://BUCKET/...), or a file system mounted alike on every node"),
    ],
)  # fmt: skip
def test_a_nodes_refusal_is_one_line_with_the_fix_for_its_reason(settings, why, cause, said):
    from workflows.distributed.nodes import Reach, refusal

    assert str(refusal(Reach(**settings), "10.0.0.2", why, cause, 2)) == said


@pytest.fixture(scope="module")
def two_nodes(s3_endpoint) -> Iterator[str]:
    """The cluster's address: a head node whose Ray has the store's endpoint but no
    credentials (where Ray Train's controller runs, and writes to `--storage`), and a
    second node whose Ray has both. Both listen on 127.0.0.1 only (Ray's single-machine
    mode, as `ray_runtime` sets it)."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    store = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        lacking = {**store, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
        cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1, "env_vars": lacking})
        try:
            cluster.add_node(num_cpus=1, env_vars=store)
            cluster.wait_for_nodes()
            yield cluster.address
        finally:
            cluster.shutdown()


def sessionflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workflows", *args], env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_a_training_is_refused_before_its_run_when_a_node_cannot_write_its_checkpoints(two_nodes, s3, tmp_path):
    """The cluster user's failure: refused in one line, exit 2, and no MLflow run (a FAILED one was left)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = sessionflow("train", "hierarchy", "--model", "lookup", "--dim", "2", "--max-steps", "10", "--storage",
                       f"{s3}/ray", "--no-register", "--address", two_nodes, env=env)  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    print(last)  # visible with pytest -s
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last.startswith(f"error: --storage {s3}/ray: node 127.0.0.1 cannot write there: ") and (
        "ACCESS_DENIED") in last, last  # fmt: skip
    assert last.endswith(f"; {CREDENTIALS}or pass them with {SUBMIT_KEYS} {ON_TWO}"), last
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []  # not even FAILED


@pytest.mark.slow
def test_a_ray_data_job_is_refused_before_its_work_when_a_node_cannot_write_its_output(
    two_nodes, s3, tmp_path, tiny_taxonomy
):
    """`segment --engine ray` into s3://: refused in one line before a task ran, and nothing left there."""
    from synth import SynthConfig, write_log

    log = tmp_path / "log.tsv"
    write_log(SynthConfig(users=4, rows=40, seed=3), tiny_taxonomy, log)
    out = f"{s3}/sessions"
    done = sessionflow("segment", str(log), "--format", "aol", "--engine", "ray", "--output", out,
                       "--address", two_nodes)  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    print(last)  # visible with pytest -s
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last.startswith(f"error: --output {out}: node 127.0.0.1 cannot write there: ") and (
        "ACCESS_DENIED") in last, last  # fmt: skip
    assert last.endswith(f"; {CREDENTIALS}or pass them with {SUBMIT_KEYS} {ON_TWO}"), last
    objects = boto3.client("s3").list_objects_v2(Bucket=s3.removeprefix("s3://")).get("Contents", [])
    assert [o["Key"] for o in objects] == []


@pytest.mark.slow
def test_every_node_reads_the_inputs_and_a_location_all_reach_passes(two_nodes, s3, tmp_path):
    """From a driver joined to the cluster: an s3:// input the second node cannot read is
    refused (its first file, named), and local paths both nodes see (one machine's disk
    here) pass."""
    from workflows.distributed.nodes import require_every_node_reaches
    from workflows.distributed.runtime import ray_runtime

    boto3.client("s3").put_object(Bucket=s3.removeprefix("s3://"), Key="in/log.tsv", Body=b"12345")
    (tmp_path / "out").mkdir()
    (tmp_path / "log.tsv").write_text("x")
    with ray_runtime(two_nodes):
        require_every_node_reaches(str(tmp_path / "out"), [str(tmp_path / "log.tsv")])  # passes
        with pytest.raises(storage.StorageError) as err:
            require_every_node_reaches(None, [f"{s3}/in/"])
    said = str(err.value)
    assert said.startswith(f"input {s3}/in/log.tsv: node 127.0.0.1 cannot read it: ") and "ACCESS_DENIED" in said
    assert said.endswith(f"; {CREDENTIALS}or pass them with {SUBMIT_KEYS} {ON_TWO}"), said


@pytest.mark.slow
def test_credentials_passed_in_the_jobs_env_vars_reach_every_node(two_nodes, s3):
    """What the refusal advises: the job's runtime environment (what `ray job submit
    --runtime-env-json` sets, and `ray.init` here) gives every task of the job its
    `env_vars`, on every node: then the nodes reach the store and the job passes."""
    import ray

    from workflows.distributed.nodes import require_every_node_reaches

    keys = {name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    ray.init(address=two_nodes, runtime_env={"env_vars": keys}, logging_level="WARNING")
    try:
        require_every_node_reaches(f"{s3}/out", [])
    finally:
        ray.shutdown()


@pytest.mark.parametrize(
    ("what", "where", "cause", "failed"),
    [("--output", "{s3}/out", "credentials", 1),  # the head node's Ray has no credentials
     ("--output", "{s3}-nope/out", "bucket", 2),
     ("--storage", "{s3}/ray", "unreachable", 2)],  # the driver's endpoint, which does not answer: each node asks it
)  # fmt: skip
def test_what_stood_in_a_nodes_way_comes_back_from_its_task_as_the_refusals_cause(
    two_nodes, s3, what, where, cause, failed, monkeypatch
):
    """The check runs in a Ray task on each node: what stood in the way there comes back
    (a cause of `sessions.storage`'s, not its words to parse) and is the refusal's."""
    from workflows.distributed.nodes import require_every_node_reaches
    from workflows.distributed.runtime import ray_runtime

    if what == "--storage":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with ray_runtime(two_nodes), pytest.raises(storage.StorageError) as err:
        require_every_node_reaches(where.format(s3=s3), what=what)
    others = f"; {failed - 1} other node cannot either" if failed > 1 else ""
    assert err.value.cause == cause and "\n" not in str(err.value)
    assert err.value.advice.endswith(f"(this Ray cluster has 2 nodes{others}; the job's driver reaches it)"), err.value


def test_a_node_where_the_check_itself_fails_is_named_not_passed(two_nodes, tmp_path, monkeypatch):
    """The breaker's find: any error of the check's task passed its node as "lost" (nodes
    holding an older sessionflow, `ModuleNotFoundError` there), and the job died later in
    a worker's traceback naming no node. The task's own error refuses in one line."""
    from workflows.distributed import nodes
    from workflows.distributed.runtime import ray_runtime

    monkeypatch.setattr(nodes, "unreached", lambda reaches: 1 / 0)  # pickled by value: it fails on every node
    (tmp_path / "out").mkdir()
    with ray_runtime(two_nodes), pytest.raises(ValueError) as err:
        nodes.require_every_node_reaches(str(tmp_path / "out"))
    said = str(err.value)
    assert said.startswith("node 127.0.0.1 could not run the job's check of its locations (ZeroDivisionError: ")
    assert said.endswith("submit the job with `ray job submit --working-dir .` (this Ray cluster has 2 nodes)")
    assert "\n" not in said


@pytest.mark.parametrize("answer", [(0, "s3://b/x: refused"), ("0", "", ""), (7, "", ""), (0, "", "sunspots"), "no"])
def test_a_node_whose_check_answers_what_this_code_never_does_is_named(two_nodes, tmp_path, monkeypatch, answer):
    """A node of another sessionflow runs its own `unreached` (Ray imports the function
    by its module there): stop 70's answered (index, why), which this driver took apart
    as (index, why, cause) in a ValueError traceback. Any answer of another shape is that
    node running other code, refused in the line of a check that failed there."""
    from workflows.distributed import nodes
    from workflows.distributed.runtime import ray_runtime

    monkeypatch.setattr(nodes, "unreached", lambda reaches: answer)  # pickled by value: every node answers it
    (tmp_path / "out").mkdir()
    with ray_runtime(two_nodes), pytest.raises(ValueError) as err:
        nodes.require_every_node_reaches(str(tmp_path / "out"))
    said = str(err.value)
    assert said.startswith(f"node 127.0.0.1 could not run the job's check of its locations (it answered {answer!r}); ")
    assert said.endswith("(this Ray cluster has 2 nodes)") and "\n" not in said


@pytest.fixture(scope="module")
def one_node(s3_endpoint) -> Iterator[str]:
    """A one-node cluster's address (a `ray start` of its own, not the job's local Ray),
    whose Ray has credentials but no `AWS_ENDPOINT_URL`: started from a shell that had
    not exported it (the score breaker's)."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    lacking = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": ""}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1, "env_vars": lacking})
        try:
            cluster.wait_for_nodes()
            yield cluster.address
        finally:
            cluster.shutdown()


@pytest.mark.slow
def test_a_one_node_cluster_is_asked_too_where_the_driver_alone_has_the_endpoint(one_node, s3, tmp_path):
    """The score breaker's find: on one node nothing was asked, so a Ray job into s3://
    from a shell with AWS_ENDPOINT_URL, on a cluster whose `ray start` had none, failed in
    a task with storage's advice to set the variables the user had set. A `ray start` of
    one node is asked as any cluster is (the local Ray a job starts for itself is not:
    its workers have the job's environment); a local path it sees passes."""
    from workflows.distributed.nodes import require_every_node_reaches
    from workflows.distributed.runtime import ray_runtime

    log = tmp_path / "log.tsv"
    log.write_text("AnonID\tQuery\tQueryTime\tItemRank\tClickURL\n1\tcats\t2006-03-01 10:00:00\t\t\n")
    out = f"{s3}/sessions"
    done = sessionflow("segment", str(log), "--format", "aol", "--engine", "ray", "--output", out,
                       "--address", one_node)  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last.startswith(f"error: --output {out}: node 127.0.0.1 cannot write there: "), last
    assert last.endswith(
        "every node must reach the store: check that node's network and its AWS_ENDPOINT_URL (set it on each node, or "
        """pass it with `ray job submit --runtime-env-json '{"env_vars": {"AWS_ENDPOINT_URL": ...}}'`) (this Ray """
        "cluster has 1 node; the job's driver reaches it)"
    ), last
    (tmp_path / "out").mkdir()
    with ray_runtime(one_node):
        require_every_node_reaches(str(tmp_path / "out"), [str(log)])
