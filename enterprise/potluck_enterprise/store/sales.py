# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Licence revenue: recording sales and reversals, and announcing them (``signals``)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from potluck import extensions
from potluck_enterprise.store.models import Sale, StoreAccount, StoreSubscription
from potluck_enterprise.store.signals import SaleEvent, licence_sale

log = logging.getLogger(__name__)


def record(key: str, kind: str, *, account: StoreAccount, amount: int, currency: str,
           occurred_at: datetime, subscription: StoreSubscription | None = None) -> bool:
    """Record one sale or reversal once by ``key`` (call inside the event's transaction);
    returns whether it was new. ``amount``: signed minor units."""
    _, created = Sale.objects.get_or_create(key=key, defaults={
        "kind": kind, "account": account, "subscription": subscription,
        "plan": subscription.price.plan if subscription is not None else None,
        "amount": amount, "currency": currency.upper()[:3], "occurred_at": occurred_at})
    return created


def event_of(sale: Sale) -> SaleEvent:
    return SaleEvent(key=sale.key, kind=sale.kind, amount=sale.amount, currency=sale.currency,
                     occurred_at=sale.occurred_at, account_email=sale.account.email,
                     plan=sale.plan_id or "",
                     subscription=sale.subscription.stripe_subscription_id
                     if sale.subscription_id else "")


def announce_pending() -> int:
    """Send ``licence_sale`` for each sale not announced yet, oldest first; returns how
    many were announced. A sale whose announcement fails (a receiver or revenue sink
    raises) is logged, left unannounced for the next pass, and does not hold back the
    sales after it."""
    sent = 0
    failed: list[str] = []
    while True:
        sale = None
        try:
            with transaction.atomic():
                sale = (Sale.objects.select_for_update(skip_locked=True, of=("self",))
                        .select_related("account", "subscription")
                        .filter(announced_at__isnull=True).exclude(key__in=failed)
                        .order_by("occurred_at", "key").first())
                if sale is None:
                    return sent
                licence_sale.send(sender=Sale, sale=event_of(sale))
                if sale.amount > 0:  # a sale funds the revenue share (contribution credits)
                    extensions.record_revenue("licence_sale", sale.key, sale.amount,
                                              sale.currency, occurred_at=sale.occurred_at)
                sale.announced_at = timezone.now()
                sale.save(update_fields=["announced_at"])
        except Exception:
            if sale is None:
                raise  # the query itself failed: nothing to skip
            log.exception("store: announcing sale %s failed; the next pass retries it",
                          sale.key)
            failed.append(sale.key)
            continue
        sent += 1
