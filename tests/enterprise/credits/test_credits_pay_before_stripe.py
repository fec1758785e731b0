# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Credits pay priced usage at list price before Stripe, exactly once per line, and only
the remainder reaches Stripe's meter: nothing is billed twice. An organization linked to
Stripe uses its credits, then pays the rest by card (a line covered in part is billed
for the part left); one with no other way to pay is debited in full (the gateway stops
it, see the policy test)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from potluck.accounts import services as accounts
from potluck.usage import services as usage
from potluck_enterprise.billing import outbox, pricebook, stripe_link
from potluck_enterprise.billing.models import PricedLine
from potluck_enterprise.credits import ledger, services
from potluck_enterprise.credits.models import SpendCarry

BOOK = {"effective_from": "2020-01-01T00:00:00Z", "currency": "USD", "time_zone": "UTC",
        "models": {"chat-a": {"input": "0.27", "output": "1.10", "request_fee": "0.000010"}}}


def record(org, prompt: int, completion: int):
    import uuid
    from datetime import UTC, datetime

    from potluck.usage.stream import UsageEvent

    return UsageEvent(request_id="req_" + uuid.uuid4().hex, organization_id=str(org.pk),
                      api_key_id=None, model="chat-a", endpoint="chat.completions",
                      status=200, stream=False, prompt_tokens=prompt,
                      completion_tokens=completion, latency_ms=5.0, ttft_ms=None,
                      replica_id=None, created_at=datetime.now(UTC).timestamp())


def price_all() -> None:
    from potluck.usage.consumers import Outcome, feed
    from potluck_enterprise.billing.pricing import PricingConsumer

    while feed(PricingConsumer()).outcome == Outcome.CONSUMED:
        pass


def list_credits(events) -> Fraction:
    """Usage at list price in credits (1 credit = 0.001 USD), computed apart."""
    total = Fraction(0)
    for e in events:
        total += (e.prompt_tokens * Fraction("0.27") + e.completion_tokens * Fraction("1.10")
                  ) / 10**6 + Fraction("0.000010")
    return total * 1000


def test_a_stripe_linked_org_spends_credits_first_and_stripe_bills_only_the_rest(
        transactional_db, credits_on, stripe_fake):
    credits_on()
    pricebook.create_version(BOOK)
    org = accounts.create_organization("Linked")
    stripe_link.link(org)
    services.give_organization(org, 5, reference="t1")  # 5 credits = 0.005 USD
    events = [record(org, 900 + i, 400 + 3 * i) for i in range(12)]  # ~0.75 credits each
    usage.record_events(events)
    price_all()
    wallet = ledger.org_wallet(org.pk)
    # Credits ran out part-way: the wallet is empty, never below zero.
    assert ledger.balance(wallet) == 0
    lines = list(PricedLine.objects.filter(organization=org))
    total = sum((line.amount for line in lines), Decimal(0))
    billed = sum(e.value for e in outbox.MeterEvent.objects.filter(organization=org))
    # What Stripe is told + what credits paid == the priced total, to the minor unit.
    paid_by_credits = Fraction(5, 1000)  # 5 credits, all used, in USD
    remainder = Fraction(total) - paid_by_credits
    assert billed == int(remainder * 100)  # the floor, in cents
    assert billed < int(Fraction(total) * 100) or Fraction(total) * 100 < 1
    outbox.send_due()
    customer = outbox.BillingAccount.objects.get(organization=org).stripe_customer_id
    assert stripe_fake.total(customer) == billed
    # Pricing again (a retried feed) changes nothing: exactly once per line.
    price_all()
    assert ledger.balance(wallet) == 0
    assert SpendCarry.objects.get(organization=org).debited == 5


def test_an_org_with_no_other_way_to_pay_is_debited_at_list_price(transactional_db,
                                                                   credits_on):
    credits_on()
    pricebook.create_version(BOOK)
    # A 50 % discount changes Stripe's price, never the credits' (list price).
    from datetime import timedelta

    from django.utils import timezone

    from potluck_enterprise.billing.models import PriceOverride

    org = accounts.create_organization("Contributor")
    PriceOverride.objects.create(organization=org, discount=Decimal("0.5"),
                                 effective_from=timezone.now() - timedelta(days=1))
    services.give_organization(org, 100, reference="t2")
    events = [record(org, 1000 + 7 * i, 250 + i) for i in range(20)]
    usage.record_events(events)
    price_all()
    wallet = ledger.org_wallet(org.pk)
    carry = SpendCarry.objects.get(organization=org)
    expected = list_credits(events)
    assert Fraction(carry.exact) == expected  # exact, not rounded
    assert carry.debited == -(-expected.numerator // expected.denominator)  # the ceiling
    assert ledger.balance(wallet) == 100 - carry.debited
    assert not outbox.MeterEvent.objects.filter(organization=org).exists()
