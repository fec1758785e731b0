# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Variants as model names (``extensions.model_aliases``): a published variant under its
name, a variant being evaluated under its candidate name, both routed to the model that
serves it (its adapter, or its base) and carrying its compiled profile."""

from __future__ import annotations

import json

from potluck import extensions
from potluck_enterprise.compliance import profiles
from potluck_enterprise.compliance.models import Variant, VariantState
from potluck_enterprise.compliance.policy import STATE_KEY, VariantInfo


def variant_aliases() -> list[extensions.ModelAlias]:
    """Runs on the catalogue refresh (about once a second per serving process): one query."""
    rows = (Variant.objects.filter(state__in=(VariantState.PUBLISHED, VariantState.EVALUATING),
                                   model__isnull=False)
            .select_related("profile")
            .only("id", "name", "candidate_name", "state", "organization_id", "model_id",
                  "profile__key", "profile__version", "profile__spec"))
    aliases = []
    for variant in rows:
        profile = profiles.compiled(variant.profile.key, variant.profile.version,
                                    json.dumps(variant.profile.spec, sort_keys=True))
        published = variant.state == VariantState.PUBLISHED
        info = VariantInfo(str(variant.id), variant.name, profile,
                           "published" if published else "candidate")
        aliases.append(extensions.ModelAlias(
            variant.name if published else variant.candidate_name, str(variant.model_id),
            str(variant.organization_id), {STATE_KEY: info}))
    return aliases
