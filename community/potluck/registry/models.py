# SPDX-License-Identifier: Apache-2.0
"""Registered models: base models and the LoRA adapters that belong to them."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.tenancy import OrgScopedQuerySet

if TYPE_CHECKING:
    from potluck.accounts.models import Organization


class Source(models.TextChoices):
    LOCAL = "local", "local directory"
    HUGGINGFACE = "huggingface", "Hugging Face repository"


class Kind(models.TextChoices):
    BASE = "base"
    ADAPTER = "adapter"


class RegisteredModelQuerySet(OrgScopedQuerySet):
    def for_org(self, organization: Organization) -> Self:
        """An organization sees its own models and the public ones."""
        return self.filter(Q(organization=organization) | Q(organization__isnull=True))


# What a model serves, by endpoint capability (potluck.protocol.endpoints.Endpoint).
CAPABILITIES = ("chat", "completions", "embeddings")
GENERATIVE = ["chat", "completions"]


def default_capabilities() -> list[str]:
    return list(GENERATIVE)


class RegisteredModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    # Null means public: served to every organization, managed by the operator.
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE,
        related_name="models",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BASE)
    base = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="adapters"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    path = models.CharField(max_length=1024, blank=True)
    repo_id = models.CharField(max_length=200, blank=True)
    revision = models.CharField(max_length=100, blank=True)
    architecture = models.CharField(max_length=100, blank=True)
    context_length = models.PositiveIntegerField(null=True, blank=True)
    license = models.CharField(max_length=100, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    adapter_rank = models.PositiveIntegerField(null=True, blank=True)
    # The inference endpoints it can answer (a subset of CAPABILITIES); found when it is
    # registered. An adapter serves what its base serves.
    capabilities = ArrayField(models.CharField(max_length=16), default=default_capabilities)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="model_name_unique_in_org",
                condition=Q(organization__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["name"], name="public_model_name_unique",
                condition=Q(organization__isnull=True),
            ),
            models.CheckConstraint(
                condition=(Q(kind=Kind.BASE, base__isnull=True)
                           | Q(kind=Kind.ADAPTER, base__isnull=False)),
                name="adapter_has_base",
            ),
            models.CheckConstraint(
                condition=(Q(source=Source.LOCAL) & ~Q(path=""))
                | (Q(source=Source.HUGGINGFACE) & ~Q(repo_id="")),
                name="model_source_located",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.organization_id is None
