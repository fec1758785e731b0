# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The one licence check of SSO's endpoints, and how they find an organization's connection."""

from __future__ import annotations

from typing import TypeVar

from potluck import extensions
from potluck.accounts.models import Organization
from potluck.errors import Forbidden, NotFound
from potluck_enterprise.sso.feature import FEATURE_KEY
from potluck_enterprise.sso.models import OidcConnection, SamlConnection

C = TypeVar("C", OidcConnection, SamlConnection)

NOT_LICENSED = ('single sign-on needs an enterprise licence that grants the "sso" feature; '
                "an operator installs one with `potluck license install`")


def ensure_licensed() -> None:
    if not extensions.feature_available(FEATURE_KEY):
        raise Forbidden(NOT_LICENSED)


def enabled_connection(org_slug: str, model: type[C]) -> tuple[Organization, C]:
    """The organization and its enabled connection of that protocol, or 404."""
    label = "OIDC" if model is OidcConnection else "SAML"
    org = Organization.objects.filter(slug=org_slug).first()
    connection = (model.objects.for_org(org).filter(enabled=True).first()
                  if org is not None else None)
    if org is None or connection is None:
        raise NotFound(f"no {label} sign-in is set up for the organization {org_slug!r}")
    return org, connection
