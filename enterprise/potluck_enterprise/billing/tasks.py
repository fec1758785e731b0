# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Billing's Celery tasks (thin: each calls a service). Each does nothing while no licence
grants "billing" (the gate re-checks before every task)."""

from __future__ import annotations

import dataclasses
from typing import Any

from celery import shared_task

from potluck import extensions
from potluck_enterprise.billing.feature import FEATURE_KEY

CONTROL = "potluck.control"


def _on() -> bool:
    return extensions.feature_available(FEATURE_KEY)


@shared_task(name="potluck_enterprise.billing.send_meter_events", ignore_result=True,
             acks_late=True, queue=CONTROL)
def send_meter_events() -> dict[str, Any]:
    """Send due Stripe meter events from the outbox (beat: every 2 s)."""
    from django.conf import settings

    from potluck_enterprise.billing import outbox

    if not _on() or not settings.BILLING_STRIPE_API_KEY:
        return {}
    return dataclasses.asdict(outbox.send_due())


@shared_task(name="potluck_enterprise.billing.price_fine_tunes", ignore_result=True,
             acks_late=True, queue=CONTROL)
def price_fine_tunes() -> int:
    from potluck_enterprise.billing import pricing

    return pricing.price_fine_tunes() if _on() else 0


@shared_task(name="potluck_enterprise.billing.deliver_alerts", ignore_result=True,
             acks_late=True, queue=CONTROL)
def deliver_alerts(ids: list[int] | None = None) -> int:
    """Email and webhook for budget alerts (given ones, or every undelivered one)."""
    from potluck_enterprise.billing import budgets

    return budgets.deliver_pending(ids) if _on() else 0


@shared_task(name="potluck_enterprise.billing.housekeeping", ignore_result=True,
             acks_late=True, queue=CONTROL)
def housekeeping() -> dict[str, int]:
    """Every minute: sweep pending spend already priced, announce paid invoices."""
    from potluck.usage.models import UsageConsumerCursor
    from potluck_enterprise.billing import spend, webhooks
    from potluck_enterprise.billing.pricing import CONSUMER_NAME

    if not _on():
        return {}
    cursor = UsageConsumerCursor.objects.filter(name=CONSUMER_NAME).first()
    return {"swept": spend.sweep_pending(cursor.position if cursor else None),
            "announced": webhooks.notify_paid()}


BEAT_SCHEDULE = {
    "billing-send-meter-events": {"task": "potluck_enterprise.billing.send_meter_events",
                                  "schedule": 2.0, "options": {"expires": 10}},
    "billing-price-fine-tunes": {"task": "potluck_enterprise.billing.price_fine_tunes",
                                 "schedule": 30.0, "options": {"expires": 60}},
    "billing-deliver-alerts": {"task": "potluck_enterprise.billing.deliver_alerts",
                               "schedule": 60.0, "options": {"expires": 120}},
    "billing-housekeeping": {"task": "potluck_enterprise.billing.housekeeping",
                             "schedule": 60.0, "options": {"expires": 120}},
}
