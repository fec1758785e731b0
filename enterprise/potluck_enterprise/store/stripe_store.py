# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's calls to Stripe (the only module of the store that speaks to it).

Products and recurring prices for the plans, Checkout sessions in subscription mode,
reading and changing subscriptions, and finding the invoice of a payment. Errors are
billing's: ``StripeUnavailable`` (retry later) and ``StripeRejected`` (a 4xx a retry will
not change); ``StripeNotConfigured`` when ``POTLUCK_STORE_STRIPE_API_KEY`` is unset.
Every create carries an idempotency key, so a retried call makes nothing twice.
"""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings

from potluck_enterprise.billing.stripe_adapter import (
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
    _classify,
)
from potluck_enterprise.store.models import CheckoutOrder, Plan, PlanPrice

__all__ = ["StoreStripe", "StripeNotConfigured", "StripeRejected", "StripeUnavailable"]


def _dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class StoreStripe:
    """What the store asks of Stripe; ``client`` is a ``stripe.StripeClient``."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls) -> StoreStripe:
        key = settings.STORE_STRIPE_API_KEY
        if not key:
            raise StripeNotConfigured("set POTLUCK_STORE_STRIPE_API_KEY to sell through Stripe")
        bases = {"api": settings.STORE_STRIPE_API_BASE} if settings.STORE_STRIPE_API_BASE \
            else {}
        client = stripe.StripeClient(
            key, base_addresses=bases,  # type: ignore[arg-type]
            http_client=stripe.RequestsClient(timeout=20), max_network_retries=2)
        return cls(client)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return _dict(fn(*args, **kwargs))
        except stripe.StripeError as exc:
            raise _classify(exc) from exc

    # -- the catalogue -----------------------------------------------------------------
    def ensure_product(self, plan: Plan) -> str:
        """The plan's Stripe product id (created once per plan key)."""
        if plan.stripe_product_id:
            return plan.stripe_product_id
        product = self._call(
            self.client.v1.products.create,
            params={"name": f"Potluck Enterprise: {plan.title}",
                    "metadata": {"potluck_plan": plan.key}},
            options={"idempotency_key": f"potluck-store-product-{plan.key}"})
        return product["id"]

    def ensure_price(self, price: PlanPrice, product_id: str) -> str:
        """The seat tier's Stripe recurring price id (created once per price row)."""
        if price.stripe_price_id:
            return price.stripe_price_id
        made = self._call(
            self.client.v1.prices.create,
            params={"product": product_id, "currency": price.currency.lower(),
                    "unit_amount": price.amount, "recurring": {"interval": price.term},
                    "nickname": f"{price.plan_id}, up to {price.seats} seats, per {price.term}",
                    "metadata": {"potluck_plan": price.plan_id, "seats": str(price.seats),
                                 "term": price.term}},
            options={"idempotency_key": f"potluck-store-price-{price.pk}"})
        return made["id"]

    # -- buying ------------------------------------------------------------------------
    def create_checkout_session(self, order: CheckoutOrder, customer_id: str, email: str,
                                success_url: str, cancel_url: str) -> dict[str, Any]:
        """A Checkout session (subscription mode) for the order; returns Stripe's session
        (``id``, ``url``). The order's id is the session's ``client_reference_id`` and
        goes into the subscription's metadata, so every later event finds the order."""
        price = order.price
        metadata = {"potluck_order": str(order.id), "plan": price.plan_id,
                    "seats": str(price.seats), "term": price.term,
                    "installation_id": order.installation_id}
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price.stripe_price_id, "quantity": 1}],
            "client_reference_id": str(order.id),
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if customer_id:
            params["customer"] = customer_id
        else:
            params["customer_email"] = email
        return self._call(self.client.v1.checkout.sessions.create, params=params,
                          options={"idempotency_key": f"potluck-store-checkout-{order.id}"})

    # -- subscriptions -----------------------------------------------------------------
    def subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.subscriptions.retrieve, subscription_id)

    def cancel_at_period_end(self, subscription_id: str) -> dict[str, Any]:
        """No renewal: the subscription ends with its paid period."""
        return self._call(self.client.v1.subscriptions.update, subscription_id,
                          params={"cancel_at_period_end": True})

    def cancel_now(self, subscription_id: str) -> dict[str, Any]:
        """End the subscription now (after a refund or a chargeback); a subscription
        Stripe already ended is not an error."""
        try:
            return _dict(self.client.v1.subscriptions.cancel(subscription_id))
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "http_status", None) in (400, 404):
                return {"id": subscription_id, "status": "canceled"}
            raise _classify(exc) from exc
        except stripe.StripeError as exc:
            raise _classify(exc) from exc

    def change_price(self, subscription_id: str, price_id: str) -> dict[str, Any]:
        """Move the subscription to another seat tier or plan, prorated and invoiced at
        once; the ``customer.subscription.updated`` event that follows re-issues."""
        sub = self.subscription(subscription_id)
        items = (sub.get("items") or {}).get("data") or []
        if not items:
            raise StripeRejected("the subscription has no item to change")
        return self._call(
            self.client.v1.subscriptions.update, subscription_id,
            params={"items": [{"id": items[0]["id"], "price": price_id}],
                    "proration_behavior": "always_invoice"})

    def customer_of_charge(self, charge_id: str) -> str:
        """The customer a charge belongs to ("" if none)."""
        charge = self._call(self.client.v1.charges.retrieve, charge_id)
        customer = charge.get("customer")
        return str(customer.get("id") if isinstance(customer, dict) else customer or "")

    def invoice_of_payment(self, payment_intent_id: str) -> str | None:
        """The invoice a payment intent paid (Stripe's invoice payments), if any."""
        page = self._call(self.client.v1.invoice_payments.list,
                          params={"payment": {"type": "payment_intent",
                                              "payment_intent": payment_intent_id},
                                  "limit": 1})
        data = page.get("data") or []
        invoice = data[0].get("invoice") if data else None
        if isinstance(invoice, dict):
            invoice = invoice.get("id")
        return invoice or None
