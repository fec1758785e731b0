# SPDX-License-Identifier: Apache-2.0
"""Celery tasks of the Batch API (thin: each calls one service), all on ``potluck.jobs``.

``run`` is acknowledged on receipt: durability comes from the batch's lease and
``resume_stalled_batches``, not from redelivery (a redelivered message an hour later
would only find the batch leased or done).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_shutting_down

from potluck.batches import runner, services
from potluck.batches.dispatcher import WORKER_SHUTTING_DOWN


@worker_shutting_down.connect
def _hand_batches_back(**_: Any) -> None:
    """A warm shutdown would wait for whole batches: runs stop taking lines instead, let
    those in flight finish and release their lease (the periodic pass resumes them)."""
    WORKER_SHUTTING_DOWN.set()


@shared_task(name="potluck.batches.run", ignore_result=True, acks_late=False,
             queue=services.JOBS_QUEUE)
def run_batch(batch_id: str) -> str:
    return runner.run_batch(batch_id)


@shared_task(name="potluck.batches.resume_stalled", ignore_result=True,
             queue=services.JOBS_QUEUE)
def resume_stalled_batches() -> list[str]:
    return services.resume_stalled_batches()


@shared_task(name="potluck.batches.expire", ignore_result=True, queue=services.JOBS_QUEUE)
def expire_batches() -> list[str]:
    return services.expire_batches()
