# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Billing fixtures: a licensed install with billing on (the Stripe fake, ``stripe_fake``,
is in tests/enterprise/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def billing_on(licensed) -> Callable[..., Any]:
    """Installs a licence that grants billing (the feature switches on in this process)."""
    from potluck import extensions

    def on() -> Any:
        row = licensed(features=["billing"])
        assert extensions.feature_available("billing")
        return row

    return on
