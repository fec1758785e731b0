# SPDX-License-Identifier: Apache-2.0
"""Uploaded files (datasets, batch inputs) and the files jobs produce (batch output)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from potluck.ids import new_id
from potluck.tenancy import OrgOwnedModel


def new_file_id() -> str:
    return new_id("file-")


class Purpose(models.TextChoices):
    FINE_TUNE = "fine-tune"
    BATCH = "batch"
    # Written by Potluck, never uploaded:
    BATCH_OUTPUT = "batch_output"
    FINE_TUNE_RESULTS = "fine-tune-results"


UPLOAD_PURPOSES = (Purpose.FINE_TUNE, Purpose.BATCH)


class FileStatus(models.TextChoices):
    UPLOADED = "uploaded"
    PROCESSED = "processed"  # validated for its purpose
    ERROR = "error"


class StoredFile(OrgOwnedModel):
    """A file's metadata; its bytes live in the storage backend under ``storage_key``.

    Jobs refer to files by id (a string, not a foreign key), as OpenAI's do, so that
    deleting a file never rewrites a job's history.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_file_id, editable=False)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    filename = models.CharField(max_length=255)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # JSONL files: how many records (non-blank lines) they hold.
    line_count = models.PositiveIntegerField(default=0)
    # What validation learnt of the content: batch {"requests", "urls", "models"},
    # fine-tune {"examples", "trainable_messages"}.
    summary = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=FileStatus.choices,
                              default=FileStatus.UPLOADED)
    status_details = models.TextField(blank=True)
    storage_key = models.CharField(max_length=512)
    created_by_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey("accounts.User", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "purpose", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.filename})"
