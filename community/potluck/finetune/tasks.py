# SPDX-License-Identifier: Apache-2.0
"""Celery tasks of fine-tuning (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from potluck.finetune import scheduler, services


@shared_task(name="potluck.finetune.validate", ignore_result=True)
def validate(job_id: str) -> None:
    services.validate_job(job_id)


@shared_task(name="potluck.finetune.schedule", ignore_result=True)
def schedule() -> list[str]:
    """Periodic (beat) and on demand: validate stragglers, assign queued jobs to nodes."""
    services.validate_pending()
    return scheduler.schedule()
