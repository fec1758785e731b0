# SPDX-License-Identifier: Apache-2.0
"""``GET /api/fine-tuning/jobs/<id>/metrics``: the whole loss curve of a job, for charts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.accounts.api_base import resolve_tenant
from potluck.errors import Forbidden, InvalidInput, NotFound
from potluck.finetune import selectors
from potluck.finetune.metrics import DEFAULT_MAX_POINTS, MAX_POINTS_RANGE, loss_curve


def _max_points(request: Request) -> int:
    raw = request.query_params.get("max_points")
    if raw in (None, ""):
        return DEFAULT_MAX_POINTS
    low, high = MAX_POINTS_RANGE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not low <= value <= high:
        raise InvalidInput(f"a whole number from {low} to {high}", field="max_points")
    return value


class JobMetricsView(APIView):
    """The job's training curve from step 1: ``points`` ([{step, train_loss,
    valid_loss}], one per step, or per bucket of ``bucket_steps`` steps when more than
    ``max_points`` were recorded), ``steps_recorded``, and ``latest``: the trainer's last
    report (step, total_steps, epoch, eta_seconds, tokens_per_second, …). Another
    organization's job is 404."""

    @extend_schema(parameters=[OpenApiParameter("max_points", int, description=(
        f"At most this many points (default {DEFAULT_MAX_POINTS}, "
        f"{MAX_POINTS_RANGE[0]} to {MAX_POINTS_RANGE[1]}).")),
    ], responses={200: dict})
    def get(self, request: Request, job_id: str) -> Response:
        tenant = resolve_tenant(request)
        if not tenant.can("read"):
            raise Forbidden("your role or key scopes do not allow this")
        limit = _max_points(request)
        try:
            job = selectors.get_job(tenant.organization, job_id)
        except NotFound:
            raise NotFound(f"no fine-tuning job {job_id!r}") from None
        curve = loss_curve(job, limit)
        body: dict[str, Any] = {
            "job_id": job.id, "status": job.status,
            "estimated_finish": (int(job.estimated_finish.timestamp())
                                 if job.estimated_finish else None),
            "steps_recorded": curve.steps_recorded, "bucket_steps": curve.bucket_steps,
            "latest": curve.latest, "points": [asdict(p) for p in curve.points],
        }
        return Response(body)
