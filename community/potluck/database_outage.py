# SPDX-License-Identifier: Apache-2.0
"""The database unreachable: a clean 503 in each protocol's own shape, never an HTML 500.

While PostgreSQL restarts (or a managed one fails over), a view that reaches it raises
``OperationalError`` or ``InterfaceError``. This middleware answers those with 503 and
``Retry-After``: OpenAI's error object under ``/v1`` (files, fine-tuning, batches), DRF's
``{"detail": ...}`` elsewhere (``/api``, the console's calls). Django reconnects on the
next request by itself (``CONN_HEALTH_CHECKS``), so nothing needs restarting. Inference
(``/v1/chat/completions`` ...) never comes here: the gateway serves known keys from its
cache meanwhile (``potluck.gateway.auth``).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from potluck.protocol.errors import error_body

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
MESSAGE = "The service cannot reach its database right now; retry shortly."


def outage_response(request: HttpRequest) -> JsonResponse:
    """503 in the shape the path's clients read (OpenAI's under /v1, DRF's elsewhere)."""
    if request.path.startswith("/v1/"):
        body = error_body(MESSAGE, status=503, code="database_unavailable")
    else:
        body = {"detail": MESSAGE}
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware(MiddlewareMixin):
    """Turns a database connection failure in a view into ``outage_response`` (sync and
    async, as Django's own middleware)."""

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, OperationalError | InterfaceError):
            return None
        log.warning("database unreachable: %s %s answered 503 (%s: %s)", request.method,
                    request.path, exc.__class__.__name__, str(exc).strip().splitlines()[0]
                    if str(exc).strip() else "")
        return outage_response(request)
