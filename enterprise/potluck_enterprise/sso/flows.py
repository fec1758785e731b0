# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SP-initiated sign-in through the browser: start, come back, session, logout.

OIDC keeps each pending sign-in in the Django session, keyed by its ``state`` (the
callback is a top-level GET, so the Lax session cookie comes along). SAML's ACS is a
cross-site POST, which a Lax cookie does not follow: its pending requests live in Redis,
keyed by request id, bound to the browser by a separate short-lived cookie (without a
SameSite attribute over http, where browsers still send fresh cookies on such a POST;
``SameSite=None; Secure`` over https).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.accounts.models import Organization, User
from potluck.errors import InvalidInput
from potluck.redis_client import get_redis
from potluck_enterprise.sso import oidc, provisioning, saml
from potluck_enterprise.sso.gate import enabled_connection, ensure_licensed
from potluck_enterprise.sso.models import OidcConnection, SamlConnection

OIDC_FLOWS_KEY = "potluck_sso_oidc_flows"
MAX_PENDING_OIDC_FLOWS = 5
# What the session remembers of an SSO sign-in (for logout); and, read by the community
# session API, where the console should send the user to sign out.
SSO_SESSION_KEY = "potluck_sso"
LOGOUT_URL_SESSION_KEY = "potluck_logout_url"
SAML_BINDING_COOKIE = "potluck_saml_binding"
SAML_REQUEST_PREFIX = "potluck:sso:saml:request:"
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _next_path(request: Request) -> str:
    wanted = request.query_params.get("next") or "/"
    if not wanted.startswith("/") or not url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return "/"
    return wanted


def _sign_in(request: Request, user: User, org: Organization, protocol: str,
             connection_id: str, id_token: str | None = None) -> None:
    django_request: HttpRequest = request._request
    login(django_request, user, backend=AUTH_BACKEND)
    django_request.session[SSO_SESSION_KEY] = {
        "organization": str(org.pk), "protocol": protocol, "connection": connection_id,
        "id_token": id_token,
    }
    django_request.session[LOGOUT_URL_SESSION_KEY] = reverse("sso-logout")


