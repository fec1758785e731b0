# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from potluck import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # The schema describes the API, not anyone's data: readable without signing in.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny],
                                                   authentication_classes=[]), name="schema"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/", include("potluck.api_urls")),
    path("v1/", include("potluck.openai_api.urls")),
]
