# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Fetching what identity providers publish: OIDC discovery, JWKS, SAML metadata.

HTTPS only, except to loopback addresses (a development IdP on this machine); bounded in
time and size. Failures become ``InvalidInput`` naming the field the URL came from.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import requests

from potluck.errors import InvalidInput

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 1024 * 1024


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, field: str) -> str:
    """The URL, if an IdP may be reached there: https, or http on loopback."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"{url!r} is not an http(s) URL", field=field)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidInput("use an https:// URL (plain http is allowed only to localhost)",
                           field=field)
    return url.strip()


def fetch_text(url: str, *, field: str, accept: str = "*/*") -> str:
    check_url(url, field=field)
    try:
        with requests.get(url, timeout=TIMEOUT_SECONDS, stream=True, allow_redirects=False,
                          headers={"Accept": accept}) as response:
            if response.status_code != 200:
                raise InvalidInput(f"{url} answered HTTP {response.status_code}", field=field)
            body = response.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise InvalidInput(f"cannot fetch {url}: {exc.__class__.__name__}", field=field) from exc
    if len(body) > MAX_BYTES:
        raise InvalidInput(f"{url} answered more than {MAX_BYTES} bytes", field=field)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{url} did not answer UTF-8 text", field=field) from exc


def fetch_json(url: str, *, field: str) -> dict[str, Any]:
    text = fetch_text(url, field=field, accept="application/json")
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{url} did not answer JSON", field=field) from exc
    if not isinstance(body, dict):
        raise InvalidInput(f"{url} did not answer a JSON object", field=field)
    return body
