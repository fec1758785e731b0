# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from celery import shared_task

from potluck.nodes import services


@shared_task(name="potluck.nodes.mark_lost_nodes", ignore_result=True)
def mark_lost_nodes() -> list[str]:
    return services.mark_lost_nodes()
