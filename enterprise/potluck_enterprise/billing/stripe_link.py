# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Linking an organization to a Stripe customer (an operator's act).

With an existing customer id, the adapter checks that Stripe knows it; without one, the
customer is created on first use (when the sender first has meter events for the
organization; idempotent by organization). Usage priced before the link is not sent.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from potluck.errors import InvalidInput
from potluck_enterprise.billing.models import BillingAccount
from potluck_enterprise.billing.stripe_adapter import (
    StripeBilling,
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
)


def link(organization: Any, customer_id: str = "", adapter: StripeBilling | None = None
         ) -> BillingAccount:
    """Link (or re-link) ``organization``; raises ``InvalidInput`` when Stripe is not
    configured, does not know ``customer_id``, or cannot be reached."""
    if customer_id:
        try:
            adapter = adapter or StripeBilling.from_settings()
            if not adapter.customer_exists(customer_id):
                raise InvalidInput(f"Stripe has no customer {customer_id!r}",
                                   field="customer_id")
        except StripeNotConfigured as exc:
            raise InvalidInput(str(exc), field="customer_id") from None
        except (StripeUnavailable, StripeRejected) as exc:
            raise InvalidInput(f"could not check the customer at Stripe: {exc}",
                               field="customer_id") from None
    with transaction.atomic():
        account, created = BillingAccount.objects.select_for_update().get_or_create(
            organization=organization, defaults={"stripe_customer_id": customer_id})
        if not created and customer_id and account.stripe_customer_id != customer_id:
            account.stripe_customer_id = customer_id
            account.save(update_fields=["stripe_customer_id", "updated_at"])
    return account
