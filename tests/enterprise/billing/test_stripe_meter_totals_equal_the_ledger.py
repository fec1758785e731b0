# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Usage is priced once into lines, and the lines reach Stripe's meter (the fake, through
the real SDK) so that the meter's total equals the ledger to the minor unit: with
Stripe failing (5xx, 429, timeouts, an answer lost after Stripe took the events), with
two senders at once, and never for usage older than Stripe's 35 days."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from billing_helpers import DEMO_BOOK, price_all, usage_record

from potluck.accounts import services as accounts
from potluck.usage import services as usage
from potluck_enterprise.billing import outbox, pricebook, stripe_link
from potluck_enterprise.billing.models import (
    AlertKind,
    BillingAccount,
    LineKind,
    MeterEvent,
    OperatorAlert,
    OutboxState,
    PricedLine,
    SpendCounter,
)

PRICES = {"chat-a": {"input": Fraction("0.27"), "cached_input": Fraction("0.07"),
                     "output": Fraction("1.10"), "request": Fraction("0.000010")},
          "chat-b": {"input": Fraction("0.55"), "cached_input": Fraction("0.55"),
                     "output": Fraction("2.19"), "request": Fraction(0)}}


def expected_total(events) -> Fraction:
    """Usage x prices, computed apart from the code under test (exact fractions)."""
    total = Fraction(0)
    for e in events:
        p = PRICES[e.model]
        total += (Fraction(e.prompt_tokens - e.cached_tokens) * p["input"]
                  + Fraction(e.cached_tokens) * p["cached_input"]
                  + Fraction(e.completion_tokens) * p["output"]) / 10**6
        if e.status < 400:
            total += p["request"]
    return total


@pytest.fixture
def priced_org(transactional_db, billing_on, stripe_fake, settings):
    settings.BILLING_STRIPE_RETRY_MAX_SECONDS = 2  # back-offs of 1-2 s: the test waits them
    stripe_fake.hang_seconds = settings.BILLING_STRIPE_TIMEOUT_SECONDS + 0.5
    billing_on()
    pricebook.create_version(DEMO_BOOK)
    org = accounts.create_organization("Acme")
    return org


def send_until_drained(limit_s: float = 90) -> None:
    """Run the sender as beat would, waiting out each back-off (real time)."""
    from django.db.models import Min

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        outbox.send_due()
        due = MeterEvent.objects.filter(state=OutboxState.PENDING).aggregate(
            at=Min("next_attempt_at"))["at"]
        if due is None:
            return
        time.sleep(min(5.0, max(0.05, (due - datetime.now(UTC)).total_seconds())))
    raise AssertionError("the outbox never drained")


def test_each_record_is_priced_once_and_the_lines_sum_to_usage_times_prices(priced_org):
    org = priced_org
    keys = [accounts.create_api_key(org, f"k{i}", scopes=["inference"])[0] for i in range(2)]
    events = [usage_record(org, model="chat-a" if i % 3 else "chat-b", key=keys[i % 2],
                           prompt=100 + i, cached=i % 7, completion=3 * i,
                           status=200 if i % 10 else 500) for i in range(120)]
    usage.record_events(events)
    assert price_all() == 120
    assert price_all() == 0  # nothing is priced twice
    lines = list(PricedLine.objects.filter(organization=org))
    total = sum((line.amount for line in lines), Decimal(0))
    assert Fraction(total) == expected_total(events)
    assert len({(line.usage_id, line.kind) for line in lines}) == len(lines)
    assert {line.window for line in lines} == {"standard"}
    assert all(line.price_version_id == lines[0].price_version_id for line in lines)
    # Failed requests pay their tokens but no request fee.
    failed = {e.request_id for e in events if e.status >= 400}
    assert not PricedLine.objects.filter(usage_id__in=failed, kind=LineKind.REQUEST).exists()
    # The org's counters equal the lines; each key's too.
    month = SpendCounter.objects.get(organization=org, scope="org", period="month")
    assert month.amount == total
    for key in keys:
        key_lines = sum((line.amount for line in lines if line.api_key_id == key.pk),
                        Decimal(0))
        assert SpendCounter.objects.get(organization=org, scope="key", api_key_id=key.pk,
                                        period="day").amount == key_lines


