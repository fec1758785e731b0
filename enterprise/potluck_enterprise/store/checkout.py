# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Buying: a Checkout order for a seat tier, sent to Stripe Checkout (subscription mode);
and the buyer's own changes to a subscription (seat tier or plan, no renewal)."""

from __future__ import annotations

from django.db import transaction

from potluck.errors import InvalidInput, NotFound
from potluck_enterprise.licensing.format import INSTALLATION_ID_RE
from potluck_enterprise.store.models import (
    CheckoutOrder,
    PlanPrice,
    StoreAccount,
    StoreSubscription,
)
from potluck_enterprise.store.stripe_store import StoreStripe


def clean_installation_id(value: str) -> str:
    """An installation id as the console shows it, or "" (an unbound licence)."""
    value = (value or "").strip()
    if value and not INSTALLATION_ID_RE.match(value):
        raise InvalidInput("that is not an installation id (copy it from your console's "
                           "Enterprise page, e.g. inst_...)", field="installation_id")
    return value


def clean_licensee(value: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise InvalidInput("give the name the licence is for (your company)", field="licensee")
    if len(value) > 200:
        raise InvalidInput("the licensee's name is at most 200 characters", field="licensee")
    return value


def buyable_price(price_id: object) -> PlanPrice:
    price = PlanPrice.objects.select_related("plan").filter(
        pk=str(price_id or "0") if str(price_id or "").isdigit() else 0, active=True,
        plan__active=True).exclude(stripe_price_id="").first()
    if price is None:
        raise InvalidInput("choose a plan, a seat tier and a term", field="price")
    return price


def start(account: StoreAccount, price_id: object, *, installation_id: str, licensee: str,
          success_url: str, cancel_url: str) -> str:
    """Make the order and its Stripe Checkout session; returns the URL to send the
    buyer to. Raises ``InvalidInput``, or billing's Stripe errors."""
    price = buyable_price(price_id)
    installation_id = clean_installation_id(installation_id)
    licensee = clean_licensee(licensee)
    with transaction.atomic():
        if account.licensee != licensee:
            account.licensee = licensee
            account.save(update_fields=["licensee"])
        order = CheckoutOrder.objects.create(account=account, price=price,
                                             installation_id=installation_id,
                                             licensee=licensee)
    session = StoreStripe.from_settings().create_checkout_session(
        order, account.stripe_customer_id, account.email, success_url, cancel_url)
    CheckoutOrder.objects.filter(pk=order.pk).update(stripe_session_id=session["id"])
    return str(session["url"])


def own_subscription(account: StoreAccount, subscription_id: object) -> StoreSubscription:
    sub = StoreSubscription.objects.select_related("price__plan").filter(
        pk=subscription_id, account=account).first() if _uuid(subscription_id) else None
    if sub is None:
        raise NotFound("no such subscription")
    return sub


def _uuid(value: object) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def stop_renewal(account: StoreAccount, subscription_id: object) -> None:
    """The buyer cancels: no renewal at the end of the paid period (Stripe's event then
    records it)."""
    sub = own_subscription(account, subscription_id)
    StoreStripe.from_settings().cancel_at_period_end(sub.stripe_subscription_id)


def change(account: StoreAccount, subscription_id: object, price_id: object) -> None:
    """Move a subscription to another seat tier or plan (same term or not); Stripe
    invoices the difference and its ``customer.subscription.updated`` re-issues."""
    sub = own_subscription(account, subscription_id)
    if not sub.renews:
        raise InvalidInput("this subscription does not renew any more: buy a new plan",
                           field="price")
    price = buyable_price(price_id)
    if price.pk == sub.price_id:
        raise InvalidInput("that is the subscription's current plan and seats", field="price")
    StoreStripe.from_settings().change_price(sub.stripe_subscription_id, price.stripe_price_id)
