# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""An organization's payment state after a failed invoice payment.

``invoice.payment_failed`` starts a grace period of ``BILLING_PAYMENT_GRACE_DAYS``
(the console and the API warn); after it, if ``BILLING_BLOCK_AFTER_GRACE`` is set, the
gateway refuses inference (429 ``insufficient_quota``, as OpenAI answers an unpaid
account) until ``invoice.paid`` arrives for the organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from potluck_enterprise.billing.models import BillingAccount

OK, GRACE, BLOCKED = "ok", "grace", "blocked"


@dataclass(frozen=True)
class PaymentState:
    state: str  # ok | grace | blocked
    message: str = ""
    grace_until: datetime | None = None


def payment_state(account: BillingAccount | None, now: datetime) -> PaymentState:
    if account is None or account.payment_failed_at is None:
        return PaymentState(OK)
    until = account.payment_failed_at + timedelta(days=settings.BILLING_PAYMENT_GRACE_DAYS)
    if now < until or not settings.BILLING_BLOCK_AFTER_GRACE:
        return PaymentState(GRACE, "An invoice payment failed. Pay it by "
                            f"{until.isoformat()}"
                            + (", or inference will be refused." if
                               settings.BILLING_BLOCK_AFTER_GRACE else "."), until)
    return PaymentState(BLOCKED, "Inference is paused: an invoice payment failed and its "
                        "grace period has ended. Pay the open invoice to resume.", until)
