# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A real OpenID Connect provider for the tests: Authlib's authorization server (code flow,
OpenID Connect, PKCE required, nonce required) in a small Flask app, served over HTTP on
127.0.0.1 by Werkzeug in a thread.

The person signing in is chosen by the test (``provider.user = {...}``): the IdP's own
login page is not what these tests are about. ``provider.faults`` makes the IdP misbehave
in one way at a time (sign with a key it does not publish, another audience, an expired
or foreign-issuer token, a different nonce) so the relying party's checks are exercised
against tokens a real IdP library signed.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "potluck-test-client"
CLIENT_SECRET = "s3cret-client-value-for-tests"


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)
    scope: str = "openid email profile groups"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict[str, Any]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Provider:
    """The IdP's state: clients, codes, keys, who signs in, and injected faults."""

    def __init__(self) -> None:
        self.signing_key = RSAKey.generate_key(2048, parameters={"kid": "idp-key-1"})
        # A key the IdP never publishes: tokens signed with it must not verify.
        self.rogue_key = RSAKey.generate_key(2048, parameters={"kid": "idp-key-1"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.nonces: set[str] = set()
        self.user: dict[str, Any] = {}
        self.faults: set[str] = set()
        self.token_requests = 0
        self.base_url = ""
        self.advertise_end_session = True
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.clients.clear()
            self.codes.clear()
            self.nonces.clear()
            self.user = {}
            self.faults = set()
            self.token_requests = 0
            self.advertise_end_session = True

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def issuer(self) -> str:
        return self.base_url


def build_app(provider: Provider) -> Flask:
    app = Flask("potluck-test-idp")

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            provider.codes[code] = AuthorizationCode(
                code=code, client_id=req.client.get_client_id(),
                redirect_uri=req.payload.redirect_uri, scope=req.scope, user=req.user,
                nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=int(time.time()))

        def query_authorization_code(self, code: str, client: Client) -> Any:
            item = provider.codes.get(code)
            return item if item is not None and item.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: AuthorizationCode) -> dict[str, Any]:
            return authorization_code.user

    class IdToken(OpenIDCode):
        def exists_nonce(self, nonce: str, req: Any) -> bool:
            return nonce in provider.nonces

        def resolve_client_private_key(self, client: Client) -> Any:
            return provider.rogue_key if "bad_signature" in provider.faults else (
                provider.signing_key)

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, Any]:
            return {"alg": "RS256", "kid": "idp-key-1"}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            now = int(time.time())
            claims: dict[str, Any] = {"iss": provider.issuer, "aud": [client.client_id],
                                      "iat": now, "exp": now + 300}
            if "wrong_audience" in provider.faults:
                claims["aud"] = ["some-other-client"]
            if "expired" in provider.faults:
                claims["iat"] = now - 3600
                claims["exp"] = now - 1800
            if "wrong_issuer" in provider.faults:
                claims["iss"] = "https://evil.example"
            return claims

        def get_authorization_code_claims(self, authorization_code: Any) -> dict[str, Any]:
            claims = super().get_authorization_code_claims(authorization_code)
            if "wrong_nonce" in provider.faults:
                claims["nonce"] = "not-the-nonce-you-sent"
            return claims

        def generate_user_info(self, user: dict[str, Any], scope: str) -> dict[str, Any]:
            return dict(user)

    def query_client(client_id: str) -> Client | None:
        return provider.clients.get(client_id)

    def save_token(token: dict[str, Any], req: Any) -> None:
        provider.token_requests += 1

    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    server.register_grant(CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        body = {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.base_url}/authorize",
            "token_endpoint": f"{provider.base_url}/token",
            "jwks_uri": f"{provider.base_url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }
        if provider.advertise_end_session:
            body["end_session_endpoint"] = f"{provider.base_url}/logout"
        return jsonify(body)

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify({"keys": [provider.signing_key.as_dict(private=False)]})

    @app.get("/authorize")
    def authorize() -> Any:
        # The person is already signed in at this IdP: consent is implied.
        nonce = request.args.get("nonce")
        if nonce:
            provider.nonces.discard(nonce)
        user = dict(provider.user)
        grant = server.get_consent_grant(end_user=user)
        response = server.create_authorization_response(grant=grant, grant_user=user)
        if nonce:
            provider.nonces.add(nonce)
        return response

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    return app


class RunningProvider:
    def __init__(self) -> None:
        self.provider = Provider()
        self._server = make_server("127.0.0.1", 0, build_app(self.provider), threaded=True)
        self.provider.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="test-oidc-idp")

    def start(self) -> RunningProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
