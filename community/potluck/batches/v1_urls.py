# SPDX-License-Identifier: Apache-2.0
"""/v1 routes of this app (OpenAI shapes)."""

from __future__ import annotations

from django.urls import path

from potluck.batches import api

urlpatterns = [
    path("batches", api.BatchListView.as_view(), name="v1-batches"),
    path("batches/<str:batch_id>", api.BatchDetailView.as_view(), name="v1-batch"),
    path("batches/<str:batch_id>/cancel", api.BatchCancelView.as_view(),
         name="v1-batch-cancel"),
]
