# SPDX-License-Identifier: Apache-2.0
"""The base of every OpenAI-compatible Django view: auth, tenancy, errors, lists.

Callers authenticate with an API key (``Authorization: Bearer pot_…``) as the OpenAI
SDK does, or with the console's session (CSRF-checked, ``X-Potluck-Organization``
picks the org). Every error, DRF's own included, is rendered in OpenAI's shape::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null,
               "code": null}}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import exceptions, permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.accounts.api_base import Tenant, resolve_tenant
from potluck.accounts.authentication import ApiKeyAuthentication, ExtensionAuthentication
from potluck.errors import InvalidInput, NotFound, PotluckError
from potluck.json_parser import JSONParser
from potluck.protocol.errors import error_body

MAX_LIST_LIMIT = 100

def _first_detail(detail: Any, prefix: str = "") -> tuple[str | None, str]:
    """DRF's nested error detail → (param path, message) of its first error."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            param = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first_detail(value, param)
    if isinstance(detail, list) and detail:
        return _first_detail(detail[0], prefix)
    return (prefix or None), str(detail)


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PotluckError):
        code = getattr(exc, "code", None)
        return Response(error_body(exc.message, status=exc.status, param=exc.field, code=code),
                        status=exc.status)
    if isinstance(exc, exceptions.APIException):
        status = exc.status_code
        if isinstance(exc, exceptions.ValidationError):
            param, message = _first_detail(exc.detail)
            if param and not message.startswith(param):
                message = f"{param}: {message}"
        else:
            param, message = None, str(exc.detail)
        code = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed",
                429: "rate_limit_exceeded"}.get(status)
        if isinstance(exc, exceptions.NotAuthenticated):
            message = ("You didn't provide an API key. Provide it in the Authorization "
                       "header as `Bearer pot_...`.")
        response = Response(error_body(message, status=status, param=param, code=code),
                            status=status)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response["WWW-Authenticate"] = 'Bearer realm="potluck"'
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        return response
    return None


class OpenAIView(APIView):
    """Subclasses declare ``capabilities``: HTTP method → capability it needs."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication,
                              ExtensionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    capabilities: dict[str, str] = {"GET": "read", "POST": "write", "DELETE": "write"}

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return openai_exception_handler

    @cached_property
    def tenant(self) -> Tenant:
        return resolve_tenant(self.request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        needed = self.capabilities.get(request.method or "GET", "admin")
        if not self.tenant.can(needed):
            raise exceptions.PermissionDenied(
                f"this key or role lacks the {needed!r} capability")

    def json_body(self) -> dict[str, Any]:
        data = self.request.data
        if not isinstance(data, dict):
            raise InvalidInput("the request body must be a JSON object")
        return data


def list_limit(request: Request, default: int = 20) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidInput("limit must be an integer", field="limit") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}", field="limit")
    return limit


def paginate(request: Request, queryset: QuerySet, render: Callable[[Any], dict[str, Any]],
             *, default_limit: int = 20, ascending: bool = False) -> dict[str, Any]:
    """OpenAI's cursor list: ``after`` is the id of the last object of the previous page.

    Objects are ordered by (created_at, id), newest first unless ``ascending``; a
    request may flip that with ``order=asc|desc`` as the Files API allows.
    """
    limit = list_limit(request, default_limit)
    order = request.query_params.get("order")
    if order not in (None, "", "asc", "desc"):
        raise InvalidInput("order must be 'asc' or 'desc'", field="order")
    if order:
        ascending = order == "asc"
    after = request.query_params.get("after")
    if after:
        anchor = queryset.filter(pk=after).values("created_at", "pk").first()
        if anchor is None:
            raise NotFound(f"no object with id {after!r}", field="after")
        if ascending:
            queryset = queryset.filter(Q(created_at__gt=anchor["created_at"])
                                       | Q(created_at=anchor["created_at"], pk__gt=after))
        else:
            queryset = queryset.filter(Q(created_at__lt=anchor["created_at"])
                                       | Q(created_at=anchor["created_at"], pk__lt=after))
    ordering = ("created_at", "pk") if ascending else ("-created_at", "-pk")
    rows: Sequence[Any] = list(queryset.order_by(*ordering)[: limit + 1])
    page = rows[:limit]
    data = [render(row) for row in page]
    return {"object": "list", "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > limit}
