# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Compliance data: an organization's profiles, and its variants with their model cards."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.tenancy import OrgScopedQuerySet

__all__ = ["ComplianceProfile", "Variant", "VariantState"]


class ComplianceProfile(models.Model):
    """An organization's profile: a spec (``profiles.validate_spec``) a compliance officer
    reads and edits; ``version`` goes up on each edit. Built-in profiles are templates
    (``compliance/builtin/``) copied into an organization when it first uses them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT,
                                     related_name="+")
    key = models.SlugField(max_length=64)
    based_on = models.CharField(max_length=64, blank=True)
    spec = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey("accounts.User", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"],
                                               name="compliance_profile_key_unique")]

    def __str__(self) -> str:
        return self.key


class VariantState(models.TextChoices):
    FINE_TUNING = "fine_tuning"
    EVALUATING = "evaluating"
    PUBLISHED = "published"
    FAILED = "failed"  # the fine-tune failed, or the gate did: never served under its name
    RETIRED = "retired"  # replaced by a newer published build of the same name


class Variant(models.Model):
    """A compliance variant: a base model (or its fine-tune) + a profile, served under
    ``name`` (e.g. ``potluck-demo:finance``) by the base's replicas once published.

    While it is evaluated it answers only under ``candidate_name``, for its organization.
    ``card`` is its model card: suite version, scores and thresholds, base, adapter,
    dates, and the failing cases of a failed gate.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT,
                                     related_name="+")
    name = models.CharField(max_length=200)
    candidate_name = models.CharField(max_length=240, unique=True)
    profile = models.ForeignKey(ComplianceProfile, on_delete=models.PROTECT,
                                related_name="variants")
    base = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                             related_name="+")
    model = models.ForeignKey("registry.RegisteredModel", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+",
                              help_text="What serves it: the fine-tuned adapter, or the base.")
    fine_tune_job = models.ForeignKey("finetune.FineTuningJob", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=VariantState.choices,
                             default=VariantState.FINE_TUNING)
    card = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [models.UniqueConstraint(
            fields=["organization", "name"], condition=Q(state="published"),
            name="one_published_variant_per_name")]

    def __str__(self) -> str:
        return self.name
