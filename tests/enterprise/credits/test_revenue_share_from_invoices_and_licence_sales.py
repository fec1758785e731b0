# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Each paid invoice (billing's invoice_paid, sent at least once) and each licence sale
(``potluck.extensions.record_revenue``, the extension point a licence store calls) puts
the configured share into the community pool exactly once, floored to the minor unit;
with credits switched off, nothing is posted."""

from __future__ import annotations

from datetime import UTC, datetime

from potluck import extensions
from potluck.accounts import services as accounts
from potluck_enterprise.billing.models import Invoice
from potluck_enterprise.billing.signals import invoice_paid
from potluck_enterprise.credits import ledger
from potluck_enterprise.credits.models import AccountKind, LedgerTransaction
from potluck_enterprise.licensing.gating import gate


def pool() -> int:
    return ledger.balance(ledger.system_account(AccountKind.POOL))


def test_invoices_and_licence_sales_feed_the_pool_once(db, credits_on, settings):
    credits_on()
    settings.CREDITS_REVENUE_SHARE = "0.10"
    org = accounts.create_organization("Customer")
    invoice = Invoice.objects.create(stripe_id="in_1", organization=org, status="paid",
                                     currency="USD", amount_paid=123_45,
                                     last_event_created=datetime.now(UTC))
    for _ in range(3):  # at least once
        invoice_paid.send(sender=Invoice, organization=org, invoice=invoice)
    assert pool() == 12_34  # 10 % of 123.45, floored to the cent
    extensions.record_revenue("licence_sale", "order-77", 5_000_00, "usd")
    extensions.record_revenue("licence_sale", "order-77", 5_000_00, "usd")
    assert pool() == 12_34 + 500_00
    extensions.record_revenue("licence_sale", "order-78", 1_00, "EUR")  # not our currency
    assert pool() == 12_34 + 500_00
    assert LedgerTransaction.objects.filter(kind="revenue_share").count() == 2
    assert ledger.balance(ledger.system_account(AccountKind.REVENUE)) == -(12_34 + 500_00)

    gate.reset()  # the licence no longer grants credits in this process
    invoice2 = Invoice.objects.create(stripe_id="in_2", organization=org, status="paid",
                                      currency="USD", amount_paid=1_000_00,
                                      last_event_created=datetime.now(UTC))
    invoice_paid.send(sender=Invoice, organization=org, invoice=invoice2)
    extensions.record_revenue("licence_sale", "order-79", 1_000_00, "USD")
    assert pool() == 12_34 + 500_00
