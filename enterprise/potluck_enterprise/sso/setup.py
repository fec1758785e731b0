# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): mounts SSO's routes (always; each view
answers only while the licence grants "sso")."""

from __future__ import annotations


def install() -> None:
    """Placeholder until the SSO module lands."""
