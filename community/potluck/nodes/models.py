# SPDX-License-Identifier: Apache-2.0
"""Hosts that run a node agent, with the resources they report."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class NodeState(models.TextChoices):
    ONLINE = "online"
    OFFLINE = "offline"  # stopped cleanly
    LOST = "lost"  # heartbeat lapsed


class Node(models.Model):
    name = models.CharField(max_length=100, unique=True)
    queue = models.CharField(max_length=120)
    hostname = models.CharField(max_length=255)
    # Where the gateway reaches this node's replicas.
    address = models.CharField(max_length=255, default="127.0.0.1")
    state = models.CharField(max_length=16, choices=NodeState.choices, default=NodeState.ONLINE)
    cpu_count = models.PositiveIntegerField(default=0)
    cpu_isa = models.JSONField(default=list)
    memory_bytes = models.BigIntegerField(default=0)
    gpus = models.JSONField(default=list)
    engine = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_heartbeat = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"
