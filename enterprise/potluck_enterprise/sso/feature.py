# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The "sso" feature switch: the licence gate calls enable() when a licence grants it and
disable() when it no longer does (expiry past grace, licence removed)."""

from __future__ import annotations

FEATURE_KEY = "sso"


def enable() -> None:
    """Placeholder until the SSO module lands."""


def disable() -> None:
    """Placeholder until the SSO module lands."""
