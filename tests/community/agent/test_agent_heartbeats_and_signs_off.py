# SPDX-License-Identifier: Apache-2.0
"""The node agent is a real Celery worker on its own queue that heartbeats through Redis,
runs the cluster's control tasks, and signs its node off when it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from waiting import wait_for

from potluck.nodes import resources, services
from potluck.nodes.models import Node, NodeState


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
        from potluck.serving.tasks import replace_lost_nodes

        replace_lost_nodes.delay()  # through Redis to the agent's control queue
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
    from potluck.agent.worker import Heartbeat

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
