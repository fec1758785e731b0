# SPDX-License-Identifier: Apache-2.0
"""Usage records: one per finished gateway request, keyed by its request id."""

from __future__ import annotations

from django.db import models

from potluck.tenancy import OrgScopedQuerySet


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

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"])]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageDaily(models.Model):
    """Per-day totals (UTC days) of one organization, model and key.

    Only the roll-up writes it, adding exactly the records it has just inserted, in the
    same transaction: a re-delivered entry inserts nothing and so adds nothing.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE,
                                     related_name="+")
    day = models.DateField()
    model = models.CharField(max_length=200)
    api_key_id = models.UUIDField(null=True, blank=True)
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-day", "model"]
        constraints = [
            # NULLS NOT DISTINCT: usage without a key (console sessions) has one row a day too.
            models.UniqueConstraint(fields=["organization", "day", "model", "api_key_id"],
                                    name="usage_daily_one_row_per_group",
                                    nulls_distinct=False),
        ]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
