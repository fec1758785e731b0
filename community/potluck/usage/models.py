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
    # Of prompt_tokens, those served from the replica's prefix cache (OpenAI's
    # prompt_tokens_details.cached_tokens).
    cached_tokens = models.PositiveIntegerField(default=0, db_default=0)
    latency_ms = models.FloatField()
    ttft_ms = models.FloatField(null=True, blank=True)
    replica_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # The usage log's order, set by the database (a trigger, see potluck.usage.consumers):
    # whatever a writer passes is replaced. Records commit in ``seq`` order.
    seq = models.BigIntegerField(unique=True, editable=False, blank=True)
    # When the record was inserted (the database's clock, set by the same trigger).
    recorded_at = models.DateTimeField(editable=False, blank=True)

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


class UsageConsumerCursor(models.Model):
    """Where one usage consumer stands in the usage log (see ``potluck.usage.consumers``).

    ``position`` is the ``seq`` of the last record the consumer has consumed. Failures are
    counted and described by their exception class only, never by the records' content.
    """

    name = models.CharField(max_length=100, primary_key=True)
    position = models.BigIntegerField(default=0)
    consumed = models.PositiveBigIntegerField(default=0)  # records consumed, in all
    consumed_at = models.DateTimeField(null=True, blank=True)  # when it last advanced
    attempts = models.PositiveIntegerField(default=0)  # failed tries since it last advanced
    last_error = models.CharField(max_length=200, blank=True)  # e.g. "builtins.RuntimeError"
    last_error_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)  # not tried again before this
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.position}"
