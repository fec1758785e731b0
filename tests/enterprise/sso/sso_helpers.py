# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Helpers shared by the SSO tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Client, Provider

CORP_DOMAIN = "corp.test"


def make_oidc_connection(org: Any, idp: Provider, **extra: Any) -> Any:
    from potluck_enterprise.sso import services

    callback = f"http://testserver/api/sso/{org.slug}/oidc/callback"
    client = idp.clients.get(CLIENT_ID) or Client(CLIENT_ID, CLIENT_SECRET)
    client.redirect_uris.append(callback)
    idp.clients[CLIENT_ID] = client
    data = {"discovery_url": idp.discovery_url, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"], **extra}
    return services.save_oidc_connection(org, data, granted_by_owner=True)


def follow_to_idp(response: Any) -> str:
    """The IdP's answer to the authorization redirect: the callback URL it sends back to."""
    assert response.status_code == 302, response.content
    answer = requests.get(response["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
