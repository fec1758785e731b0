# SPDX-License-Identifier: Apache-2.0
"""Batches (OpenAI's Batch API) and the result of each of their lines.

A batch moves ``validating → in_progress → finalizing → completed``; it may end
``failed`` (the input file is unusable), ``expired`` (the completion window passed) or,
through ``cancelling``, ``cancelled``. One ``BatchResult`` row per finished line makes a
run resumable: a line that has a row is never sent again.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.ids import new_id
from potluck.tenancy import OrgOwnedModel


def new_batch_id() -> str:
    return new_id("batch_")


class BatchStatus(models.TextChoices):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


# Statuses in which a runner still has work to do.
UNFINISHED = (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING,
              BatchStatus.CANCELLING)
TERMINAL = (BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED,
            BatchStatus.CANCELLED)


class Batch(OrgOwnedModel):
    """One batch; files are referred to by id, as OpenAI's are (no foreign keys)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_batch_id,
                          editable=False)
    # The creating key, kept when the key is deleted: its usage is attributed to it.
    api_key_id = models.UUIDField(null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    input_file_id = models.CharField(max_length=40)
    endpoint = models.CharField(max_length=40)
    completion_window = models.CharField(max_length=8, default="24h")
    status = models.CharField(max_length=16, choices=BatchStatus.choices,
                              default=BatchStatus.VALIDATING)
    output_file_id = models.CharField(max_length=40, null=True, blank=True)
    error_file_id = models.CharField(max_length=40, null=True, blank=True)
    # File-level problems: [{code, message, param, line}] (OpenAI's errors.data).
    errors = models.JSONField(null=True, blank=True)
    # The one model all lines name, if they name one (OpenAI's ``model``).
    model = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    # Seconds the output and error files live after they are written (null: forever).
    output_expires_after = models.PositiveIntegerField(null=True, blank=True)

    request_total = models.PositiveIntegerField(default=0)
    request_completed = models.PositiveIntegerField(default=0)
    request_failed = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    in_progress_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    finalizing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelling_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    # The runner's lease: who works on the batch and until when (renewed every few
    # seconds). An empty owner with a future expiry is a dispatch waiting for a worker.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Runs in a row that ended in an unexpected error (a run that ends normally resets
    # it); at POTLUCK_BATCH_MAX_FAILED_RUNS the batch fails instead of being resumed.
    failed_runs = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["status", "lease_expires_at"], name="batch_unfinished_lease",
                         condition=Q(status__in=["validating", "in_progress", "finalizing",
                                                 "cancelling"])),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class BatchResult(models.Model):
    """The outcome of one line of a batch's input file, recorded once it is final.

    ``status_code`` is the replica's HTTP status, or null when the line never got an
    answer (unknown model, no reachable replica, the batch expired); then ``error_code``
    and ``error_message`` say why.
    """

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="results")
    line = models.PositiveIntegerField()  # 1-based line number in the input file
    custom_id = models.TextField()
    request_id = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0.0)
    replica_id = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "line"], name="one_result_per_batch_line"),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.line} ({self.status_code or self.error_code})"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
