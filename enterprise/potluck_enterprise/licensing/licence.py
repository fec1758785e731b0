# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A verified licence and where it stands in time (active, expiring, in grace, expired).

Pure Python (no Django): the issuer tool and the verifier share it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

FORMAT_VERSION = 1  # an unbound licence: valid on any installation
# A licence bound to one installation: version 1's fields plus ``installation_id``. A
# Potluck that reads only version 1 refuses it ("format version 2 is not supported")
# rather than granting it everywhere; unbound licences stay version 1, byte for byte.
BOUND_FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (FORMAT_VERSION, BOUND_FORMAT_VERSION)
# Features a licence may grant; gating maps each to the module that switches it.
KNOWN_FEATURES: dict[str, str] = {
    "sso": "Single sign-on (OIDC, SAML)",
    "billing": "Metered billing",
    "credits": "Contribution credits",
    "compliance": "Compliance-tuned variants",
}
# How long before expiry the licence starts warning, and when the warning turns urgent.
EXPIRY_WARNING_DAYS = 30
EXPIRY_URGENT_DAYS = 7


class LicenceState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRING = "expiring"  # within EXPIRY_WARNING_DAYS of its expiry
    GRACE = "grace"  # expired, features still on until the grace period ends
    EXPIRED = "expired"  # past expiry and grace: enterprise features are off

    @property
    def in_force(self) -> bool:
        return self is not LicenceState.EXPIRED


def format_time(moment: datetime) -> str:
    """The one spelling of a time in a licence: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Licence:
    """A licence's fields. ``version`` is the format version it was read with (or is
    meant for); ``to_payload`` writes the version its fields need: 2 when
    ``installation_id`` binds it to one installation, else 1."""

    version: int
    license_id: str
    licensee: str
    organization: str
    features: tuple[str, ...]
    seats: int
    issued_at: datetime
    expires_at: datetime
    grace_days: int
    installation_id: str | None = None  # bound to this installation (None: any)

    @property
    def bound(self) -> bool:
        return self.installation_id is not None

    @property
    def grace_ends_at(self) -> datetime:
        return self.expires_at + timedelta(days=self.grace_days)

    @property
    def unknown_features(self) -> tuple[str, ...]:
        """Features this version of Potluck does not know (granted by a newer issuer)."""
        return tuple(f for f in self.features if f not in KNOWN_FEATURES)

    def state_at(self, now: datetime) -> LicenceState:
        if now >= self.grace_ends_at:
            return LicenceState.EXPIRED
        if now >= self.expires_at:
            return LicenceState.GRACE
        if now >= self.expires_at - timedelta(days=EXPIRY_WARNING_DAYS):
            return LicenceState.EXPIRING
        return LicenceState.ACTIVE

    def seat_margin(self) -> int:
        """Members allowed past ``seats`` (with a warning) before adding more is refused."""
        return max(1, self.seats // 10)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "version": BOUND_FORMAT_VERSION if self.bound else FORMAT_VERSION,
            "license_id": self.license_id,
            "licensee": self.licensee,
            "organization": self.organization,
            "features": list(self.features),
            "seats": self.seats,
            "issued_at": format_time(self.issued_at),
            "expires_at": format_time(self.expires_at),
            "grace_days": self.grace_days,
        }
        if self.bound:
            payload["installation_id"] = self.installation_id
        return payload
