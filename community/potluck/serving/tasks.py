# SPDX-License-Identifier: Apache-2.0
"""Celery tasks of the serving pool (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from potluck.serving import reconcile, scheduler


@shared_task(name="potluck.serving.schedule", ignore_result=True)
def schedule() -> list[str]:
    """On the control queue: make Replica rows match the deployments."""
    return scheduler.schedule()


@shared_task(name="potluck.serving.replace_lost_nodes", ignore_result=True)
def replace_lost_nodes() -> list[str]:
    """Periodic (beat): nodes whose heartbeat lapsed are marked lost, their replicas moved."""
    return scheduler.replace_lost_nodes()


@shared_task(name="potluck.serving.reconcile", ignore_result=True)
def reconcile_node(node_name: str) -> None:
    """On queue node.<name> (only that node's agent consumes it): reconcile its replicas."""
    reconcile.reconcile_now(node_name)
