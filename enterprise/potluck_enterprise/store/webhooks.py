# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's Stripe webhook: verified, stored once by event id, applied under a lock.

``receive`` verifies the delivery with the SDK (``stripe.Webhook.construct_event``,
tolerance 300 s) before reading anything, then stores the event under its id in the same
transaction as its effect: a second delivery of the same event finds it and does nothing,
and an effect that fails (Stripe unreachable, say) rolls the event back, so Stripe's
retry applies it later. Effects:

- ``checkout.session.completed`` (paid) and ``invoice.paid``: the subscription's paid
  period moves forward to the period's end (never back), then ``issuing.reconcile``.
  The session or the invoice finds its order through ``client_reference_id`` or the
  subscription's metadata, so either may arrive first.
- ``customer.subscription.updated``/``deleted``: seat tier, plan, status and scheduled
  cancellation, applied only when newer (Stripe's ``created``) than the last one
  applied; a changed tier or plan re-issues; a cancellation stops renewal.
- ``charge.refunded`` and ``charge.dispute.created``: recorded (``Reversal`` and a
  negative ``Sale``), the subscriptions they concern stop renewing and are cancelled at
  Stripe.

Each subscription's row is locked while an event works on it, and ``reconcile`` issues a
licence only if that exact licence does not exist, so duplicated, late and out-of-order
deliveries never issue twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck.errors import PotluckError
from potluck_enterprise.store import issuing, sales
from potluck_enterprise.store.models import (
    CheckoutOrder,
    PlanPrice,
    Reversal,
    StoreAccount,
    StoreEvent,
    StoreInvoice,
    StoreSubscription,
)
from potluck_enterprise.store.stripe_store import StoreStripe

log = logging.getLogger(__name__)

HANDLED = ("checkout.session.completed", "invoice.paid", "customer.subscription.updated",
           "customer.subscription.deleted", "charge.refunded", "charge.dispute.created")


class WebhookRejected(PotluckError):
    """Not a verified Stripe event (400), or the store's webhook is off (503)."""

    status = 400


def _when(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _id(value: Any) -> str:
    """An id Stripe gives either bare or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value or "")


def receive(payload: bytes, signature: str | None) -> tuple[StoreEvent, bool]:
    """Verify, store and apply one delivery; returns (the stored event, whether this
    delivery was its first). Raises ``WebhookRejected``; an effect's error (e.g.
    ``StripeUnavailable``) propagates with nothing stored."""
    import stripe

    secret = settings.STORE_STRIPE_WEBHOOK_SECRET
    if not secret:
        error = WebhookRejected("the store's Stripe webhook is off: set "
                                "POTLUCK_STORE_STRIPE_WEBHOOK_SECRET")
        error.status = 503
        raise error
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        raise WebhookRejected("the Stripe-Signature header does not verify") from None
    except ValueError:
        raise WebhookRejected("the body is not a Stripe event") from None
    data = event.to_dict()
    created = _when(data.get("created")) or timezone.now()
    try:
        with transaction.atomic():
            stored, first = StoreEvent.objects.get_or_create(
                id=data["id"], defaults={"type": str(data.get("type", ""))[:100],
                                         "created": created, "payload": data})
            if first and stored.type in HANDLED:
                stored.outcome = apply(stored.type, data["data"]["object"], created,
                                       stored.id)[:300]
                stored.save(update_fields=["outcome"])
    except IntegrityError:  # the same event delivered concurrently: the other one won
        return StoreEvent.objects.get(id=data["id"]), False
    if first:
        # The event is applied and committed: announcing its sales is best effort here
        # (the housekeeping task retries every minute); a receiver or revenue sink that
        # fails must not tell Stripe the delivery failed.
        try:
            sales.announce_pending()
        except Exception:
            log.exception("store: announcing sales after event %s failed; the housekeeping "
                          "task will retry", stored.id)
    return stored, first


def apply(kind: str, obj: dict[str, Any], created: datetime, event_id: str) -> str:
    """The effect of one verified event; returns what it did, in words."""
    if kind == "checkout.session.completed":
        return _checkout_completed(obj, created, event_id)
    if kind == "invoice.paid":
        return _invoice_paid(obj, created, event_id)
    if kind.startswith("customer.subscription."):
        return _subscription_changed(obj, created, event_id, deleted=kind.endswith("deleted"))
    if kind == "charge.refunded":
        return _reversal(Reversal.Kind.REFUND, obj, created, event_id)
    if kind == "charge.dispute.created":
        return _reversal(Reversal.Kind.DISPUTE, obj, created, event_id)
    return "ignored"


# -- finding our subscription ----------------------------------------------------------

def _locked(stripe_subscription_id: str) -> StoreSubscription | None:
    return (StoreSubscription.objects.select_for_update(of=("self",))
            .select_related("price__plan", "account")
            .filter(stripe_subscription_id=stripe_subscription_id).first())


def _subscription_for(stripe_subscription_id: str, order_id: str, customer_id: str
                      ) -> StoreSubscription | None:
    """Our subscription for a Stripe subscription id, locked; made from its order (found
    by ``order_id``) on the first event that names both. None: not the store's."""
    if not stripe_subscription_id:
        return None
    sub = _locked(stripe_subscription_id)
    if sub is not None:
        return sub
    order = (CheckoutOrder.objects.select_for_update(of=("self",))
             .select_related("account", "price")
             .filter(pk=order_id).first()) if _is_uuid(order_id) else None
    if order is None:
        return None
    account = order.account
    if customer_id and account.stripe_customer_id != customer_id:
        StoreAccount.objects.filter(pk=account.pk).update(stripe_customer_id=customer_id)
    try:
        with transaction.atomic():
            StoreSubscription.objects.create(
                account=account, order=order, stripe_subscription_id=stripe_subscription_id,
                price=order.price, installation_id=order.installation_id,
                licensee=order.licensee, status="active")
    except IntegrityError:  # another event made it meanwhile (it held the order's lock)
        pass
    return _locked(stripe_subscription_id)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _period_end(item: dict[str, Any]) -> datetime | None:
    return _when(item.get("current_period_end"))


def _subscription_period_end(sub: dict[str, Any]) -> datetime | None:
    """The end of a Stripe subscription's current period (on its items since Stripe's
    2025-03-31 API; on the subscription before)."""
    ends = [_period_end(i) for i in (sub.get("items") or {}).get("data") or []]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else _when(sub.get("current_period_end"))


def _advance(sub: StoreSubscription, period_end: datetime | None) -> None:
    if period_end is not None and (sub.paid_through is None or period_end > sub.paid_through):
        sub.paid_through = period_end
        sub.save(update_fields=["paid_through", "updated_at"])


def _outcome(issued: Any, what: str) -> str:
    return f"{what}: issued {issued.license_id}" if issued is not None else \
        f"{what}: no new licence"


# -- effects ---------------------------------------------------------------------------

def _checkout_completed(obj: dict[str, Any], created: datetime, event_id: str) -> str:
    if obj.get("mode") != "subscription":
        return "not a subscription checkout"
    order_id = str(obj.get("client_reference_id") or
                   (obj.get("metadata") or {}).get("potluck_order") or "")
    sub = _subscription_for(_id(obj.get("subscription")), order_id, _id(obj.get("customer")))
    if sub is None:
        return "not the store's checkout"
    CheckoutOrder.objects.filter(pk=sub.order_id, status="open").update(
        status="complete", completed_at=created)
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        return "checkout complete, payment pending (the invoice.paid event issues)"
    if sub.paid_through is None:
        # The session says the first period is paid but not until when: Stripe knows.
        remote = StoreStripe.from_settings().subscription(sub.stripe_subscription_id)
        _advance(sub, _subscription_period_end(remote))
    return _outcome(issuing.reconcile(sub, source_event=event_id), "checkout")


def _invoice_subscription(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(Stripe subscription id, its metadata) of an invoice: under ``parent`` since
    Stripe's 2025-03-31 API, at the top level before."""
    details = ((obj.get("parent") or {}).get("subscription_details") or {})
    sub_id = _id(details.get("subscription")) or _id(obj.get("subscription"))
    metadata = details.get("metadata") or obj.get("subscription_details", {}).get(
        "metadata") or {}
    return sub_id, metadata


def _invoice_paid(obj: dict[str, Any], created: datetime, event_id: str) -> str:
    sub_id, metadata = _invoice_subscription(obj)
    sub = _subscription_for(sub_id, str(metadata.get("potluck_order") or ""),
                            _id(obj.get("customer")))
    if sub is None:
        return "not the store's invoice"
    lines = (obj.get("lines") or {}).get("data") or []
    periods = [(ln.get("period") or {}) for ln in lines]
    ends = [e for e in (_when(p.get("end")) for p in periods) if e is not None]
    starts = [s for s in (_when(p.get("start")) for p in periods) if s is not None]
    period_end = max(ends) if ends else _when(obj.get("period_end"))
    if period_end is None:
        return "paid invoice without a period"
    amount = int(obj.get("amount_paid") or 0)
    currency = str(obj.get("currency") or "").upper()
    paid_at = _when((obj.get("status_transitions") or {}).get("paid_at")) or created
    _, new_invoice = StoreInvoice.objects.get_or_create(
        stripe_invoice_id=str(obj["id"]), defaults={
            "subscription": sub, "amount_paid": amount, "currency": currency,
            "period_start": min(starts) if starts else None, "period_end": period_end,
            "billing_reason": str(obj.get("billing_reason") or "")[:40], "paid_at": paid_at})
    if new_invoice and amount > 0:
        sales.record(f"invoice:{obj['id']}", "sale", account=sub.account, amount=amount,
                     currency=currency, occurred_at=paid_at, subscription=sub)
    if sub.renewal_stopped:
        return f"invoice recorded; renewal stopped ({sub.renewal_stopped}): no licence"
    _advance(sub, period_end)
    return _outcome(issuing.reconcile(sub, source_event=event_id), "invoice")


def _price_of(sub_obj: dict[str, Any]) -> PlanPrice | None:
    items = (sub_obj.get("items") or {}).get("data") or []
    for item in items:
        price_id = _id(item.get("price"))
        found = PlanPrice.objects.select_related("plan").filter(
            stripe_price_id=price_id).first() if price_id else None
        if found is not None:
            return found
    return None


def _subscription_changed(obj: dict[str, Any], created: datetime, event_id: str, *,
                          deleted: bool) -> str:
    sub = _subscription_for(_id(obj.get("id")),
                            str((obj.get("metadata") or {}).get("potluck_order") or ""),
                            _id(obj.get("customer")))
    if sub is None:
        return "not the store's subscription"
    if sub.state_event_at is not None and created < sub.state_event_at:
        return "older than the state already applied: ignored"
    sub.state_event_at = created
    sub.status = "canceled" if deleted else str(obj.get("status") or sub.status)[:40]
    sub.cancel_at_period_end = bool(obj.get("cancel_at_period_end")) or deleted
    price = _price_of(obj)
    changed = price is not None and price.pk != sub.price_id
    if changed:
        sub.price = price
    if (deleted or sub.status == "canceled") and not sub.renewal_stopped:
        sub.renewal_stopped, sub.renewal_stopped_at = "canceled", created
    sub.save()
    if deleted or sub.status == "canceled":
        return "cancelled: no renewal; the last licence runs to its expiry"
    if changed:
        return _outcome(issuing.reconcile(sub, source_event=event_id), "plan or seats changed")
    return "subscription state updated"


def _reversal(kind: str, obj: dict[str, Any], created: datetime, event_id: str) -> str:
    """A refund (charge object) or a chargeback (dispute object)."""
    if kind == Reversal.Kind.REFUND:
        stripe_id, amount = str(obj["id"]), int(obj.get("amount_refunded") or 0)
        payment_intent, customer_id = _id(obj.get("payment_intent")), _id(obj.get("customer"))
        reason = str(((obj.get("refunds") or {}).get("data") or [{}])[0].get("reason") or "")
    else:
        stripe_id, amount = str(obj["id"]), int(obj.get("amount") or 0)
        payment_intent = _id(obj.get("payment_intent"))
        customer_id = ""
        reason = str(obj.get("reason") or "")
    currency = str(obj.get("currency") or "").upper()
    subs = _subscriptions_of_payment(payment_intent, customer_id, _id(obj.get("charge")))
    if not subs:
        return f"{kind} of a payment that is not the store's"
    account = subs[0].account
    reversal, new = Reversal.objects.get_or_create(stripe_id=stripe_id, defaults={
        "kind": kind, "account": account, "amount": amount, "currency": currency,
        "reason": reason[:100], "created_at": created, "event_id": event_id})
    if not new:
        return f"{kind} already recorded"
    reversal.subscriptions.set(subs)
    sales.record(f"{kind}:{stripe_id}", kind, account=account, amount=-amount,
                 currency=currency, occurred_at=created, subscription=subs[0])
    client = StoreStripe.from_settings()
    for sub in subs:
        if not sub.renewal_stopped or sub.renewal_stopped == "canceled":
            sub.renewal_stopped, sub.renewal_stopped_at = kind, created
            sub.save(update_fields=["renewal_stopped", "renewal_stopped_at", "updated_at"])
        if sub.status != "canceled":
            client.cancel_now(sub.stripe_subscription_id)
    log.warning("store: %s %s recorded for account %s; renewal stopped for %s", kind,
                stripe_id, account.pk, ", ".join(s.stripe_subscription_id for s in subs))
    return f"{kind} recorded; renewal stopped"


def _subscriptions_of_payment(payment_intent: str, customer_id: str, charge_id: str
                              ) -> list[StoreSubscription]:
    """The subscriptions a payment paid for: through the invoice it paid (Stripe's invoice
    payments), else every subscription of the paying customer."""
    if payment_intent:
        invoice_id = StoreStripe.from_settings().invoice_of_payment(payment_intent)
        if invoice_id:
            row = StoreInvoice.objects.filter(stripe_invoice_id=invoice_id).first()
            if row is not None:
                sub = _locked(row.subscription.stripe_subscription_id)
                return [sub] if sub is not None else []
    if not customer_id and charge_id:
        customer_id = StoreStripe.from_settings().customer_of_charge(charge_id)
    if customer_id:
        return list(StoreSubscription.objects.select_for_update(of=("self",))
                    .select_related("account", "price__plan")
                    .filter(account__stripe_customer_id=customer_id).order_by("created_at"))
    return []
