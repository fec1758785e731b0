# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's fixtures: the issuer key in a file (the store's only switch), the Stripe
fake with its webhooks delivered through the test client, and the plans on sale."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_stripe import WEBHOOK_SECRET, FakeStripe
from store_helpers import PLANS

WEBHOOK = "/api/store/stripe/webhook"


@pytest.fixture
def issuer_key_file(issuer, tmp_path, settings) -> Iterator[Path]:
    """The test issuer's private key in a 0600 file, configured: the store is on."""
    from potluck_enterprise.store import signing

    path = tmp_path / "issuer-private.pem"
    path.write_bytes(issuer.private_pem)
    path.chmod(0o600)
    settings.STORE_ISSUER_KEY_FILE = str(path)
    signing.forget()
    yield path
    signing.forget()


@dataclass
class Store:
    fake: FakeStripe
    client: Any  # the Stripe webhook's client
    key_file: Path


@pytest.fixture
def store(db, issuer_key_file, stripe_fake, settings, client) -> Store:
    """The store on, selling PLANS through the Stripe fake; the fake's webhook deliveries
    go to the store's endpoint through a test client of their own."""
    from django.test import Client

    from potluck_enterprise.store import plans

    settings.STORE_STRIPE_API_KEY = stripe_fake.api_key
    settings.STORE_STRIPE_API_BASE = stripe_fake.url
    settings.STORE_STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STORE_PUBLIC_URL = "https://store.potluck.test"
    stripe_client = Client()

    def sink(payload: str, header: str) -> int:
        answer = stripe_client.post(WEBHOOK, data=payload, content_type="application/json",
                                    HTTP_STRIPE_SIGNATURE=header)
        assert answer.status_code == 200, answer.content[:500]
        return answer.status_code

    stripe_fake.webhook_sink = sink
    plans.set_plans(PLANS)
    assert plans.sync_stripe() == 6
    return Store(stripe_fake, stripe_client, issuer_key_file)
