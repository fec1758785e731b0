# SPDX-License-Identifier: Apache-2.0
"""The web console: ``frontend/dist/index.html`` for ``/`` and every client-side route.

The console's assets are static files (``/static/console/…``, served by whitenoise, which
indexes them when the web process starts: rebuild, then restart). This view only hands out
the page that loads them. Until the console is built, ``/`` is the landing page that says
so and links to what works.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from potluck import views
from potluck.web_security import CONSOLE_CSP

# The client-side routes of frontend/src/App.tsx; a deep link or a reload lands on the console.
ROUTES = ("models", "playground", "fine-tuning", "batches", "usage", "keys", "members",
          "enterprise", "invitations")
ROUTE_PATTERN = rf"^(?:{'|'.join(ROUTES)})/?$"


def index_file() -> Path:
    return Path(settings.CONSOLE_DIST_DIR) / "index.html"


@require_safe
@ensure_csrf_cookie
def console(request: HttpRequest) -> HttpResponse:
    try:
        page = index_file().read_bytes()
    except FileNotFoundError:
        return views.home(request)
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    # The page names hashed asset files, which change with every build: never cache it.
    response["Cache-Control"] = "no-cache"
    response["Content-Security-Policy"] = CONSOLE_CSP
    return response
