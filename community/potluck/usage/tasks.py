# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from potluck.usage import consumers, rollup


@shared_task(name="potluck.usage.roll_up", bind=True, ignore_result=True, acks_late=True,
             queue="potluck.control")
def roll_up(self: Task, batch: int = 500) -> dict[str, Any]:
    """Drain the usage stream into Postgres (beat sends this every few seconds)."""
    # One consumer per node agent (its Celery hostname, node@<node>): an agent killed
    # mid-roll-up leaves its entries pending under that name, and the same node's next
    # agent retries them in its first roll-up; any other roll-up takes them over once
    # they have been idle for USAGE_RECLAIM_IDLE_SECONDS.
    consumer = self.request.hostname or f"{socket.gethostname()}:{os.getpid()}"
    result = rollup.roll_up(consumer, batch,
                            min_idle_ms=settings.USAGE_RECLAIM_IDLE_SECONDS * 1000)
    return dataclasses.asdict(result)


@shared_task(name="potluck.usage.feed_consumers", ignore_result=True, acks_late=True,
             queue="potluck.control")
def feed_consumers() -> list[dict[str, Any]]:
    """Give every registered usage consumer its next records (beat: every 2 s)."""
    return [dataclasses.asdict(result) for result in consumers.feed_all()]
