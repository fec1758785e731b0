# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Helpers of the billing tests: a demo price book, usage events, pricing until caught up."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fake_stripe import WEBHOOK_SECRET  # noqa: F401 (the fake signs with it)

DEMO_BOOK = {
    "effective_from": "2020-01-01T00:00:00Z", "currency": "USD", "time_zone": "UTC",
    "models": {
        "chat-a": {"input": "0.27", "cached_input": "0.07", "output": "1.10",
                   "request_fee": "0.000010"},
        "chat-b": {"input": "0.55", "output": "2.19"},
    },
}


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
