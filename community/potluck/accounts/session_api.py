# SPDX-License-Identifier: Apache-2.0
"""The console's password sign-in: ``/api/session`` and ``/api/session/providers``.

GET tells who is signed in (and sets the CSRF cookie the console sends back); POST signs
in with an email (or username) and a password; DELETE signs out. Sign-in is CSRF-checked
even though nobody is signed in yet, and goes through ``potluck.accounts.signin``, the
only password path: the login policies first (an extension may refuse, e.g. SSO enforced
for the email's domain, with a message that says where to sign in instead), then the
throttle (429 with ``Retry-After``), then the password; it answers the same for an
unknown user and a wrong password.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import CSRFCheck, SessionAuthentication
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck import extensions
from potluck.accounts import signin
from potluck.accounts.models import Membership, User

# An extension that signs people in its own way (e.g. SSO) stores here where the console
# should send them to sign out; otherwise it is this endpoint (DELETE).
LOGOUT_URL_SESSION_KEY = "potluck_logout_url"
SESSION_URL = "/api/session"
INVALID_CREDENTIALS = "invalid email or password"


class TooManySignIns(APIException):
    """429 with ``Retry-After`` (DRF's handler sets it from ``wait``)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, throttled: signin.SignInThrottled) -> None:
        super().__init__(str(throttled))
        self.wait = throttled.retry_after


class SignInSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, max_length=254)
    username = serializers.CharField(required=False, max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False,
                                     style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("email") or "").strip() and not (attrs.get("username") or "").strip():
            raise ValidationError({"email": ["give an email address (or a username)"]})
        return attrs


class OrganizationRoleSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="organization.id")
    slug = serializers.CharField(source="organization.slug")
    name = serializers.CharField(source="organization.name")
    role = serializers.CharField()


class SessionSerializer(serializers.Serializer):
    authenticated = serializers.BooleanField()
    user = serializers.DictField(allow_null=True)
    organizations = OrganizationRoleSerializer(many=True)
    logout_url = serializers.CharField()


class ProviderSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    start_url = serializers.CharField()


class ProvidersSerializer(serializers.Serializer):
    providers = ProviderSerializer(many=True)


def enforce_csrf(request: Request) -> None:
    """The CSRF check of a form post, also for a caller who is not signed in yet."""

    def dummy_get_response(_: Any) -> None:  # pragma: no cover - never called
        return None

    check = CSRFCheck(dummy_get_response)
    check.process_request(request._request)
    reason = check.process_view(request._request, None, (), {})
    if reason:
        raise PermissionDenied(f"CSRF Failed: {reason}")


def _session_body(request: Request) -> dict[str, Any]:
    user = request.user
    if not user.is_authenticated or not isinstance(user, User):
        return {"authenticated": False, "user": None, "organizations": [],
                "logout_url": SESSION_URL}
    memberships = (Membership.objects.filter(user=user).select_related("organization")
                   .order_by("organization__slug"))
    return {
        "authenticated": True,
        "user": {"id": user.pk, "email": user.email, "username": user.get_username(),
                 "is_superuser": user.is_superuser},
        "organizations": OrganizationRoleSerializer(memberships, many=True).data,
        "logout_url": request.session.get(LOGOUT_URL_SESSION_KEY) or SESSION_URL,
    }


class SessionView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(responses=SessionSerializer)
    def get(self, request: Request) -> Response:
        get_token(request._request)  # sets the csrftoken cookie the console sends back
        return Response(_session_body(request))

    @extend_schema(request=SignInSerializer, responses=SessionSerializer)
    def post(self, request: Request) -> Response:
        enforce_csrf(request)
        body = SignInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            user = signin.sign_in(
                request._request, email=(body.validated_data.get("email") or "").strip(),
                username=(body.validated_data.get("username") or "").strip(),
                password=body.validated_data["password"])
        except signin.InvalidCredentials:
            raise ValidationError({"non_field_errors": [INVALID_CREDENTIALS]},
                                  code="authorization") from None
        except signin.SignInThrottled as throttled:
            raise TooManySignIns(throttled) from None
        login(request._request, user)
        request._request.session.pop(LOGOUT_URL_SESSION_KEY, None)
        request.user = user
        response = Response(_session_body(request))
        signin.remember_device(response, request._request, user)
        return response

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionProvidersView(APIView):
    """Other ways to sign in for this email (e.g. its organization's SSO)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: ProvidersSerializer})
    def get(self, request: Request) -> Response:
        email = (request.query_params.get("email") or "").strip() or None
        providers = extensions.providers_for(email)
        return Response({"providers": [
            {"key": p.key, "title": p.title, "start_url": p.start_url} for p in providers]})
