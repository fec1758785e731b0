# SPDX-License-Identifier: Apache-2.0
"""Cookies and headers of the Django side: secure behind TLS, strict on the console.

- ``SecureCookiesOverTLS``: on a request that came over HTTPS (directly, or through a
  proxy trusted by ``POTLUCK_BEHIND_TLS_PROXY``), the session, CSRF and sign-in device
  cookies are marked ``Secure`` even where the settings do not force it, so the plain
  http://127.0.0.1 of ``make run`` keeps working while any TLS deployment gets Secure
  cookies. ``POTLUCK_SECURE_COOKIES`` forces them everywhere.
- ``CONSOLE_CSP``: the Content-Security-Policy of the console's page. The built console
  (Vite + React) loads only its own script and stylesheet files, calls only its own
  origin (``/api``, ``/v1``), sets styles through the DOM (allowed by ``style-src``
  without ``'unsafe-inline'``), and leaves for SSO by following links, never forms.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CONSOLE_CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class SecureCookiesOverTLS:
    """Marks the session, CSRF and device cookies ``Secure`` on HTTPS requests.

    Sits above SessionMiddleware and CsrfViewMiddleware, so it sees the cookies they set
    on the way out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.is_secure():
            from potluck.accounts.signin import DEVICE_COOKIE

            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME,
                         DEVICE_COOKIE):
                if name in response.cookies:
                    response.cookies[name]["secure"] = True
        return response
