# SPDX-License-Identifier: Apache-2.0
"""/v1/files routes (OpenAI shapes; no trailing slashes, as the OpenAI SDK calls them)."""

from __future__ import annotations

from django.urls import path

from potluck.files import api

urlpatterns = [
    path("files", api.FilesView.as_view(), name="files"),
    path("files/<str:file_id>", api.FileView.as_view(), name="file"),
    path("files/<str:file_id>/content", api.FileContentView.as_view(), name="file-content"),
]
