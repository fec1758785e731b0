# SPDX-License-Identifier: Apache-2.0
"""The node agent is a real Celery worker on its own queue that heartbeats through Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from waiting import wait_for

from potluck.nodes import resources, services
from potluck.nodes.models import Node, NodeState


@pytest.mark.django_db
def test_readiness_needs_a_live_node_agent(redis_conn):
    client = Client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "ok",
                                         "node_agents": "failing"}
    services.heartbeat("node-a", resources.probe())
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["nodes"] == ["node-a"]


@pytest.mark.django_db
def test_a_node_whose_heartbeat_lapses_is_marked_lost(redis_conn, settings):
    services.heartbeat("fresh", resources.probe())
    services.heartbeat("stale", resources.probe())
    Node.objects.filter(name="stale").update(
        last_heartbeat=timezone.now() - timedelta(seconds=settings.NODE_LOST_AFTER_SECONDS + 1))
    redis_conn.delete(services.HEARTBEAT_KEY.format(name="stale"))  # expired there too
    assert services.mark_lost_nodes() == ["stale"]
    assert Node.objects.get(name="stale").state == NodeState.LOST
    assert Node.objects.get(name="fresh").state == NodeState.ONLINE


@pytest.mark.django_db
def test_an_outage_of_the_database_alone_does_not_make_a_node_lost(redis_conn, settings,
                                                                   monkeypatch):
    """Issue 21: while Postgres is down the agent's heartbeat renews its Redis key, and a
    node whose key lives is not lost however old its row is once the database is back."""
    from django.db import OperationalError

    services.heartbeat("busy", resources.probe())
    key = services.HEARTBEAT_KEY.format(name="busy")
    redis_conn.expire(key, 3)

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(Node.objects, "update_or_create", database_down)
        with pytest.raises(OperationalError):
            services.heartbeat("busy", resources.probe())
        with pytest.raises(OperationalError):  # a node never seen gets no key
            services.heartbeat("newcomer", resources.probe())
    assert redis_conn.ttl(key) > 3
    assert not redis_conn.exists(services.HEARTBEAT_KEY.format(name="newcomer"))
    Node.objects.filter(name="busy").update(
        last_heartbeat=timezone.now() - timedelta(seconds=settings.NODE_LOST_AFTER_SECONDS + 1))
    assert services.mark_lost_nodes() == []
    assert Node.objects.get(name="busy").state == NodeState.ONLINE


def test_the_host_reports_its_cpu_isa_and_memory():
    found = resources.probe()
    assert found.cpu_count >= 1 and found.memory_bytes > 2**28
    flags = Path("/proc/cpuinfo").read_text()
    assert ("avx2" in found.cpu_isa) == (" avx2" in flags)


@pytest.mark.slow
def test_the_agent_runs_tasks_from_the_broker_and_signs_off(live_env, redis_conn):
    # A stale node that only a task run by the agent will mark as lost.
    Node.objects.create(name="ghost", queue="node.ghost", hostname="ghost",
                        last_heartbeat=timezone.now() - timedelta(hours=1))
    agent = subprocess.Popen(
        [sys.executable, "-m", "potluck", "agent", "--name", "worker-1", "--control"],
        env={**live_env, "POTLUCK_NODE_HEARTBEAT_SECONDS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: services.live_node_names() == ["worker-1"])
        node = Node.objects.get(name="worker-1")
        assert node.queue == "node.worker-1" and node.state == NodeState.ONLINE
        from potluck.nodes.tasks import mark_lost_nodes

        mark_lost_nodes.delay()  # through Redis to the agent's control queue
        wait_for(lambda: Node.objects.get(name="ghost").state == NodeState.LOST)
        first_beat = Node.objects.get(name="worker-1").last_heartbeat
        wait_for(lambda: Node.objects.get(name="worker-1").last_heartbeat > first_beat)
    finally:
        agent.send_signal(signal.SIGTERM)
        output = agent.communicate(timeout=60)[0].decode()
    assert agent.returncode == 0, output[-3000:]
    assert services.live_node_names() == []
    assert Node.objects.get(name="worker-1").state == NodeState.OFFLINE


@pytest.mark.django_db(transaction=True)
def test_a_beat_in_flight_when_the_agent_stops_does_not_outlive_its_sign_off(
        settings, redis_conn, monkeypatch):
    from potluck.nodes.agent import Heartbeat

    settings.NODE_HEARTBEAT_SECONDS = 0.05
    in_beat, finish_beat = threading.Event(), threading.Event()
    heartbeat = services.heartbeat

    def slow_heartbeat(name: str, probed: resources.Resources) -> Node:
        in_beat.set()
        finish_beat.wait(10)  # the database is slow to answer this beat
        return heartbeat(name, probed)

    beats = Heartbeat("worker-2")
    monkeypatch.setattr(services, "heartbeat", slow_heartbeat)
    beats.start()
    assert in_beat.wait(10)
    stopping = threading.Thread(target=beats.stop)
    stopping.start()  # the agent shuts down while the beat is in flight
    stopping.join(0.3)
    finish_beat.set()
    stopping.join(20)
    beats.join(20)
    assert services.live_node_names() == []
    assert Node.objects.get(name="worker-2").state == NodeState.OFFLINE
