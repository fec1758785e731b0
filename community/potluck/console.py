# SPDX-License-Identifier: Apache-2.0
"""The web console: ``frontend/dist/index.html`` for ``/`` and every client-side route.

The console's assets are static files (``/static/console/…``, served by whitenoise, which
indexes them when the web process starts: rebuild, then restart). This view only hands out
the page that loads them. Until the console is built, ``/`` is the landing page that says
so and links to what works. Any other page address outside the API, the gateway, static
files and admin gets the same page with status 404, and the console shows its own "page
not found" with its navigation.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from potluck import views
from potluck.web_security import CONSOLE_CSP

# The client-side routes of frontend/src/App.tsx; a deep link or a reload lands on the console.
ROUTES = ("models", "playground", "fine-tuning", "fine-tuning/[A-Za-z0-9_-]+", "batches",
          "usage", "keys", "members", "enterprise", "invitations", "billing", "compliance")
ROUTE_PATTERN = rf"^(?:{'|'.join(ROUTES)})/?$"
# Any other path outside the API, the gateway, static files and admin: the console's own
# "page not found" (status 404), styled and with the navigation, not Django's bare one.
NOT_FOUND_PATTERN = r"^(?!(?:api|v1|static|admin)(?:/|$)|(?:metrics|healthz|readyz)$).+$"


def index_file() -> Path:
    return Path(settings.CONSOLE_DIST_DIR) / "index.html"


@require_safe
@ensure_csrf_cookie
def console(request: HttpRequest) -> HttpResponse:
    try:
        page = index_file().read_bytes()
    except FileNotFoundError:
        return views.home(request)
    return _page(page)


@ensure_csrf_cookie
def not_found(request: HttpRequest) -> HttpResponse:
    """The console page with status 404: it shows its own "page not found" (a plain 404
    for anything but a page load)."""
    if request.method not in ("GET", "HEAD"):
        raise Http404("no such page")
    try:
        page = index_file().read_bytes()
    except FileNotFoundError:
        raise Http404("no such page") from None
    return _page(page, status=404)


def _page(page: bytes, status: int = 200) -> HttpResponse:
    response = HttpResponse(page, content_type="text/html; charset=utf-8", status=status)
    # The page names hashed asset files, which change with every build: never cache it.
    response["Cache-Control"] = "no-cache"
    response["Content-Security-Policy"] = CONSOLE_CSP
    return response
