# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Credits' Celery tasks (thin: each calls a service; each does nothing while no licence
grants "credits")."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from potluck import extensions

log = logging.getLogger(__name__)
CONTROL = "potluck.control"
FEATURE_KEY = "credits"


def _on() -> bool:
    return extensions.feature_available(FEATURE_KEY)


@shared_task(name="potluck_enterprise.credits.process_delivery", ignore_result=True,
             acks_late=True, queue=CONTROL, bind=True, max_retries=8)
def process_delivery(self, delivery_id: int) -> str:  # noqa: ANN001 - Celery's task
    """Apply the rules to one stored merge delivery (the webhook queued it)."""
    from potluck_enterprise.credits import forges, webhooks

    if not _on():
        return "credits off"
    try:
        return webhooks.process(delivery_id)
    except forges.ForgeUnavailable as exc:
        raise self.retry(exc=exc, countdown=min(600, 5 * 2 ** self.request.retries)
                         ) from exc


@shared_task(name="potluck_enterprise.credits.housekeeping", ignore_result=True,
             acks_late=True, queue=CONTROL)
def housekeeping() -> dict[str, int]:
    """Every minute: vest what is due, process deliveries a dead task left."""
    from potluck_enterprise.credits import grants, webhooks

    if not _on():
        return {}
    return {"vested": grants.vest_due(), "deliveries": webhooks.process_pending()}


@shared_task(name="potluck_enterprise.credits.reconcile", ignore_result=True,
             acks_late=True, queue=CONTROL)
def reconcile() -> dict[str, int]:
    """Every hour: list recently merged patches of repositories with an API token and
    grant what no delivery brought."""
    from potluck_enterprise.credits import forges, webhooks
    from potluck_enterprise.credits.models import Repository

    if not _on():
        return {}
    made: dict[str, int] = {}
    for repository in Repository.objects.filter(active=True).exclude(api_token_encrypted=""):
        try:
            made[str(repository)] = len(webhooks.reconcile(
                repository, settings.CREDITS_RECONCILE_DAYS))
        except (forges.ForgeUnavailable, forges.ForgeRejected) as exc:
            log.warning("credits: reconcile of %s failed (%s)", repository, exc)
    return made


@shared_task(name="potluck_enterprise.credits.distribute", ignore_result=True,
             acks_late=True, queue=CONTROL)
def distribute() -> int:
    """Daily: distribute the pool of the last period that is over, once."""
    from django.utils import timezone

    from potluck_enterprise.credits import revenue

    if not _on():
        return 0
    start, _ = revenue.period_of(timezone.localdate())
    last = revenue.period_of(start - timedelta(days=1))[0]
    return revenue.distribute(last).distributed


BEAT_SCHEDULE = {
    "credits-housekeeping": {"task": "potluck_enterprise.credits.housekeeping",
                             "schedule": 60.0, "options": {"expires": 120}},
    "credits-reconcile": {"task": "potluck_enterprise.credits.reconcile",
                          "schedule": 3600.0, "options": {"expires": 3000}},
    "credits-distribute": {"task": "potluck_enterprise.credits.distribute",
                           "schedule": 3600.0 * 6, "options": {"expires": 3600}},
}
