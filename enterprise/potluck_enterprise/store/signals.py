# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's signal for other enterprise modules: the revenue share's hook.

``licence_sale`` is sent once for each ``Sale``: money a licence subscription brought in
(a paid invoice) or gave back (a refund, a chargeback). Keyword arguments:

- ``sale``: a ``SaleEvent`` (below): plain values, no model to import.

It is sent inside a transaction that also marks the sale announced, after the webhook
that recorded it committed (and by the periodic task ``store.housekeeping`` for any a
dead process left): a receiver's writes to Potluck's database commit with that mark,
exactly once; a receiver that raises rolls it back and the sale comes again later.
Effects outside the database must be idempotent by ``sale.key``.

The revenue share itself does not need this signal: with each sale (a positive amount)
the store also calls ``potluck.extensions.record_revenue("licence_sale", key, ...)``, the
community extension point the contribution-credits module registers its sink on, in the
same transaction. Reversals (refunds, chargebacks) reach receivers of this signal only.

This module imports nothing of the store (only Django's ``Signal``), so connecting to it
never imports the store's models, and the store never imports its receivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import Signal

licence_sale = Signal()


@dataclass(frozen=True)
class SaleEvent:
    """One sale or reversal of licence revenue.

    - ``key``: unique and stable (``invoice:<Stripe invoice id>``,
      ``refund:<charge id>``, ``dispute:<dispute id>``): the idempotency key.
    - ``kind``: ``sale``, ``refund`` or ``dispute``.
    - ``amount``: minor units of ``currency`` (ISO 4217, upper case); positive for a
      sale, negative for a refund or a chargeback.
    - ``occurred_at``: Stripe's time of the payment or reversal (aware, UTC).
    - ``account_email``, ``plan`` (plan key or ""), ``subscription`` (Stripe
      subscription id or "").
    """

    key: str
    kind: str
    amount: int
    currency: str
    occurred_at: datetime
    account_email: str
    plan: str
    subscription: str
