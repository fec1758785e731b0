# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from potluck import console, extensions, health

urlpatterns = [
    path("", console.console, name="home"),
    re_path(console.ROUTE_PATTERN, console.console, name="console"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # One password sign-in path (POST /api/session, in the console): the admin's own
    # login form would skip the login policies and the throttle.
    path("admin/login/", RedirectView.as_view(url="/", query_string=False), name="admin-login"),
    path("admin/", admin.site.urls),
    # The schema describes the API, not anyone's data: readable without signing in.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny],
                                                   authentication_classes=[]), name="schema"),
    path("api/", include("potluck.api.urls")),
    path("v1/", include("potluck.api.v1_urls")),
]
for routes in extensions.site_routes:
    urlpatterns += routes()
urlpatterns.append(
    re_path(console.NOT_FOUND_PATTERN, console.not_found, name="console-not-found"))
