# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Real processes killed (SIGKILL) mid-way: the pricing consumer in the middle of a batch,
and the Stripe sender while Stripe holds its events but has not answered. Afterwards
nothing is lost and nothing is counted twice: the lines sum to usage x prices, and the
meter's total at the fake equals the ledger to the minor unit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from fractions import Fraction

import pytest
from billing_helpers import DEMO_BOOK, price_all, usage_record
from waiting import wait_for

from potluck.accounts import services as accounts
from potluck.usage import services as usage
from potluck.usage.models import UsageConsumerCursor
from potluck_enterprise.billing import outbox, pricebook, stripe_link
from potluck_enterprise.billing.models import (
    BillingAccount,
    MeterEvent,
    OutboxState,
    PricedLine,
    SpendCounter,
)
from potluck_enterprise.billing.pricing import CONSUMER_NAME

pytestmark = pytest.mark.slow

STALLING_CONSUMER = textwrap.dedent("""
    import os, pathlib, time, django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    django.setup()
    from potluck.usage.consumers import feed
    from potluck_enterprise.billing import pricing

    real, calls = pricing.write_lines, []

    def stalling(usages):
        calls.append(1)
        lines = real(usages)  # written inside the batch's transaction, not committed
        if len(calls) == 3:
            pathlib.Path(os.environ["STALLED"]).touch()
            time.sleep(600)
        return lines

    pricing.write_lines = stalling
    consumer = pricing.PricingConsumer()
    consumer.batch_size = 10
    feed(consumer, budget_s=600)
""")

SENDER = textwrap.dedent("""
    import os, django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    django.setup()
    from potluck_enterprise.billing import outbox
    outbox.send_due()
""")


def test_the_pricing_consumer_killed_mid_batch(transactional_db, billing_on, live_env,
                                                tmp_path):
    billing_on()
    pricebook.create_version(DEMO_BOOK)
    org = accounts.create_organization("Acme")
    events = [usage_record(org, prompt=100 + i, completion=10 + i) for i in range(50)]
    usage.record_events(events)
    stalled = tmp_path / "stalled"
    process = subprocess.Popen([sys.executable, "-c", STALLING_CONSUMER],
                               env={**live_env, "STALLED": str(stalled)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(stalled.exists, 60, "the consumer to stall in its third batch")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    # Two batches committed with their cursor; the third's lines went with the process.
    assert PricedLine.objects.values("usage_id").distinct().count() == 20
    cursor = UsageConsumerCursor.objects.get(name=CONSUMER_NAME)
    assert cursor.consumed == 20
    price_all()  # another runner takes over from the cursor
    lines = PricedLine.objects.all()
    assert lines.values("usage_id").distinct().count() == 50
    total = sum((line.amount for line in lines), Decimal(0))
    expected = sum((Fraction(e.prompt_tokens) * Fraction("0.27")
                    + Fraction(e.completion_tokens) * Fraction("1.10")) / 10**6
                   + Fraction("0.000010") for e in events)
    assert Fraction(total) == expected
    assert SpendCounter.objects.get(organization=org, scope="org", period="day").amount == total


def test_the_sender_killed_while_stripe_holds_its_events(transactional_db, billing_on,
                                                         stripe_fake, live_env, settings):
    billing_on()
    pricebook.create_version(DEMO_BOOK)
    org = accounts.create_organization("Acme")
    stripe_link.link(org)
    usage.record_events([usage_record(org, prompt=40_000, completion=20_000)
                         for _ in range(150)])
    price_all()
    stripe_fake.hang_seconds = 3.0
    stripe_fake.fail_next("accept_then_timeout")
    env = {**live_env, "POTLUCK_BILLING_STRIPE_API_KEY": stripe_fake.api_key,
           "POTLUCK_BILLING_STRIPE_API_BASE": stripe_fake.url,
           "POTLUCK_BILLING_STRIPE_METER_EVENTS_BASE": stripe_fake.url,
           "POTLUCK_BILLING_STRIPE_CALLS_PER_SECOND": "0"}
    process = subprocess.Popen([sys.executable, "-c", SENDER], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: stripe_fake.events, 60, "Stripe to hold the first batch")
        process.send_signal(signal.SIGKILL)  # before Stripe's answer reached it
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    held = len(stripe_fake.events)
    assert held > 0
    assert not MeterEvent.objects.filter(state=OutboxState.SENT).exists()  # never saw a 2xx
    # Stripe finishes with the call it was holding; then the sender runs again.
    wait_for(lambda: not any(stripe_fake._in_flight.values()), 30, "Stripe's call to end")
    deadline = time.monotonic() + 60
    while MeterEvent.objects.filter(state=OutboxState.PENDING).exists():
        assert time.monotonic() < deadline, "the outbox never drained"
        outbox.send_due()
        time.sleep(0.2)
    customer = BillingAccount.objects.get(organization=org).stripe_customer_id
    assert len(stripe_fake.customers) == 1  # the killed sender's customer, reused
    assert stripe_fake.duplicates == held  # the held batch came again and was dropped
    assert stripe_fake.concurrency_violations == 0
    assert stripe_fake.total(customer) == outbox.ledger_minor_units(str(org.pk))
