# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Stripe webhooks: verified, stored once by event id, applied in event-time order.

``receive`` verifies the signature with the SDK (``stripe.Webhook.construct_event``,
tolerance 300 s) before reading anything, then stores the event under its id in the
same transaction as its effect: a second delivery of the same event finds it and does
nothing. Deliveries may come out of order, so effects compare Stripe's event time
(``created``): an invoice keeps the state of its newest event (a tie goes to the later
state: open < paid), and a failed payment older than the last paid invoice is ignored.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck.errors import PotluckError
from potluck_enterprise.billing.models import BillingAccount, Invoice, StripeEvent
from potluck_enterprise.billing.signals import invoice_paid
from potluck_enterprise.billing.stripe_adapter import verify_webhook

log = logging.getLogger(__name__)

HANDLED = ("invoice.paid", "invoice.payment_failed", "invoice.finalized",
           "customer.subscription.updated", "customer.subscription.deleted")
_STATUS_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "void": 3, "paid": 3}


class WebhookRejected(PotluckError):
    """A delivery that is not a verified Stripe event (400), or webhooks are off (503)."""

    status = 400


def receive(payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify, store and apply one delivery; returns (the stored event, whether this
    delivery was its first). Raises ``WebhookRejected``."""
    import stripe

    secret = settings.BILLING_STRIPE_WEBHOOK_SECRET
    if not secret:
        error = WebhookRejected("Stripe webhooks are off: set "
                                "POTLUCK_BILLING_STRIPE_WEBHOOK_SECRET")
        error.status = 503
        raise error
    try:
        event = verify_webhook(payload, signature, secret)
    except stripe.SignatureVerificationError:
        raise WebhookRejected("the Stripe-Signature header does not verify") from None
    except ValueError:
        raise WebhookRejected("the body is not a Stripe event") from None
    data = event.to_dict()
    created = datetime.fromtimestamp(int(data.get("created") or 0), tz=UTC)
    try:
        with transaction.atomic():
            stored, first = StripeEvent.objects.get_or_create(
                id=data["id"], defaults={"type": data.get("type", ""), "created": created,
                                         "payload": data})
            if first and stored.type in HANDLED:
                stored.organization_id = apply(stored.type, data["data"]["object"], created)
                stored.processed_at = timezone.now()
                stored.save(update_fields=["organization", "processed_at"])
    except IntegrityError:  # the same event delivered concurrently: the other one won
        return StripeEvent.objects.get(id=data["id"]), False
    if first:
        notify_paid()
    return stored, first


def _account(customer: Any) -> BillingAccount | None:
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    if not customer_id:
        return None
    return BillingAccount.objects.select_for_update().filter(
        stripe_customer_id=customer_id).first()


def apply(kind: str, obj: dict[str, Any], created: datetime) -> Any:
    """The effect of one event; returns the organization's id (None: not ours)."""
    account = _account(obj.get("customer"))
    if account is None:
        log.info("billing: Stripe event %s for an unknown customer; stored only", kind)
        return None
    if kind.startswith("invoice."):
        invoice = _upsert_invoice(account, obj, created)
        if kind == "invoice.payment_failed" and invoice.status != "paid" and (
                account.payment_failed_at is None or account.payment_failed_at < created):
            account.payment_failed_at = created
            account.save(update_fields=["payment_failed_at", "updated_at"])
        if kind == "invoice.paid" and account.payment_failed_at is not None and \
                account.payment_failed_at <= created:
            account.payment_failed_at = None
            account.save(update_fields=["payment_failed_at", "updated_at"])
    else:
        account.subscription_id = obj.get("id", account.subscription_id)
        account.subscription_status = "canceled" if kind.endswith("deleted") else \
            str(obj.get("status", ""))[:40]
        account.save(update_fields=["subscription_id", "subscription_status", "updated_at"])
    return account.organization_id


def _when(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _lines(obj: dict[str, Any]) -> list[dict[str, Any]]:
    lines = (obj.get("lines") or {}).get("data") or []
    return [{"id": ln.get("id"), "description": ln.get("description") or "",
             "amount": ln.get("amount", 0), "quantity": ln.get("quantity"),
             "period_start": (ln.get("period") or {}).get("start"),
             "period_end": (ln.get("period") or {}).get("end")} for ln in lines][:500]


def _upsert_invoice(account: BillingAccount, obj: dict[str, Any], created: datetime
                    ) -> Invoice:
    status = str(obj.get("status") or "")
    invoice = Invoice.objects.select_for_update().filter(stripe_id=obj["id"]).first()
    if invoice is not None:
        newer = created > invoice.last_event_created or (
            created == invoice.last_event_created
            and _STATUS_RANK.get(status, 0) >= _STATUS_RANK.get(invoice.status, 0))
        if not newer:
            return invoice  # an older event delivered late: the newer state stays
    invoice = invoice or Invoice(stripe_id=obj["id"], organization_id=account.organization_id)
    invoice.number = str(obj.get("number") or "")[:100]
    invoice.status = status[:20]
    invoice.currency = str(obj.get("currency") or "").upper()[:3]
    invoice.amount_due = int(obj.get("amount_due") or 0)
    invoice.amount_paid = int(obj.get("amount_paid") or 0)
    invoice.total = int(obj.get("total") or 0)
    invoice.hosted_invoice_url = str(obj.get("hosted_invoice_url") or "")[:1000]
    invoice.invoice_pdf = str(obj.get("invoice_pdf") or "")[:1000]
    invoice.period_start = _when(obj.get("period_start"))
    invoice.period_end = _when(obj.get("period_end"))
    invoice.lines = _lines(obj)
    if status == "paid" and invoice.paid_at is None:
        invoice.paid_at = _when((obj.get("status_transitions") or {}).get("paid_at")) or created
    invoice.last_event_created = created
    invoice.save()
    return invoice


def notify_paid() -> int:
    """Send ``invoice_paid`` for paid invoices not announced yet; returns how many."""
    sent = 0
    while True:
        with transaction.atomic():
            invoice = (Invoice.objects.select_for_update(skip_locked=True)
                       .select_related("organization")
                       .filter(status="paid", paid_signal_sent_at__isnull=True).first())
            if invoice is None:
                return sent
            invoice_paid.send(sender=Invoice, organization=invoice.organization,
                              invoice=invoice)
            invoice.paid_signal_sent_at = timezone.now()
            invoice.save(update_fields=["paid_signal_sent_at"])
            sent += 1
