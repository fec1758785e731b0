# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SSO fixtures: the feature switched on, a real OIDC provider over HTTP on 127.0.0.1, a
pysaml2 IdP, an organization with a verified email domain, and browser-like clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oidc_provider import Provider, RunningProvider
from saml_idp import SamlIdp
from sso_helpers import CORP_DOMAIN, follow_to_idp, local_path, make_oidc_connection

from potluck import extensions
from potluck_enterprise.sso import feature


@pytest.fixture
def sso_on() -> Iterator[None]:
    """The "sso" feature on, as the licence gate switches it: the features entry + enable()."""
    extensions.features.register(feature.FEATURE_KEY,
                                 extensions.Feature(feature.FEATURE_KEY, "Single sign-on"),
                                 replace=True)
    feature.enable()
    yield
    extensions.features.unregister(feature.FEATURE_KEY)
    feature.disable()


@pytest.fixture(scope="session")
def running_oidc_provider() -> Iterator[RunningProvider]:
    running = RunningProvider().start()
    yield running
    running.stop()


@pytest.fixture
def idp(running_oidc_provider, redis_conn) -> Provider:
    """The OIDC provider, reset; discovery and JWKS caches emptied (redis_conn does it)."""
    provider = running_oidc_provider.provider
    provider.reset()
    return provider


@pytest.fixture
def corp_domain(org) -> Any:
    """corp.test, verified for Acme (``org``) by an operator."""
    from potluck_enterprise.sso import domains

    return domains.verify_by_operator(domains.add_domain(org, CORP_DOMAIN))


@pytest.fixture
def oidc_connection(org, idp, corp_domain) -> Any:
    return make_oidc_connection(org, idp)


@pytest.fixture
def browser() -> Any:
    from django.test import Client as DjangoClient

    return DjangoClient()


@pytest.fixture
def oidc_sign_in(idp) -> Callable[..., Any]:
    """Runs the browser through start -> IdP -> callback; returns the callback response."""

    def sign_in(browser: Any, org_slug: str, user: dict[str, Any], next_path: str = "") -> Any:
        idp.user = user
        start = browser.get(f"/api/sso/{org_slug}/oidc/start"
                            + (f"?next={next_path}" if next_path else ""))
        callback = follow_to_idp(start)
        return browser.get(local_path(callback))

    return sign_in


@pytest.fixture
def saml_idp(tmp_path) -> SamlIdp:
    return SamlIdp(tmp_path / "saml-idp")


@pytest.fixture
def saml_connection(org, saml_idp, corp_domain, browser, sso_on) -> Any:
    """Acme's SAML connection to the test IdP, which has loaded Potluck's SP metadata."""
    from potluck_enterprise.sso import services

    connection = services.save_saml_connection(
        org, {"idp_metadata_xml": saml_idp.metadata_xml(), "groups_claim": "groups"},
        default_entity_id=f"http://testserver/api/sso/{org.slug}/saml/metadata",
        granted_by_owner=True)
    metadata = browser.get(f"/api/sso/{org.slug}/saml/metadata")
    assert metadata.status_code == 200, metadata.content
    saml_idp.sp_metadata = metadata.content.decode("utf-8")
    return connection
