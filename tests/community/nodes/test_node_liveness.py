# SPDX-License-Identifier: Apache-2.0
"""A node is alive while its heartbeat is fresh: readiness needs one, a lapsed one marks
the node lost, and a heartbeat reports what the host offers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

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
