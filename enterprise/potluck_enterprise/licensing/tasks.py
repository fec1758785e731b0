# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Licensing's Celery task: online renewal (thin: calls ``renewal``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="potluck_enterprise.licensing.renew_online", ignore_result=True,
             acks_late=True, queue="potluck.control")
def renew_online() -> str:
    """Beat, every 10 minutes: ask the store for a renewal when one is due."""
    from potluck_enterprise.licensing import renewal

    if not renewal.due():
        return "not due"
    return renewal.renew().status


BEAT_SCHEDULE = {
    "licensing-renew-online": {"task": "potluck_enterprise.licensing.renew_online",
                               "schedule": 600.0, "options": {"expires": 300}},
}
