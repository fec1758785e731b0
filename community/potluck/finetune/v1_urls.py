# SPDX-License-Identifier: Apache-2.0
"""/v1/fine_tuning/jobs routes (OpenAI shapes)."""

from __future__ import annotations

from django.urls import path

from potluck.finetune import api

urlpatterns = [
    path("fine_tuning/jobs", api.JobsView.as_view(), name="ft-jobs"),
    path("fine_tuning/jobs/<str:job_id>", api.JobView.as_view(), name="ft-job"),
    path("fine_tuning/jobs/<str:job_id>/cancel", api.CancelView.as_view(), name="ft-cancel"),
    path("fine_tuning/jobs/<str:job_id>/pause", api.PauseView.as_view(), name="ft-pause"),
    path("fine_tuning/jobs/<str:job_id>/resume", api.ResumeView.as_view(), name="ft-resume"),
    path("fine_tuning/jobs/<str:job_id>/events", api.EventsView.as_view(), name="ft-events"),
    path("fine_tuning/jobs/<str:job_id>/checkpoints", api.CheckpointsView.as_view(),
         name="ft-checkpoints"),
]
