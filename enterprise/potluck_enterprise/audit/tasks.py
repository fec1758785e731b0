# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Periodic audit work on the control queue (thin: the services do it).

Checkpoints of every grown chain every ``POTLUCK_AUDIT_CHECKPOINT_SECONDS`` (300) and a
daily purge of content past retention, added to beat's schedule when the app loads.
Both do nothing unless the licence grants "compliance" (data is never touched by a
process that has the feature off, apart from signing what exists).
"""

from __future__ import annotations

from celery import shared_task

from potluck.env import env_int

CHECKPOINT_SECONDS = env_int("POTLUCK_AUDIT_CHECKPOINT_SECONDS", 300)


@shared_task(name="potluck_enterprise.audit.checkpoint")
def checkpoint_chains() -> int:
    from potluck import extensions
    from potluck_enterprise.audit import services

    if not extensions.feature_available("compliance"):
        return 0
    return services.checkpoint_all()


@shared_task(name="potluck_enterprise.audit.purge")
def purge_content() -> int:
    from potluck import extensions
    from potluck_enterprise.audit import services

    if not extensions.feature_available("compliance"):
        return 0
    return services.purge_content()


def _schedule() -> None:
    from django.conf import settings

    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
    if isinstance(schedule, dict):
        schedule.setdefault("audit-checkpoint", {
            "task": "potluck_enterprise.audit.checkpoint", "schedule": float(CHECKPOINT_SECONDS),
            "options": {"expires": CHECKPOINT_SECONDS}})
        schedule.setdefault("audit-purge", {
            "task": "potluck_enterprise.audit.purge", "schedule": 86400.0,
            "options": {"expires": 3600}})


_schedule()
