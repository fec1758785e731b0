# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's Celery tasks (thin: each calls a service; nothing where the store is off)."""

from __future__ import annotations

from celery import shared_task

CONTROL = "potluck.control"


def _on() -> bool:
    from potluck_enterprise.store import signing

    return signing.enabled()


@shared_task(name="potluck_enterprise.store.send_licence_mail", ignore_result=True,
             acks_late=True, queue=CONTROL)
def send_licence_mail(ids: list[str] | None = None) -> int:
    """Email issued licences not mailed yet (the given ones, or all)."""
    from potluck_enterprise.store import issuing

    return issuing.deliver_pending(ids) if _on() else 0


@shared_task(name="potluck_enterprise.store.housekeeping", ignore_result=True,
             acks_late=True, queue=CONTROL)
def housekeeping() -> dict[str, int]:
    """Every minute: mail what a dead process or a mail outage left, announce sales,
    forget old sign-in links."""
    from potluck_enterprise.store import accounts, issuing, sales

    if not _on():
        return {}
    return {"mailed": issuing.deliver_pending(), "announced": sales.announce_pending(),
            "links_forgotten": accounts.forget_old_links()}


BEAT_SCHEDULE = {
    "store-housekeeping": {"task": "potluck_enterprise.store.housekeeping",
                           "schedule": 60.0, "options": {"expires": 120}},
}
