# SPDX-License-Identifier: Apache-2.0
"""One suite for the retry rules that online calls and batch lines share: each case runs
through a real gateway process and through the batch runner, against the same fake
replicas, and must end the same way in both."""

from __future__ import annotations

import io
import json
import socket
from dataclasses import dataclass

import httpx
import pytest
from fake_upstream import FakeUpstream, UpstreamThread
from gateway_harness import running_gateway, wait_until_listed

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@dataclass(frozen=True)
class Case:
    replicas: tuple[str, ...]  # fake replica modes; "closed": nothing listens there
    status: int | None  # the answer's status; None: no answer (the request failed)
    sends: int | None = None  # requests the bad replicas got in all (None: not checked)
    error: tuple[str, ...] = ("upstream_error", "replica_unreachable")  # when status is None


CASES = {
    "a dead replica is skipped": Case(("closed", "ok"), 200),
    "a 503 is retried elsewhere": Case(("error503", "ok"), 200),
    "a replica dying mid-answer is retried elsewhere": Case(("die_mid_answer", "ok"), 200),
    "nothing reachable fails after max attempts": Case(("closed", "closed"), None),
    "the last 503 is the answer after max attempts": Case(("error503", "error503"), 503,
                                                           sends=3),
    # Silent past the read timeout: it may be generating a long answer; sending it again
    # elsewhere would do the work twice, so it fails with a timeout (upstream.py's rule).
    "a replica silent past the read timeout is not retried": Case(
        ("silent", "silent"), None, sends=1, error=("upstream_timeout",)),
}
READ_TIMEOUT = 1  # seconds, for the silent replica's case


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def replicas():
    threads: list[UpstreamThread] = []

    def start(modes: tuple[str, ...]) -> list[tuple[int, FakeUpstream | None]]:
        found = []
        for mode in modes:
            if mode == "closed":
                found.append((closed_port(), None))
                continue
            thread = UpstreamThread(FakeUpstream())
            threads.append(thread)
            fake = thread.start()
            fake.behaviour.mode = mode
            found.append((fake.port, fake))
        return found

    yield start
    for thread in threads:
        thread.stop()


def deploy(name: str, ports: list[int]) -> None:
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    model = RegisteredModel.objects.create(name=name, source=Source.HUGGINGFACE,
                                           repo_id=f"test/{name}", context_length=512)
    deployment = Deployment.objects.create(model=model, replicas=len(ports))
    node = Node.objects.create(name=f"node-{name}", queue=f"node.{name}", hostname="localhost")
    for port in ports:
        Replica.objects.create(deployment=deployment, node=node, port=port,
                               state=ReplicaState.READY)


def online(live_env, tmp_path, key: str) -> tuple[int | None, str | None]:
    with running_gateway(live_env, tmp_path) as gateway:
        wait_until_listed(gateway, key, "m")
        response = httpx.post(gateway.v1 + "/completions", timeout=30,
                              headers={"authorization": f"Bearer {key}"},
                              json={"model": "m", "prompt": "x", "max_tokens": 2})
    if response.status_code in (502, 504):
        return None, response.json()["error"]["code"]
    return response.status_code, None


def in_a_batch(org) -> tuple[int | None, str | None]:
    from potluck.batches import runner, services
    from potluck.batches.models import BatchResult
    from potluck.files import services as files

    line = {"custom_id": "one", "method": "POST", "url": "/v1/completions",
            "body": {"model": "m", "prompt": "x", "max_tokens": 2}}
    stored = files.create_file(org, upload=io.BytesIO(json.dumps(line).encode() + b"\n"),
                               filename="in.jsonl", purpose="batch")
    batch = services.create_batch(org, {"input_file_id": stored.id,
                                        "endpoint": "/v1/completions",
                                        "completion_window": "24h"})
    runner.run_batch(batch.pk)
    result = BatchResult.objects.get(batch=batch)
    return result.status_code, result.error_code or None


@pytest.mark.parametrize("path", ["online", "batch"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_online_calls_and_batch_lines_retry_alike(path, case, replicas, org, key_for,
                                                  live_env, tmp_path, monkeypatch, settings):
    monkeypatch.setenv("POTLUCK_UPSTREAM_MAX_ATTEMPTS", "3")
    rules = CASES[case]
    env = {**live_env, "POTLUCK_UPSTREAM_MAX_ATTEMPTS": "3"}
    if "silent" in rules.replicas:
        env["POTLUCK_UPSTREAM_READ_TIMEOUT"] = str(READ_TIMEOUT)
        settings.GATEWAY_READ_TIMEOUT = READ_TIMEOUT
    started = replicas(rules.replicas)
    deploy("m", [port for port, _ in started])
    if path == "online":
        status, error = online(env, tmp_path, key_for(org, ["inference"]))
    else:
        status, error = in_a_batch(org)
    assert status == rules.status
    if rules.status is None:  # online: a 502/504 error; batch: its error file says so
        assert error in rules.error
    sends = sum(len(fake.bodies) for _, fake in started
                if fake is not None and fake.behaviour.mode != "ok")
    if rules.sends is not None:
        assert sends == rules.sends
    good = [fake for _, fake in started if fake is not None and fake.behaviour.mode == "ok"]
    if rules.status == 200:
        assert sum(len(fake.bodies) for fake in good) == 1  # answered once, by a good one
