# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Enterprise test fixtures: a throwaway issuer key, a controlled clock, a licensed install.

Tests never see the real issuer's private key. ``issuer`` makes a key pair and points
the verifier at its public half by swapping ``format.ISSUER_PUBLIC_KEY`` for the test;
nothing a deployment can set does that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fake_stripe import WEBHOOK_SECRET, FakeStripe

from potluck_enterprise.licensing import clock as licence_clock
from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.gating import gate
from potluck_enterprise.licensing.licence import format_time

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Issuer:
    """Signs licences with the test key that the verifier trusts during the test."""

    private_key: Ed25519PrivateKey
    private_pem: bytes
    public_pem: bytes
    epoch: datetime = EPOCH  # when its licences are issued unless told otherwise

    def payload(self, **overrides: Any) -> dict[str, Any]:
        issued = overrides.pop("issued_at", self.epoch)  # a datetime, or raw text to test
        start = issued if isinstance(issued, datetime) else self.epoch
        days = overrides.pop("days", 365)
        body: dict[str, Any] = {
            "version": 1,
            "license_id": "lic-test-0001",
            "licensee": "Acme Corp",
            "organization": "Acme",
            "features": ["sso", "billing"],
            "seats": 10,
            "issued_at": format_time(issued) if isinstance(issued, datetime) else issued,
            "expires_at": format_time(start + timedelta(days=days)),
            "grace_days": 14,
        }
        body.update(overrides)
        return body

    def licence(self, **overrides: Any) -> str:
        """A signed licence file; keyword arguments override payload fields."""
        return format.sign(self.payload(**overrides), self.private_key)


@pytest.fixture
def issuer(monkeypatch) -> Issuer:
    private_pem, public_pem = format.generate_key_pair()
    monkeypatch.setattr(format, "ISSUER_PUBLIC_KEY", public_pem)
    return Issuer(format.load_private_key(private_pem), private_pem, public_pem)


@dataclass
class Clock:
    now: datetime
    moves: list[datetime] = field(default_factory=list)

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        self.moves.append(moment)
        return moment

    def advance(self, **delta: float) -> datetime:
        return self.set(self.now + timedelta(**delta))


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Licensing's clock, starting a day after EPOCH (when test licences are issued)."""
    controlled = Clock(EPOCH + timedelta(days=1))
    monkeypatch.setattr(licence_clock, "now", lambda: controlled.now)
    return controlled


@pytest.fixture(autouse=True)
def fresh_gate() -> Iterator[None]:
    """Every test starts and ends with no licensed feature switched on in this process."""
    gate.reset()
    yield
    gate.reset()


@pytest.fixture
def licensed(db, issuer, clock) -> Callable[..., object]:
    """Installs a test licence (default: sso and billing, 10 seats) and switches its features.

    ``licensed(features=["sso"], seats=3)``; returns the InstalledLicence row.
    """
    from potluck_enterprise.licensing import services

    def install(**overrides: Any) -> object:
        return services.install(issuer.licence(**overrides))

    return install


@pytest.fixture
def stripe_fake(settings) -> Iterator[FakeStripe]:
    """The local Stripe fake (tests/enterprise/fake_stripe.py), with billing's settings
    pointed at it; the store's tests point theirs too (tests/enterprise/store)."""
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
