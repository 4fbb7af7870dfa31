"""The output lock on S3 (`sessions.leases`, `sessions.io.lock_output`), on a local
S3 endpoint (moto's server on 127.0.0.1) standing in for the cloud's object store.

Before it, two jobs writing to one `s3://` output at once were not told apart: locally
the lock is a file made exclusively, and pyarrow has no exclusive create on a store."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time

import boto3
import botocore.exceptions
import psutil
import pytest
from typer.testing import CliRunner

from sessions import io, leases
from sessions.io import LOCK
from workflows.cli import app

LOG = "".join(f"{u}\tquery {u} {i}\t2006-03-01 0{i}:10:00\t\t\n" for u in (1, 2) for i in range(4))


def sessionflow(*args: object):
    return CliRunner().invoke(app, [*map(str, args)])


def keys(bucket_uri: str) -> list[str]:
    bucket = bucket_uri.removeprefix("s3://")
    return sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", []))


def put_lock(location: str, holder: dict) -> None:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(holder).encode())


def test_of_jobs_taking_one_lock_at_once_exactly_one_wins(s3):
    """Two takers at the same moment, twenty times: one lease, and the other is told who holds it."""
    for round_ in range(20):
        location = f"{s3}/race-{round_}/{LOCK}"
        won, held, start = [], [], threading.Barrier(2)

        def take(name: str, location: str = location, won: list = won, held: list = held,
                 start: threading.Barrier = start) -> None:  # fmt: skip
            start.wait()
            try:
                won.append((name, leases.acquire(location, {"name": name}, gone=lambda holder: False)))
            except leases.Held as err:
                held.append(err.holder["name"])

        takers = [threading.Thread(target=take, args=(name,)) for name in ("a", "b")]
        for taker in takers:
            taker.start()
        for taker in takers:
            taker.join()
        assert len(won) == 1 and held == [won[0][0]], (won, held)
        won[0][1].release()
    assert keys(s3) == []


def test_a_lease_is_renewed_while_held_and_a_lost_one_is_told_and_left_alone(s3, monkeypatch):
    monkeypatch.setattr(leases, "RENEW_S", 0.1)
    monkeypatch.setattr(leases, "LEASE_S", 2.5)  # the store's times are in whole seconds: an age is off by up to 1
    location = f"{s3}/out/{LOCK}"
    lease = leases.acquire(location, {"name": "first"}, gone=lambda holder: False)
    time.sleep(3.0)  # past LEASE_S: kept only by the renewals
    with pytest.raises(leases.Held) as err:
        leases.acquire(location, {"name": "second"}, gone=lambda holder: False)
    assert err.value.holder["name"] == "first" and err.value.holder["written"] > 5 and err.value.age_s <= 1.0
    put_lock(location, {"name": "another"})  # taken over (or rewritten by hand) behind its back
    for _ in range(50):
        if lease.lost:
            break
        time.sleep(0.05)
    assert lease.lost, "the renewals did not find it"
    with pytest.raises(leases.LeaseLost, match=f"this job's lock {location} is no longer its own"):
        lease.confirm()  # asked before the job's next change to the output
    lease.release()  # not its own: left to the job holding it
    assert leases.read(location)[0] == {"name": "another"}


def test_an_s3_output_is_one_jobs_until_it_ends_and_a_gone_jobs_lock_lets_the_next_in(tmp_path, s3, monkeypatch):
    """The CLI end to end: a live job's lock (of another machine, which cannot be asked)
    keeps a second job out, in one line, and nothing is written; one of this machine whose
    process ended is taken over at once, another machine's once it is not renewed for
    LEASE_S; an output inside a locked one is refused; a job leaves no lock behind."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    out, lock = f"{s3}/events", f"{s3}/events/{LOCK}"
    elsewhere = {
        "pid": 4242,
        "started": time.time(),
        "host": f"not-{socket.gethostname()}",
        "command": "sessionflow ingest",
    }
    put_lock(lock, elsewhere)
    refused = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", out, "--engine", "local")
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.output.split())
    assert message.startswith(
        f"error: --output {out}: another sessionflow job is writing there now (process 4242 on "
        f"not-{socket.gethostname()}, `sessionflow ingest`; its lock was renewed "
    ) and message.endswith(
        f"s ago, one not renewed for {leases.LEASE_S:g} s is taken over); wait for it to end, or choose another "
        f"directory (if none runs, delete {lock})"
    ), message
    inside = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", f"{out}/sub", "--engine", "local")
    assert inside.exit_code == 2 and f"error: --output {out}/sub: it lies inside {out}, which another sessionflow " \
        "job is writing now (process 4242" in " ".join(inside.output.split()), inside.output  # fmt: skip
    assert [k for k in keys(s3) if not k.endswith("/")] == [f"events/{LOCK}"]  # nothing written

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(ended.stdout)
    assert not psutil.pid_exists(pid)
    put_lock(lock, {**io.this_process(), "pid": pid, "command": "sessionflow ingest"})  # this machine's, ended
    taken = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", out, "--engine", "local")
    assert taken.exit_code == 0, taken.output
    assert f"events/{LOCK}" not in keys(s3) and "events/report.json" in keys(s3)

    put_lock(lock, elsewhere)
    monkeypatch.setattr(leases, "LEASE_S", 1.0)
    time.sleep(2.0)  # not renewed: its job is gone
    lapsed = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", out, "--engine", "local")
    assert lapsed.exit_code == 0, lapsed.output
    assert f"events/{LOCK}" not in keys(s3)


