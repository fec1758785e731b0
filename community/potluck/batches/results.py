# SPDX-License-Identifier: Apache-2.0
"""Each line's outcome: its result row (written once) and its usage record.

The usage record of a line has a request id derived from (batch, line), so a line that
is run again after a crash (its answer was not recorded in time) is still counted
once: the roll-up inserts by request id and ignores the second record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, Sum

from potluck.batches.models import Batch, BatchResult
from potluck.usage.stream import MAX_MODEL

SUCCEEDED = Q(status_code__gte=200, status_code__lt=300)
FAILED = Q(status_code__isnull=True) | Q(status_code__lt=200) | Q(status_code__gte=300)


def request_id(batch_id: str, line: int) -> str:
    """``batch_req_<batch>_<line>``: the line's id in the output file and in usage."""
    return f"batch_req_{batch_id.removeprefix('batch_')}_{line}"


@dataclass
class Outcome:
    """A line's final outcome: an answer (``status_code``), or why there is none."""

    line: int
    custom_id: str
    model: str
    status_code: int | None = None
    body: Any = None
    error_code: str = ""
    error_message: str = ""
    # The status a usage record shows for a line that got no answer (None: no record).
    usage_status: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    replica_id: str | None = None
    attempts: int = 0


def recorded_lines(batch_id: str) -> set[int]:
    return set(BatchResult.objects.filter(batch_id=batch_id).values_list("line", flat=True))


def record(batch_id: str, outcomes: list[Outcome]) -> None:
    """Write result rows; a line that already has one keeps it (a re-run's duplicate)."""
    BatchResult.objects.bulk_create([
        BatchResult(batch_id=batch_id, line=o.line, custom_id=o.custom_id,
                    request_id=request_id(batch_id, o.line), model=o.model[:MAX_MODEL],
                    status_code=o.status_code, body=o.body, error_code=o.error_code,
                    error_message=o.error_message, prompt_tokens=o.prompt_tokens,
                    completion_tokens=o.completion_tokens, latency_ms=o.latency_ms,
                    replica_id=o.replica_id, attempts=o.attempts)
        for o in outcomes], ignore_conflicts=True)


def refresh_counts(batch_id: str) -> None:
    """Set the batch's request counts and token totals from its result rows."""
    totals = BatchResult.objects.filter(batch_id=batch_id).aggregate(
        completed=Count("pk", filter=SUCCEEDED), failed=Count("pk", filter=FAILED),
        input_tokens=Sum("prompt_tokens", default=0),
        output_tokens=Sum("completion_tokens", default=0))
    Batch.objects.filter(pk=batch_id).update(
        request_completed=totals["completed"], request_failed=totals["failed"],
        input_tokens=totals["input_tokens"], output_tokens=totals["output_tokens"])


def output_line(result: BatchResult) -> dict[str, Any]:
    """One line of the output or error file, in OpenAI's shape."""
    if result.status_code is not None:
        return {"id": result.request_id, "custom_id": result.custom_id,
                "response": {"status_code": result.status_code,
                             "request_id": result.request_id, "body": result.body},
                "error": None}
    return {"id": result.request_id, "custom_id": result.custom_id, "response": None,
            "error": {"code": result.error_code, "message": result.error_message}}