class BrowserFlowView(APIView):
    """Anonymous browser endpoints: no API auth, no CSRF token (the protocol protects)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    schema = None  # redirects, not JSON resources


class OidcStartView(BrowserFlowView):
    def get(self, request: Request, org_slug: str) -> HttpResponse:
        ensure_licensed()
        org, connection = enabled_connection(org_slug, OidcConnection)
        redirect_uri = request.build_absolute_uri(reverse("sso-oidc-callback",
                                                          args=[org.slug]))
        started = oidc.start(connection, redirect_uri, _next_path(request))
        flows: dict[str, Any] = dict(request.session.get(OIDC_FLOWS_KEY) or {})
        fresh = sorted(flows.items(), key=lambda item: item[1].get("started_at", 0))
        flows = dict(fresh[-(MAX_PENDING_OIDC_FLOWS - 1):]) if fresh else {}
        flows[started.state] = started.flow
        request.session[OIDC_FLOWS_KEY] = flows
        return HttpResponseRedirect(started.authorize_url)


class OidcCallbackView(BrowserFlowView):
    def get(self, request: Request, org_slug: str) -> HttpResponse:
        ensure_licensed()
        org, connection = enabled_connection(org_slug, OidcConnection)
        state = request.query_params.get("state") or ""
        flows: dict[str, Any] = dict(request.session.get(OIDC_FLOWS_KEY) or {})
        flow = flows.pop(state, None) if state else None
        request.session[OIDC_FLOWS_KEY] = flows
        if flow is None or flow.get("connection") != str(connection.pk):
            raise oidc.OidcFailure(
                "state mismatch: this sign-in was not started in this browser, or it was "
                "already completed; start again", field="state")
        if request.query_params.get("error"):
            detail = request.query_params.get("error_description") or ""
            raise oidc.OidcFailure(f"the identity provider refused the sign-in: "
                                   f"{request.query_params['error']} {detail}".strip())
        code = request.query_params.get("code")
        if not code:
            raise oidc.OidcFailure("the identity provider sent no authorization code",
                                   field="code")
        identity, id_token = oidc.finish(connection, flow, code)
        user = provisioning.provision(org, connection, identity)
        _sign_in(request, user, org, "oidc", str(connection.pk), id_token)
        return HttpResponseRedirect(flow.get("next") or "/")


def _saml_endpoints(request: Request, org: Organization) -> saml.Endpoints:
    return saml.Endpoints(
        acs_url=request.build_absolute_uri(reverse("sso-saml-acs", args=[org.slug])),
        metadata_url=request.build_absolute_uri(reverse("sso-saml-metadata", args=[org.slug])),
    )


def _binding_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class SamlMetadataView(BrowserFlowView):
    def get(self, request: Request, org_slug: str) -> HttpResponse:
        ensure_licensed()
        org, connection = enabled_connection(org_slug, SamlConnection)
        xml = saml.sp_metadata(connection, _saml_endpoints(request, org))
        return HttpResponse(xml, content_type="application/samlmetadata+xml")


class SamlStartView(BrowserFlowView):
    def get(self, request: Request, org_slug: str) -> HttpResponse:
        ensure_licensed()
        org, connection = enabled_connection(org_slug, SamlConnection)
        relay_state = secrets.token_urlsafe(16)
        started = saml.start(connection, _saml_endpoints(request, org), relay_state)
        binding = secrets.token_urlsafe(32)
        key = SAML_REQUEST_PREFIX + started.request_id
        get_redis().set(key, json.dumps({
            "organization": str(org.pk), "connection": str(connection.pk),
            "binding": _binding_hash(binding), "relay_state": relay_state,
            "next": _next_path(request), "started_at": time.time(),
        }), ex=saml.REQUEST_MAX_AGE_SECONDS)
        response = HttpResponseRedirect(started.redirect_url)
        secure = request.is_secure()
        response.set_cookie(
            SAML_BINDING_COOKIE, binding, max_age=saml.REQUEST_MAX_AGE_SECONDS,
            path=reverse("sso-saml-acs", args=[org.slug]), httponly=True, secure=secure,
            samesite="None" if secure else None)
        return response


def _pending_saml_request(request_id: str | None) -> dict[str, Any] | None:
    if not request_id:
        return None
    raw = get_redis().get(SAML_REQUEST_PREFIX + request_id)
    return json.loads(raw) if raw else None


def _claim_saml_request(request_id: str) -> bool:
    """Mark the request answered; False when another response already answered it."""
    return bool(get_redis().set(SAML_REQUEST_PREFIX + request_id + ":answered", "1",
                                nx=True, ex=saml.REQUEST_MAX_AGE_SECONDS))


class SamlAcsView(BrowserFlowView):
    def post(self, request: Request, org_slug: str) -> HttpResponse:
        ensure_licensed()
        org, connection = enabled_connection(org_slug, SamlConnection)
        saml_response = request.data.get("SAMLResponse")
        if not saml_response or not isinstance(saml_response, str):
            raise InvalidInput("the request carries no SAMLResponse", field="SAMLResponse")
        request_id = saml.in_response_to(saml_response)
        pending = _pending_saml_request(request_id)
        if pending is not None and pending["connection"] != str(connection.pk):
            pending = None  # a request of another connection answers nothing here
        if pending is not None:
            cookie = request.COOKIES.get(SAML_BINDING_COOKIE) or ""
            if not hmac.compare_digest(_binding_hash(cookie), pending["binding"]):
                raise saml.SamlFailure(
                    "state mismatch: this sign-in was started in another browser; start "
                    "again", field="RelayState")
            if request.data.get("RelayState") != pending["relay_state"]:
                raise saml.SamlFailure("state mismatch: the RelayState is not the one sent",
                                       field="RelayState")
        endpoints = _saml_endpoints(request, org)
        identity = saml.finish(connection, endpoints, saml_response,
                               request_id if pending is not None else None)
        if pending is None or request_id is None or not _claim_saml_request(request_id):
            raise saml.SamlFailure("this sign-in request was already answered")
        user = provisioning.provision(org, connection, identity)
        _sign_in(request, user, org, "saml", str(connection.pk))
        return HttpResponseRedirect(pending.get("next") or "/")


class LogoutView(APIView):
    """Ends the Potluck session; for an OIDC sign-in, also where the IdP ends its own."""

    authentication_classes = [SessionAuthentication]  # CSRF-checked when signed in
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request) -> Response:
        info = request.session.get(SSO_SESSION_KEY) or {}
        redirect = "/"
        if info.get("protocol") == "oidc":
            org = Organization.objects.filter(pk=info.get("organization")).first()
            connection = (OidcConnection.objects.for_org(org).filter(
                pk=info.get("connection")).first() if org is not None else None)
            if connection is not None:
                redirect = oidc.end_session_url(
                    connection, info.get("id_token"), request.build_absolute_uri("/")) or "/"
        logout(request._request)
        return Response({"signed_out": True, "redirect": redirect})
