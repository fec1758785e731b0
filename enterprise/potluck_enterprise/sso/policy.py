# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SSO's hooks into community sign-in: enforcement for password logins, and SSO buttons."""

from __future__ import annotations

import logging

from django.urls import reverse

from potluck.accounts.models import Organization
from potluck.errors import Forbidden
from potluck.extensions import LoginProvider
from potluck_enterprise.sso import domains
from potluck_enterprise.sso.models import OidcConnection, SamlConnection

log = logging.getLogger(__name__)


def providers_of(org: Organization) -> list[LoginProvider]:
    """The organization's enabled sign-in connections, OIDC first."""
    found: list[LoginProvider] = []
    if OidcConnection.objects.for_org(org).filter(enabled=True).exists():
        found.append(LoginProvider(key=f"sso:{org.slug}:oidc",
                                   title=f"Sign in with SSO ({org.name})",
                                   start_url=reverse("sso-oidc-start", args=[org.slug])))
    if SamlConnection.objects.for_org(org).filter(enabled=True).exists():
        found.append(LoginProvider(key=f"sso:{org.slug}:saml",
                                   title=f"Sign in with SAML SSO ({org.name})",
                                   start_url=reverse("sso-saml-start", args=[org.slug])))
    return found


def login_providers(email: str | None) -> list[LoginProvider]:
    """``extensions.login_providers``: SSO of the organization whose verified domain matches."""
    if not email:
        return []
    domain = domains.verified_domain_for(email)
    return providers_of(domain.organization) if domain is not None else []


class EnforcedSsoPolicy:
    """``extensions.login_policies``: no password sign-in for an SSO-enforced verified domain."""

    def check_password_login(self, email: str) -> None:
        domain = domains.verified_domain_for(email)
        if domain is None or not domain.enforce_sso:
            return
        providers = providers_of(domain.organization)
        if not providers:
            # Enforcement without a working connection would lock everyone out.
            log.warning("sso: %s enforces SSO but %s has no enabled connection; allowing the "
                        "password sign-in", domain.domain, domain.organization.slug)
            return
        raise Forbidden(f"password sign-in is turned off for {domain.domain}: sign in with SSO "
                        f"at {providers[0].start_url}")
