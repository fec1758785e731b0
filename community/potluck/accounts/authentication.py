# SPDX-License-Identifier: Apache-2.0
"""DRF authentication: API keys as bearer tokens, plus backends that extensions register."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from potluck import extensions
from potluck.accounts import keys
from potluck.accounts.services import authenticate_api_key


def bearer_token(request: Request) -> str | None:
    header = get_authorization_header(request).decode("latin-1").strip()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer pot_...``; the user is the key's creator, or anonymous."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        token = bearer_token(request)
        if token is None or keys.parse(token) is None:
            return None
        key = authenticate_api_key(token)
        if key is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked API key")
        return (ApiKeyUser(key), key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="potluck"'


class ApiKeyUser(AnonymousUser):
    """A request made with a key acts as the key, not as the person who created it."""

    def __init__(self, key: Any) -> None:
        super().__init__()
        self.api_key = key

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return f"key {self.api_key.display_prefix}"


class ExtensionAuthentication(BaseAuthentication):
    """Tries each DRF authentication class that an extension registered (e.g. SSO tokens)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        for dotted in extensions.auth_backends:
            result = import_string(dotted)().authenticate(request)
            if result is not None:
                return result
        return None
