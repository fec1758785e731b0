# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Stripe webhooks, signed with the SDK's own helper: verified before being read, stored
once per event id, applied in Stripe's event order whatever the delivery order; a failed
payment puts the organization in grace, then blocks inference; invoice_paid goes out."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import stripe
from billing_helpers import WEBHOOK_SECRET
from django.utils import timezone

from potluck_enterprise.billing.models import BillingAccount, Invoice, StripeEvent
from potluck_enterprise.billing.payments import payment_state
from potluck_enterprise.billing.signals import invoice_paid

URL = "/api/billing/stripe/webhook"


def invoice_event(event_id: str, kind: str, status: str, created: int,
                  customer: str = "cus_acme") -> str:
    return json.dumps({
        "id": event_id, "object": "event", "type": kind, "created": created,
        "api_version": "2026-04-22", "livemode": False,
        "data": {"object": {
            "id": "in_1", "object": "invoice", "customer": customer, "status": status,
            "number": "ACME-0001", "currency": "usd", "amount_due": 1234,
            "amount_paid": 1234 if status == "paid" else 0, "total": 1234,
            "hosted_invoice_url": "https://invoice.stripe.test/i/in_1",
            "invoice_pdf": "https://pay.stripe.test/in_1.pdf",
            "period_start": created - 86400, "period_end": created,
            "lines": {"object": "list", "data": [{
                "id": "il_1", "description": "Potluck usage", "amount": 1234,
                "quantity": 1234, "period": {"start": created - 86400, "end": created}}]},
        }}})


def deliver(client, payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return client.post(URL, data=payload, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=header)


@pytest.fixture
def linked(db, billing_on, stripe_fake, org):
    billing_on()
    BillingAccount.objects.create(organization=org, stripe_customer_id="cus_acme")
    return org


def test_unsigned_wrongly_signed_and_stale_deliveries_are_refused(linked, client):
    payload = invoice_event("evt_1", "invoice.paid", "paid", int(time.time()))
    assert client.post(URL, data=payload, content_type="application/json").status_code == 400
    assert deliver(client, payload, secret="whsec_wrong").status_code == 400
    # Older than the 300 s tolerance.
    assert deliver(client, payload, timestamp=int(time.time()) - 400).status_code == 400
    assert not StripeEvent.objects.exists() and not Invoice.objects.exists()


def test_duplicates_and_out_of_order_deliveries_have_one_effect(linked, client, user_client):
    now = int(time.time())
    received = []
    invoice_paid.connect(lambda **kw: received.append(kw["invoice"].stripe_id),
                         weak=False, dispatch_uid="test-paid")
    try:
        failed = invoice_event("evt_failed", "invoice.payment_failed", "open", now - 60)
        paid = invoice_event("evt_paid", "invoice.paid", "paid", now)
        # The later "paid" arrives first, twice; the earlier failure arrives last.
        first = deliver(client, paid)
        again = deliver(client, paid)
        late = deliver(client, failed)
    finally:
        invoice_paid.disconnect(dispatch_uid="test-paid")
    assert (first.status_code, again.status_code, late.status_code) == (200, 200, 200)
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert StripeEvent.objects.count() == 2
    invoice = Invoice.objects.get(stripe_id="in_1")
    assert invoice.status == "paid" and invoice.amount_paid == 1234
    assert invoice.organization_id == linked.pk
    assert received == ["in_1"]  # the credits module hears of the payment once
    account = BillingAccount.objects.get(organization=linked)
    assert account.payment_failed_at is None  # the stale failure changed nothing
    # Shown in the console's API: lines and the PDF link; other orgs see nothing.
    body = user_client(linked, "viewer").get("/api/billing/invoices").json()
    assert body[0]["invoice_pdf"] == "https://pay.stripe.test/in_1.pdf"
    assert body[0]["lines"][0]["amount"] == 1234


def test_a_failed_payment_warns_then_blocks_until_paid(linked, client, settings):
    settings.BILLING_PAYMENT_GRACE_DAYS = 7
    now = int(time.time())
    assert deliver(client, invoice_event("evt_f", "invoice.payment_failed", "open",
                                         now)).status_code == 200
    account = BillingAccount.objects.get(organization=linked)
    assert payment_state(account, timezone.now()).state == "grace"
    assert payment_state(account, timezone.now() + timedelta(days=8)).state == "blocked"
    settings.BILLING_BLOCK_AFTER_GRACE = False
    assert payment_state(account, timezone.now() + timedelta(days=8)).state == "grace"
    settings.BILLING_BLOCK_AFTER_GRACE = True
    assert deliver(client, invoice_event("evt_p", "invoice.paid", "paid",
                                         now + 5)).status_code == 200
    account.refresh_from_db()
    assert payment_state(account, timezone.now() + timedelta(days=8)).state == "ok"


def test_webhooks_answer_403_without_a_licence(db, client, stripe_fake):
    payload = invoice_event("evt_x", "invoice.paid", "paid", int(time.time()))
    assert deliver(client, payload).status_code == 403
    assert not StripeEvent.objects.exists()
