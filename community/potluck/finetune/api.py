# SPDX-License-Identifier: Apache-2.0
"""``/v1/fine_tuning/jobs``: OpenAI's fine-tuning API (create, list, retrieve, cancel,
pause, resume, events, checkpoints), plus Potluck's LoRA/full ``adapter`` options."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from potluck.finetune import selectors, services
from potluck.finetune.completion import fine_tuned_name
from potluck.finetune.models import (
    FineTuningCheckpoint,
    FineTuningEvent,
    FineTuningJob,
    Method,
)
from potluck.openai_api.base import OpenAIView, paginate


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def job_object(job: FineTuningJob) -> dict[str, Any]:
    h = job.hyperparameters or {}
    public = {k: h.get(k, "auto") for k in ("n_epochs", "batch_size",
                                            "learning_rate_multiplier")}
    adapter = ({"type": Method.FULL.value} if job.method == Method.FULL
               else {"type": Method.LORA.value, **(job.adapter or {})})
    return {
        "object": "fine_tuning.job",
        "id": job.id,
        "model": job.model_name,
        "created_at": _ts(job.created_at),
        "finished_at": _ts(job.finished_at),
        "fine_tuned_model": job.fine_tuned_model or None,
        "organization_id": job.organization.slug,
        "result_files": job.result_files,
        "status": job.status,
        "validation_file": job.validation_file_id or None,
        "training_file": job.training_file_id,
        "hyperparameters": public,
        "method": {"type": "supervised", "supervised": {"hyperparameters": public}},
        "adapter": adapter,
        "learning_rate": h.get("learning_rate"),
        "trained_tokens": job.trained_tokens,
        "error": job.error,
        "user_provided_suffix": job.suffix or None,
        "seed": job.seed,
        "estimated_finish": _ts(job.estimated_finish),
        "integrations": [],
        "metadata": job.metadata or None,
    }


def event_object(event: FineTuningEvent) -> dict[str, Any]:
    return {"object": "fine_tuning.job.event", "id": event.id,
            "created_at": _ts(event.created_at), "level": event.level,
            "message": event.message, "data": event.data, "type": event.type}


def checkpoint_object(checkpoint: FineTuningCheckpoint, job: FineTuningJob) -> dict[str, Any]:
    name = f"{job.fine_tuned_model or fine_tuned_name(job)}:ckpt-step-{checkpoint.step_number}"
    return {"object": "fine_tuning.job.checkpoint", "id": checkpoint.id,
            "created_at": _ts(checkpoint.created_at),
            "fine_tuned_model_checkpoint": name, "step_number": checkpoint.step_number,
            "metrics": checkpoint.metrics, "fine_tuning_job_id": job.id}


class JobsView(OpenAIView):
    def get(self, request: Request) -> Response:
        jobs = selectors.list_jobs(self.tenant.organization).select_related("organization")
        return Response(paginate(request, jobs, job_object))

    def post(self, request: Request) -> Response:
        job = services.create_job(self.tenant.organization, self.json_body(),
                                  api_key=self.tenant.api_key, user=self.tenant.user)
        return Response(job_object(job))


class JobView(OpenAIView):
    def get(self, request: Request, job_id: str) -> Response:
        return Response(job_object(selectors.get_job(self.tenant.organization, job_id)))


class CancelView(OpenAIView):
    def post(self, request: Request, job_id: str) -> Response:
        return Response(job_object(services.cancel_job(self.tenant.organization, job_id)))


class PauseView(OpenAIView):
    def post(self, request: Request, job_id: str) -> Response:
        return Response(job_object(services.pause_job(self.tenant.organization, job_id)))


class ResumeView(OpenAIView):
    def post(self, request: Request, job_id: str) -> Response:
        return Response(job_object(services.resume_job(self.tenant.organization, job_id)))


class EventsView(OpenAIView):
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.get_job(self.tenant.organization, job_id)
        return Response(paginate(request, selectors.job_events(job), event_object))


class CheckpointsView(OpenAIView):
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.get_job(self.tenant.organization, job_id)
        return Response(paginate(request, selectors.job_checkpoints(job),
                                 lambda c: checkpoint_object(c, job), default_limit=10))
