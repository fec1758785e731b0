# SPDX-License-Identifier: Apache-2.0
"""OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``.

Source: OpenAI's API reference ("Error codes"); the SDKs map the HTTP status to their
exception classes (400 BadRequestError, 401 AuthenticationError, 403
PermissionDeniedError, 404 NotFoundError, 409 ConflictError, 422
UnprocessableEntityError, 429 RateLimitError, >= 500 InternalServerError) and read
``code`` and ``param`` from the body.
"""

from __future__ import annotations

from typing import Any

# The ``type`` OpenAI gives each status.
TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    """OpenAI's ``type`` for an HTTP status (``server_error`` for 5xx and unknowns)."""
    return TYPES.get(status, "server_error")


def error_body(message: str, *, status: int, param: str | None = None,
               code: str | None = None, type: str | None = None) -> dict[str, Any]:
    """The error object for ``status``: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type or error_type(status),
                      "param": param, "code": code}}
