# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""OpenID Connect relying party: authorization code flow with state, nonce and PKCE (S256).

Authlib's OAuth2 client builds the authorization request and exchanges the code; joserfc
checks the ID token: its signature against the IdP's JWKS, then iss, aud (and azp),
exp, iat and nonce. The IdP's discovery document and JWKS are cached briefly; a token
signed with a key id not in the cached JWKS triggers one re-fetch (key rotation).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from potluck.errors import InvalidInput
from potluck_enterprise.sso import remote
from potluck_enterprise.sso.models import OidcConnection
from potluck_enterprise.sso.provisioning import Identity, groups_from

log = logging.getLogger(__name__)

DISCOVERY_CACHE_SECONDS = 300
CLOCK_LEEWAY_SECONDS = 60
# A sign-in must come back from the IdP within this time.
FLOW_MAX_AGE_SECONDS = 600
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                       "ES384", "ES512", "EdDSA"]
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class OidcFailure(InvalidInput):
    """The IdP's answer cannot be trusted (signature, audience, expiry, nonce, state)."""


def _cache_key(kind: str, url: str) -> str:
    return f"sso:oidc:{kind}:{url}"


def discover(discovery_url: str, *, refresh: bool = False) -> dict[str, Any]:
    key = _cache_key("discovery", discovery_url)
    metadata = None if refresh else cache.get(key)
    if metadata is None:
        metadata = remote.fetch_json(discovery_url, field="discovery_url")
        missing = [name for name in REQUIRED_METADATA if not metadata.get(name)]
        if missing:
            raise InvalidInput(f"the discovery document lacks {', '.join(missing)}",
                               field="discovery_url")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            remote.check_url(str(metadata[name]), field="discovery_url")
        cache.set(key, metadata, DISCOVERY_CACHE_SECONDS)
    return metadata


