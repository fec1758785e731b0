# SPDX-License-Identifier: Apache-2.0
"""Node liveness: heartbeats in Redis (fast to read) mirrored into Postgres (durable)."""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from potluck.nodes.models import Node, NodeState
from potluck.nodes.resources import Resources
from potluck.redis_client import get_redis

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "potluck:node:heartbeat:{name}"


def default_node_name() -> str:
    return settings.NODE_NAME or socket.gethostname().split(".")[0]


def queue_for(name: str) -> str:
    return f"node.{name}"


def heartbeat(name: str, resources: Resources) -> Node:
    """Say the node is alive: the node's row, then a Redis key that expires.

    In that order: whoever sees the key live (readiness, the scheduler) finds the row.
    With the database unreachable the key is still renewed (if the node had one: its row
    exists), so that an outage of the database alone never makes a node look lost; the
    database error is raised after that.
    """
    now = timezone.now()
    ttl = max(settings.NODE_LOST_AFTER_SECONDS, 2 * settings.NODE_HEARTBEAT_SECONDS)
    payload = {"name": name, "at": now.isoformat(), **resources.as_dict()}
    try:
        node = _heartbeat_row(name, resources, now)
    except DatabaseError:
        get_redis().set(HEARTBEAT_KEY.format(name=name), json.dumps(payload), ex=ttl, xx=True)
        raise
    get_redis().set(HEARTBEAT_KEY.format(name=name), json.dumps(payload), ex=ttl)
    return node


def _heartbeat_row(name: str, resources: Resources, now: datetime) -> Node:
    node, created = Node.objects.update_or_create(
        name=name,
        defaults={
            "queue": queue_for(name), "hostname": socket.gethostname(),
            "address": settings.NODE_ADDRESS,
            "state": NodeState.ONLINE, "cpu_count": resources.cpu_count,
            "cpu_isa": resources.cpu_isa, "memory_bytes": resources.memory_bytes,
            "gpus": [g.__dict__ for g in resources.gpus], "engine": resources.engine,
            "last_heartbeat": now,
        },
    )
    if created:
        log.info("node %s joined (%s CPUs, %s GPUs)", name, resources.cpu_count,
                 len(resources.gpus))
    return node


def sign_off(name: str) -> None:
    get_redis().delete(HEARTBEAT_KEY.format(name=name))
    Node.objects.filter(name=name).update(state=NodeState.OFFLINE)


def live_node_names() -> list[str]:
    """Nodes whose heartbeat key has not expired."""
    prefix = HEARTBEAT_KEY.format(name="")
    return sorted(key.decode().removeprefix(prefix)
                  for key in get_redis().scan_iter(match=prefix + "*", count=100))


def mark_lost_nodes() -> list[str]:
    """Online nodes whose heartbeat lapsed, in the database and in Redis alike, become
    LOST; returns their names. (A node whose row is stale but whose Redis key lives was
    heartbeating while the database was down.)

    Nodes are the ground floor: what runs on a lost node is moved by the apps above
    (``potluck.serving.scheduler.replace_lost_nodes``, the fine-tuning scheduler).
    """
    cutoff = timezone.now() - timedelta(seconds=settings.NODE_LOST_AFTER_SECONDS)
    alive = set(live_node_names())
    lapsed = [name for name in Node.objects.filter(state=NodeState.ONLINE,
                                                   last_heartbeat__lt=cutoff)
              .values_list("name", flat=True) if name not in alive]
    if lapsed:
        Node.objects.filter(name__in=lapsed, state=NodeState.ONLINE,
                            last_heartbeat__lt=cutoff).update(state=NodeState.LOST)
        log.warning("nodes lost (no heartbeat for %ss): %s",
                    settings.NODE_LOST_AFTER_SECONDS, ", ".join(lapsed))
    return lapsed
