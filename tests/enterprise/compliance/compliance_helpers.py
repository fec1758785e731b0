# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Helpers of the compliance tests (a module of its own: conftest modules share a name)."""

from __future__ import annotations


def publish(org, base, profile_key: str = "finance", name: str = ""):
    """A published variant of ``base`` (guardrails only: served by the base itself)."""
    from django.utils import timezone

    from potluck_enterprise.compliance import services
    from potluck_enterprise.compliance.models import Variant, VariantState

    profile = services.ensure_profile(org, profile_key)
    name = name or f"{base.name}:{profile_key}"
    return Variant.objects.create(organization=org, name=name, profile=profile, base=base,
                                  model=base, candidate_name=f"{name}@candidate-test",
                                  state=VariantState.PUBLISHED, published_at=timezone.now())