def _jwks(jwks_uri: str, *, refresh: bool = False) -> KeySet:
    key = _cache_key("jwks", jwks_uri)
    data = None if refresh else cache.get(key)
    if data is None:
        data = remote.fetch_json(jwks_uri, field="discovery_url")
        cache.set(key, data, DISCOVERY_CACHE_SECONDS)
    try:
        return KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcFailure("the identity provider's JWKS cannot be read") from exc


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and what the session must remember for the callback."""

    authorize_url: str
    state: str
    flow: dict[str, Any]


def _session(connection: OidcConnection, metadata: dict[str, Any], redirect_uri: str
             ) -> OAuth2Session:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = ("client_secret_basic" if "client_secret_basic" in methods
                   else "client_secret_post")
    return OAuth2Session(
        client_id=connection.client_id, client_secret=connection.client_secret,
        scope=" ".join(connection.scopes), redirect_uri=redirect_uri,
        code_challenge_method="S256", token_endpoint_auth_method=auth_method,
    )


def start(connection: OidcConnection, redirect_uri: str, next_path: str) -> Started:
    metadata = discover(connection.discovery_url)
    nonce = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)
    with _session(connection, metadata, redirect_uri) as client:
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce)
    flow = {"connection": str(connection.pk), "organization": str(connection.organization_id),
            "nonce": nonce, "code_verifier": code_verifier, "redirect_uri": redirect_uri,
            "next": next_path, "started_at": time.time()}
    return Started(authorize_url=url, state=state, flow=flow)


def _decode_id_token(connection: OidcConnection, metadata: dict[str, Any], id_token: str
                     ) -> dict[str, Any]:
    keys = _jwks(metadata["jwks_uri"])
    try:
        try:
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        except (ValueError, JoseError) as first:
            if isinstance(first, BadSignatureError):
                raise
            # Perhaps the IdP rotated its keys since we cached them: look once more.
            token = jwt.decode(id_token, _jwks(metadata["jwks_uri"], refresh=True),
                               algorithms=ID_TOKEN_ALGORITHMS)
    except BadSignatureError as exc:
        raise OidcFailure("the ID token's signature does not verify with the identity "
                          "provider's keys") from exc
    except (JoseError, ValueError) as exc:
        raise OidcFailure(f"the ID token cannot be verified ({exc.__class__.__name__})") from exc
    return dict(token.claims)


def _validate_claims(claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str
                     ) -> None:
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        sub={"essential": True},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise OidcFailure("the ID token has expired") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", None) or str(exc)
        problems = {
            "iss": "the ID token was issued by another issuer",
            "aud": "the ID token is for another client (audience)",
            "nonce": "the ID token's nonce does not match this sign-in",
        }
        message = next((text for name, text in problems.items() if name in str(claim)),
                       f"the ID token's claims are not valid ({claim})")
        raise OidcFailure(message) from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcFailure("the ID token is for another client (azp)")


def finish(connection: OidcConnection, flow: dict[str, Any], code: str) -> tuple[Identity, str]:
    """Exchange the code, verify the ID token; returns the identity and the raw ID token."""
    if time.time() - float(flow.get("started_at", 0)) > FLOW_MAX_AGE_SECONDS:
        raise OidcFailure("this sign-in took too long; start again")
    metadata = discover(connection.discovery_url)
    with _session(connection, metadata, flow["redirect_uri"]) as client:
        try:
            token = client.fetch_token(metadata["token_endpoint"], code=code,
                                       code_verifier=flow["code_verifier"],
                                       timeout=remote.TIMEOUT_SECONDS)
        except AuthlibBaseError as exc:
            raise OidcFailure(
                f"the identity provider refused the code: {exc.error or 'error'}") from exc
        except Exception as exc:  # transport errors from requests
            raise OidcFailure(
                f"the identity provider's token endpoint failed: {exc.__class__.__name__}"
            ) from exc
    id_token = token.get("id_token")
    if not id_token:
        raise OidcFailure("the identity provider sent no ID token (is 'openid' in the scopes?)")
    claims = _decode_id_token(connection, metadata, id_token)
    _validate_claims(claims, issuer=metadata["issuer"], client_id=connection.client_id,
                     nonce=flow["nonce"])
    if claims.get("email_verified") is False:
        raise OidcFailure("the identity provider has not verified this email address")
    if "email" not in claims or connection.groups_claim not in claims:
        claims = {**_userinfo(metadata, token.get("access_token"), str(claims["sub"])),
                  **claims}
    identity = Identity(
        protocol="oidc", subject=str(claims["sub"]), email=str(claims.get("email") or ""),
        groups=groups_from(claims.get(connection.groups_claim)),
        org_claim=claims.get(connection.org_claim) if connection.org_claim else None,
    )
    return identity, id_token


def _userinfo(metadata: dict[str, Any], access_token: str | None, subject: str
              ) -> dict[str, Any]:
    """Claims from the userinfo endpoint, for IdPs that keep them out of the ID token."""
    endpoint = metadata.get("userinfo_endpoint")
    if not endpoint or not access_token:
        return {}
    try:
        remote.check_url(str(endpoint), field="discovery_url")
        response = requests.get(endpoint, timeout=remote.TIMEOUT_SECONDS,
                                headers={"Authorization": f"Bearer {access_token}"})
        body = response.json() if response.status_code == 200 else {}
    except (requests.RequestException, ValueError, InvalidInput):
        log.warning("sso: the userinfo endpoint %s failed", endpoint)
        return {}
    # "sub" must match the ID token's, or the answer is about someone else (OIDC Core 5.3.2).
    if not isinstance(body, dict) or str(body.get("sub")) != subject:
        return {}
    return body


def end_session_url(connection: OidcConnection, id_token: str | None,
                    post_logout_redirect_uri: str) -> str | None:
    """The IdP's RP-initiated logout URL, when its discovery document advertises one."""
    try:
        endpoint = discover(connection.discovery_url).get("end_session_endpoint")
    except InvalidInput:
        return None
    if not endpoint:
        return None
    params = {"client_id": connection.client_id,
              "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token:
        params["id_token_hint"] = id_token
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"
