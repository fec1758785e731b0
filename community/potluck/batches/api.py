# SPDX-License-Identifier: Apache-2.0
"""/v1/batches: OpenAI's Batch API (create, list, retrieve, cancel), thin over services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from potluck.batches import selectors, services
from potluck.batches.models import Batch
from potluck.openai_api.base import OpenAIView, paginate


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def render(batch: Batch) -> dict[str, Any]:
    """A batch object exactly as OpenAI shapes it."""
    return {
        "id": batch.pk,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.model or None,
        "errors": ({"object": "list", "data": batch.errors} if batch.errors else None),
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": _unix(batch.created_at),
        "in_progress_at": _unix(batch.in_progress_at),
        "expires_at": _unix(batch.expires_at),
        "finalizing_at": _unix(batch.finalizing_at),
        "completed_at": _unix(batch.completed_at),
        "failed_at": _unix(batch.failed_at),
        "expired_at": _unix(batch.expired_at),
        "cancelling_at": _unix(batch.cancelling_at),
        "cancelled_at": _unix(batch.cancelled_at),
        "request_counts": {"total": batch.request_total,
                           "completed": batch.request_completed,
                           "failed": batch.request_failed},
        "usage": {"input_tokens": batch.input_tokens,
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": batch.output_tokens,
                  "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": batch.input_tokens + batch.output_tokens},
        "metadata": batch.metadata,
    }


# Creating and cancelling a batch spends inference, as the requests it holds would.
class BatchListView(OpenAIView):
    capabilities = {"GET": "read", "POST": "inference"}

    def get(self, request: Request) -> Response:
        batches = selectors.list_batches(self.tenant.organization)
        return Response(paginate(request, batches, render))

    def post(self, request: Request) -> Response:
        batch = services.create_batch(self.tenant.organization, self.json_body(),
                                      api_key=self.tenant.api_key, user=self.tenant.user)
        return Response(render(batch))


class BatchDetailView(OpenAIView):
    capabilities = {"GET": "read"}

    def get(self, request: Request, batch_id: str) -> Response:
        return Response(render(selectors.get_batch(self.tenant.organization, batch_id)))


class BatchCancelView(OpenAIView):
    capabilities = {"POST": "inference"}

    def post(self, request: Request, batch_id: str) -> Response:
        return Response(render(services.cancel_batch(self.tenant.organization, batch_id)))
