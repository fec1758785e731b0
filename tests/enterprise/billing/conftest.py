# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Billing fixtures: a licensed install with billing on, a price book, the Stripe fake."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_stripe import FakeStripe

WEBHOOK_SECRET = "whsec_test_potluck"

DEMO_BOOK = {
    "effective_from": "2020-01-01T00:00:00Z", "currency": "USD", "time_zone": "UTC",
    "models": {
        "chat-a": {"input": "0.27", "cached_input": "0.07", "output": "1.10",
                   "request_fee": "0.000010"},
        "chat-b": {"input": "0.55", "output": "2.19"},
    },
}


@pytest.fixture
def billing_on(licensed) -> Callable[..., Any]:
    """Installs a licence that grants billing (the feature switches on in this process)."""
    from potluck import extensions

    def on() -> Any:
        row = licensed(features=["billing"])
        assert extensions.feature_available("billing")
        return row

    return on


@pytest.fixture
def stripe_fake(settings) -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    settings.BILLING_STRIPE_API_KEY = fake.api_key
    settings.BILLING_STRIPE_API_BASE = fake.url
    settings.BILLING_STRIPE_METER_EVENTS_BASE = fake.url
    settings.BILLING_STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.BILLING_STRIPE_TIMEOUT_SECONDS = 2
    settings.BILLING_STRIPE_CALLS_PER_SECOND = 0
    settings.BILLING_STRIPE_RETRY_SECONDS = 1
    yield fake
    fake.stop()


def usage_record(org: Any, *, model: str = "chat-a", key: Any = None, prompt: int = 10,
                 cached: int = 0, completion: int = 5, status: int = 200,
                 at: datetime | None = None, request_id: str | None = None) -> Any:
    """A usage event as the gateway would have written it."""
    from potluck.usage.stream import UsageEvent

    return UsageEvent(
        request_id=request_id or "req_" + uuid.uuid4().hex, organization_id=str(org.pk),
        api_key_id=str(key.pk) if key is not None else None, model=model,
        endpoint="chat.completions", status=status, stream=False, prompt_tokens=prompt,
        completion_tokens=completion, latency_ms=5.0, ttft_ms=None, replica_id=None,
        created_at=(at or datetime.now(UTC)).timestamp(), cached_tokens=cached)


def price_all() -> int:
    """Feed the pricing consumer until it has consumed every committed record."""
    from potluck.usage.consumers import Outcome, feed
    from potluck_enterprise.billing.pricing import PricingConsumer

    consumed = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = feed(PricingConsumer())
        consumed += result.consumed
        if result.outcome == Outcome.CAUGHT_UP:
            return consumed
        assert result.outcome == Outcome.CONSUMED, result
    raise AssertionError("pricing never caught up")
