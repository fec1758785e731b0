# SPDX-License-Identifier: Apache-2.0
"""Usage records: one per finished gateway request, keyed by its request id."""

from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    """Written by the roll-up task from the Redis stream; ``request_id`` makes it idempotent."""

    request_id = models.CharField(max_length=64, primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE,
                                     related_name="+")
    # Kept when a key is deleted: usage is history.
    api_key_id = models.UUIDField(null=True, blank=True, db_index=True)
    model = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=40)
    status = models.PositiveSmallIntegerField()
    stream = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField()
    ttft_ms = models.FloatField(null=True, blank=True)
    replica_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"])]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
