# SPDX-License-Identifier: Apache-2.0
"""Users, organizations, memberships with roles, and API keys."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from potluck.tenancy import OrgScopedQuerySet


class User(AbstractUser):
    email = models.EmailField(unique=True)


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Gateway limits for the whole organization; null means the server default.
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Capability(models.TextChoices):
    """What a caller may do; roles and key scopes both grant capabilities."""

    READ = "read"
    WRITE = "write"
    INFERENCE = "inference"
    ADMIN = "admin"
    OWNER = "owner"


ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Capability.READ}),
    Role.MEMBER: frozenset({Capability.READ, Capability.WRITE, Capability.INFERENCE}),
    Role.ADMIN: frozenset(
        {Capability.READ, Capability.WRITE, Capability.INFERENCE, Capability.ADMIN}
    ),
    Role.OWNER: frozenset(
        {Capability.READ, Capability.WRITE, Capability.INFERENCE, Capability.ADMIN,
         Capability.OWNER}
    ),
}

# Scopes an API key may carry: every capability but ownership, which stays with people.
KEY_SCOPES = (Capability.INFERENCE, Capability.READ, Capability.WRITE, Capability.ADMIN)
DEFAULT_KEY_SCOPES = [Capability.INFERENCE.value, Capability.READ.value, Capability.WRITE.value]


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user.email} in {self.organization.slug} ({self.role})"


class ApiKey(models.Model):
    """A secret shown once; only its SHA-256 and a lookup prefix are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16), default=list)
    # Gateway limits for this key alone; null means the server default.
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The key that created this one, when a key did (it may revoke what it made).
    created_by_key = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"pot_{self.lookup}"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
