# SPDX-License-Identifier: Apache-2.0
"""Wake the scheduler and the node agents once a change has committed.

Tasks are sent by name, so services need not import the task module. A lost message
costs little: beat runs the scheduler every few seconds and agents reconcile on a
timer, so sending is best effort.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from potluck.celery_app import app
from potluck.nodes.services import queue_for

log = logging.getLogger(__name__)
SCHEDULE_TASK = "potluck.serving.schedule"
RECONCILE_TASK = "potluck.serving.reconcile"


def _send(name: str, *, args: tuple = (), queue: str | None = None) -> None:
    try:
        app.send_task(name, args=args, queue=queue, expires=60)
    except Exception:  # the broker is down: the periodic passes catch up
        log.warning("could not send %s%s; the periodic pass will do it", name,
                    f" to {queue}" if queue else "", exc_info=True)


def request_schedule() -> None:
    """Run the scheduler soon (after the current transaction commits)."""
    transaction.on_commit(lambda: _send(SCHEDULE_TASK))


def request_reconcile(node_names: Iterable[str]) -> None:
    """Ask each node's agent to reconcile its replicas (after the transaction commits)."""
    for name in sorted(set(node_names)):
        transaction.on_commit(
            lambda name=name: _send(RECONCILE_TASK, args=(name,), queue=queue_for(name)))