def test_stripe_down_then_back_loses_and_doubles_nothing(priced_org, stripe_fake):
    org = priced_org
    stripe_link.link(org)  # the customer is created on first use
    events = [usage_record(org, prompt=20_000 + 37 * i, cached=1_000, completion=10_000 + i)
              for i in range(260)]
    usage.record_events(events[:130])
    price_all()
    # Stripe fails in every way for a while, and once takes a batch but the answer is lost.
    stripe_fake.fail_next("500", 2)
    stripe_fake.fail_next("429", 2)
    stripe_fake.fail_next("timeout", 1)
    stripe_fake.fail_next("accept_then_timeout", 1)
    result = outbox.send_due()
    assert result.sent == 0 and result.failed_calls == 1
    usage.record_events(events[130:])  # traffic goes on while Stripe is down
    price_all()
    send_until_drained()

    customer = BillingAccount.objects.get(organization=org).stripe_customer_id
    ledger = outbox.ledger_minor_units(str(org.pk))
    assert Fraction(ledger, 100) <= expected_total(events) < Fraction(ledger + 1, 100)
    assert stripe_fake.total(customer) == ledger  # to the minor unit
    assert stripe_fake.duplicates >= 1  # the lost answer's batch was sent again, and dropped
    assert len(stripe_fake.customers) == 1
    assert max(stripe_fake.batch_sizes) <= 100 and len(stripe_fake.batch_sizes) >= 3
    assert stripe_fake.concurrency_violations == 0
    sent = MeterEvent.objects.filter(organization=org)
    assert set(sent.values_list("state", flat=True)) == {OutboxState.SENT}
    # Each event's identifier is a priced line's id.
    assert set(stripe_fake.events) == set(sent.values_list("identifier", flat=True))
    assert set(stripe_fake.events) <= set(PricedLine.objects.values_list("id", flat=True))
    # Stripe's own summary agrees (read back through the SDK).
    from potluck_enterprise.billing.stripe_adapter import StripeBilling

    adapter = StripeBilling.from_settings()
    meter = adapter.ensure_meter()
    now = datetime.now(UTC)
    assert adapter.meter_total(meter, customer, now - timedelta(days=1),
                               now + timedelta(days=1)) == ledger


def test_two_senders_never_call_at_once_for_one_customer(priced_org, stripe_fake):
    org = priced_org
    stripe_link.link(org)
    usage.record_events([usage_record(org, prompt=30_000, completion=20_000)
                         for _ in range(300)])
    price_all()
    results = []

    def sender() -> None:
        from django.db import connection

        try:
            results.append(outbox.send_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    send_until_drained()
    customer = BillingAccount.objects.get(organization=org).stripe_customer_id
    assert stripe_fake.concurrency_violations == 0
    assert stripe_fake.duplicates == 0
    assert stripe_fake.total(customer) == outbox.ledger_minor_units(str(org.pk))


def test_usage_older_than_35_days_is_an_alert_not_a_meter_event(priced_org, stripe_fake):
    org = priced_org
    stripe_link.link(org)
    old = datetime.now(UTC) - timedelta(days=40)
    usage.record_events([usage_record(org, prompt=50_000, completion=50_000, at=old),
                         usage_record(org, prompt=50_000, completion=50_000)])
    price_all()
    result = outbox.send_due()
    assert result.expired >= 1
    expired = MeterEvent.objects.filter(state=OutboxState.EXPIRED)
    assert expired.exists() and all(e.timestamp < datetime.now(UTC) - timedelta(days=35)
                                    for e in expired)
    alert = OperatorAlert.objects.get(kind=AlertKind.METER_EVENT_TOO_OLD)
    assert set(alert.data["identifiers"]) == set(expired.values_list("identifier", flat=True))
    customer = BillingAccount.objects.get(organization=org).stripe_customer_id
    assert stripe_fake.rejected == []  # nothing stale was ever offered to Stripe
    assert stripe_fake.total(customer) == sum(
        MeterEvent.objects.filter(state=OutboxState.SENT).values_list("value", flat=True))