@pytest.fixture
def store_without(s3_endpoint, s3, monkeypatch):
    """`store_without(methods, ignore=False)`: an S3-compatible endpoint on 127.0.0.1 that
    lacks conditional writes for those HTTP methods (as stores older than S3's 2024
    conditional writes do: 501 NotImplemented for an If-None-Match or If-Match header;
    with `ignore`, every such header dropped: the write is taken whatever it asks; with
    `drop_first_answer`, the first conditional create is done but its answer never
    comes: a network fault the client retries after), standing in
    for such a store (none can be installed here); every other request goes on to the
    moto endpoint. AWS_ENDPOINT_URL points at it."""
    import http.client
    import http.server

    target = s3_endpoint.removeprefix("http://")
    servers = []

    def start(methods: set[str], ignore: bool = False, drop_first_answer: bool = False) -> None:
        dropped = []

        class Forward(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers a client's `Expect: 100-continue` before its body

            def _any(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conditional = "If-None-Match" in self.headers or "If-Match" in self.headers
                if ignore:  # a store that takes the write whatever its condition
                    for name in ("If-None-Match", "If-Match"):
                        del self.headers[name]
                elif self.command in methods and conditional:
                    reply = b"<Error><Code>NotImplemented</Code><Message>A header you provided implies " \
                            b"functionality that is not implemented</Message></Error>"  # fmt: skip
                    self.send_response(501)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                first_create = drop_first_answer and not dropped and "If-None-Match" in self.headers
                upstream = http.client.HTTPConnection(target, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("expect", "connection", "transfer-encoding", "content-length")
                }
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                if first_create:  # written, but the answer is lost on the way back: the client tries again
                    dropped.append(self.path)
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.getheaders():  # a HEAD's Content-Length is the object's size
                    if name.lower() not in ("transfer-encoding", "connection", "date", "server", "content-length"):
                        self.send_header(name, value)
                size = answer.getheader("Content-Length") if self.command == "HEAD" else len(data)
                self.send_header("Content-Length", str(size or 0))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")

    yield start
    for server in servers:
        server.shutdown()


def test_a_store_without_conditional_writes_runs_the_job_unlocked_and_says_so(tmp_path, s3, store_without, caplog):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    store_without({"PUT", "DELETE"})
    with caplog.at_level(logging.WARNING, logger="sessionflow"):
        ran = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", f"{s3}/events", "--engine", "local")
    assert ran.exit_code == 0, ran.output
    assert f"--output {s3}/events: this S3-compatible store does not support conditional writes" in caplog.text
    assert "events/report.json" in keys(s3) and f"events/{LOCK}" not in keys(s3)


def test_a_store_without_conditional_deletes_still_has_the_lock_deleted(tmp_path, s3, store_without, caplog):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    store_without({"DELETE"})
    with caplog.at_level(logging.WARNING, logger="sessionflow"):
        ran = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", f"{s3}/events", "--engine", "local")
    assert ran.exit_code == 0 and "conditional" not in caplog.text, ran.output
    assert "events/report.json" in keys(s3) and f"events/{LOCK}" not in keys(s3)


STALLED = """
import sys, time
from sessions import io, leases
leases.LEASE_S, leases.RENEW_S = 2.0, float(sys.argv[1])  # a job whose renewals stall (RENEW_S past LEASE_S)
claim, pause = io.claim_output, float(sys.argv[2])
def slow_claim(*args, **kwargs):  # ... right after it claimed its output
    claimed = claim(*args, **kwargs)
    time.sleep(pause)
    return claimed
io.claim_output = slow_claim
sys.argv = ["sessionflow", *sys.argv[3:]]
from workflows.main import main
main()
"""


def test_a_job_whose_lock_was_taken_over_stops_without_touching_the_output(tmp_path, s3):
    """The breaking helper's find: a job that stalled past the lease (paused, cut off
    from the store) found its lock taken over by a second job, which finished; the first
    then went on, replaced the second's tables and report and exited 0. It now confirms
    its lock before each change to the output, and stops (exit 2, one line) leaving
    the second job's output as that job wrote it."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    (tmp_path / "other.tsv").write_text(LOG.replace("query", "other"))
    out = f"{s3}/events"
    first = subprocess.Popen([sys.executable, "-c", STALLED, "1000", "6", "ingest", str(tmp_path / "logs"), "-f",
                              "aol", "-o", out, "--engine", "local"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    for _ in range(200):
        if f"events/{LOCK}" in keys(s3):
            break
        time.sleep(0.05)
    time.sleep(2.5)  # its lock not renewed for LEASE_S
    second = subprocess.run([sys.executable, "-c", STALLED, "0.5", "0", "ingest", str(tmp_path / "other.tsv"), "-f",
                             "aol", "-o", out, "--engine", "local"], capture_output=True, text=True)  # fmt: skip
    assert second.returncode == 0, second.stderr
    written = {key: boto3.client("s3").get_object(Bucket=s3[5:], Key=key)["ETag"] for key in keys(s3)}
    assert first.wait(timeout=60) == 2
    said = first.stderr.read().strip().splitlines()
    assert said == [
        f"error: --output {out}: this job's lock {out}/{LOCK} is no longer its own (another job took it over after 2 s "
        "without a renewal, or it was deleted); the job stopped without touching the output again"
    ], said
    assert {key: boto3.client("s3").get_object(Bucket=s3[5:], Key=key)["ETag"] for key in keys(s3)} == written
    report = json.loads(boto3.client("s3").get_object(Bucket=s3[5:], Key="events/report.json")["Body"].read())
    assert report["files"][0]["path"] == str(tmp_path / "other.tsv")


def test_a_failed_job_deletes_the_output_it_made_before_it_lets_another_job_in(tmp_path, s3):
    """The breaking helper's find: a job failing on a user's error released its lock, then
    deleted the output it had created; a second job let in between lost its output to
    that deletion. The output goes first now, the lock with it."""
    from workflows.jobs import common

    order = []
    from sessions import storage

    remove, unlock = storage.remove, io.unlock_output
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sessions.storage.remove", lambda location: (order.append(("remove", location)),
                                                                   remove(location))[1])  # fmt: skip
        patch.setattr("sessions.io.unlock_output", lambda location: (order.append(("unlock", location)),
                                                                     unlock(location))[1])  # fmt: skip
        with pytest.raises(ValueError), common.nothing_left_on_error():
            common.output_dir(f"{s3}/made", "events.parquet")
            raise ValueError("a user's error")
    assert order.index(("remove", f"{s3}/made")) < order.index(("unlock", f"{s3}/made")), order
    assert keys(s3) == []


def test_a_store_that_ignores_the_condition_is_told_as_one_without_conditional_writes(s3, store_without):
    """The breaking helper's find: a store that takes `If-None-Match: *` and writes anyway
    gave every job the lock, with no warning. A second conditional write of the new lock
    is now asked to fail; where it does not, the store lacks conditional writes."""
    store_without(set(), ignore=True)
    with pytest.raises(leases.NotSupported):
        leases.acquire(f"{s3}/out/{LOCK}", {"name": "a"}, gone=lambda holder: False)
    assert keys(s3) == []


def test_without_conditional_deletes_a_lock_not_known_to_be_its_own_is_left_to_lapse(s3, store_without, monkeypatch):
    """The breaking helper's find: on a store answering 501 to a conditional delete, a job
    deleted the lock unconditionally, though another job may have taken it over since its
    last renewal. It deletes it so only while no one can have (`Lease.fresh`)."""
    store_without({"DELETE"})
    monkeypatch.setattr(leases, "RENEW_S", 1000.0)  # renewals stalled ...
    monkeypatch.setattr(leases, "LEASE_S", 0.5)  # ... past half the lease
    location = f"{s3}/out/{LOCK}"
    lease = leases.acquire(location, {"name": "first"}, gone=lambda holder: False)
    time.sleep(0.4)
    put_lock(location, {"name": "taker"})  # taken over meanwhile, as far as the store knows
    lease.release()
    assert leases.read(location)[0] == {"name": "taker"}


def test_an_unreadable_lock_is_told_as_such(tmp_path, s3):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    bucket = s3.removeprefix("s3://")
    boto3.client("s3").put_object(Bucket=bucket, Key=f"events/{LOCK}", Body=b"\x00\xffnot json")
    refused = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", f"{s3}/events", "--engine", "local")
    message = " ".join(refused.output.split())
    assert refused.exit_code == 2 and message.startswith(
        f"error: --output {s3}/events: a job is writing there now (its lock, which sessionflow cannot read, was "
        "written "
    ), message


def test_a_lock_made_by_a_write_whose_answer_was_lost_is_the_jobs_own(tmp_path, s3, store_without):
    """The second breaking helper's find: the answer to the write that made the lock was
    lost, the client wrote again, the store refused (the lock was there: this job's), and
    the job refused itself, naming its own process, its lock left behind."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    store_without(set(), drop_first_answer=True)
    ran = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", f"{s3}/events", "--engine", "local")
    assert ran.exit_code == 0, ran.output
    assert "events/report.json" in keys(s3) and f"events/{LOCK}" not in keys(s3)


def test_a_renewal_landing_between_a_takers_read_and_write_keeps_the_lock(s3, monkeypatch):
    """The third breaking helper's find: the lock's bytes were the same at every renewal,
    so was its ETag, and a taker's write on the condition of the version it had read (a
    lapsed lease) went through after a late renewal: the holder took itself for fresh
    while the lock was the taker's. Each rewrite now has bytes, and an ETag, of its own."""
    monkeypatch.setattr(leases, "RENEW_S", 1000.0)
    monkeypatch.setattr(leases, "LEASE_S", 2.0)
    location = f"{s3}/out/{LOCK}"
    holder = leases.acquire(location, {"name": "holder"}, gone=lambda holder: False)
    time.sleep(2.5)  # lapsed
    _, age_s, seen = leases.read(location)
    assert age_s >= 2.0
    holder.confirm()  # a late renewal lands ...
    bucket, _, key = location.removeprefix("s3://").partition("/")
    with pytest.raises(botocore.exceptions.ClientError, match="PreconditionFailed"):  # ... before the taker's write
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b'{"name": "taker"}', IfMatch=seen)
    holder.release()
    assert keys(s3) == []


def test_a_lock_out_of_reach_for_a_moment_is_not_a_lost_one(s3, s3_endpoint, monkeypatch):
    """The third breaking helper's find: a job failing on a user's error while the store
    was out of reach (its lease not fresh, so asked of the store) ended with "this job's
    lock cannot be confirmed" in place of its own error, and left its output uncleaned as
    if another job had taken it. Only a lock another job took, or that was deleted, is lost."""
    monkeypatch.setattr(leases, "RENEW_S", 1000.0)
    monkeypatch.setattr(leases, "LEASE_S", 0.5)
    out = f"{s3}/out"
    assert io.lock_output(out)
    time.sleep(0.4)  # not fresh: the next question goes to the store
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    assert io.lock_lost(out) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    put_lock(f"{out}/{LOCK}", {"name": "taker"})
    assert io.lock_lost(out) == (
        f"--output {out}: this job's lock {out}/{LOCK} is no longer its own (another job took it over after 0.5 s "
        "without a renewal, or it was deleted); the job stopped without touching the output again"
    )
    io.unlock_output(out)
    assert leases.read(f"{out}/{LOCK}")[0] == {"name": "taker"}


def test_an_s3_output_with_another_jobs_running_output_inside_it_is_refused(tmp_path, s3):
    """The second breaker's find, on S3: a job into `out` while another ran in
    `out/inner` went on, and its failure deleted the other's output. Once its lock is
    made, a job looks inside its output too, and steps back in one line."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "part-1.tsv").write_text(LOG)
    running = {"pid": 4242, "started": time.time(), "host": f"not-{socket.gethostname()}",
               "command": "sessionflow ingest"}  # fmt: skip
    put_lock(f"{s3}/out/inner/{LOCK}", running)
    refused = sessionflow("ingest", tmp_path / "logs", "-f", "aol", "-o", f"{s3}/out", "--engine", "local",
                          "--overwrite")  # fmt: skip
    assert refused.exit_code == 2 and " ".join(refused.output.split()).startswith(
        f"error: --output {s3}/out: another sessionflow job is writing inside it now, at {s3}/out/inner (process "
        f"4242 on not-{socket.gethostname()}, `sessionflow ingest`; its lock was renewed "
    ), refused.output
    assert [k for k in keys(s3) if not k.endswith("/")] == [f"out/inner/{LOCK}"]
