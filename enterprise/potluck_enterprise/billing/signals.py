# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Billing's signals for other enterprise modules (e.g. contribution credits).

``invoice_paid`` is sent for each invoice that a verified Stripe event says is paid,
after that transaction commits (and by the periodic task ``billing.notify_paid`` for any
a dead process left), with ``organization`` (an Organization) and ``invoice`` (an
``Invoice``: ``amount_paid`` in minor units, ``currency``). At least once: receivers
must be idempotent by ``invoice.stripe_id``.
"""

from __future__ import annotations

from django.dispatch import Signal

invoice_paid = Signal()
