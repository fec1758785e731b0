# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Billing fixtures: a licensed install with billing on, a price book, the Stripe fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from billing_helpers import WEBHOOK_SECRET
from fake_stripe import FakeStripe


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
