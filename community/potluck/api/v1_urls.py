# SPDX-License-Identifier: Apache-2.0
"""/v1 routes served by Django (see ``potluck.asgi`` for which /v1 paths come here)."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("potluck.files.v1_urls")),
    path("", include("potluck.finetune.v1_urls")),
    path("", include("potluck.batches.v1_urls")),
]
