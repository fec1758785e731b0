# SPDX-License-Identifier: Apache-2.0
"""Users, organizations, memberships with roles, and API keys."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
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
    # Capacity quotas (potluck.accounts.quotas); null means the server default.
    max_replicas = models.PositiveIntegerField(null=True, blank=True)
    max_gpus = models.PositiveIntegerField(null=True, blank=True)
    max_concurrent_fine_tunes = models.PositiveIntegerField(null=True, blank=True)
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


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


ANSWERED = Q(accepted_at__isnull=False) | Q(declined_at__isnull=False) | Q(
    revoked_at__isnull=False)


class InvitationQuerySet(OrgScopedQuerySet):
    def open(self) -> InvitationQuerySet:
        """Neither answered nor revoked (whether expired or not)."""
        return self.exclude(ANSWERED)

    def pending(self) -> InvitationQuerySet:
        """Open and not expired: the person may still accept it."""
        return self.open().filter(expires_at__gt=timezone.now())

    def with_status(self, status: str) -> InvitationQuerySet:
        """Those whose ``Invitation.status`` is ``status``."""
        return {
            InvitationStatus.PENDING: lambda: self.pending(),
            InvitationStatus.EXPIRED: lambda: self.open().filter(
                expires_at__lte=timezone.now()),
            InvitationStatus.ACCEPTED: lambda: self.filter(accepted_at__isnull=False),
            InvitationStatus.DECLINED: lambda: self.filter(declined_at__isnull=False),
            InvitationStatus.REVOKED: lambda: self.filter(revoked_at__isnull=False,
                                                          accepted_at__isnull=True,
                                                          declined_at__isnull=True),
        }[InvitationStatus(status)]()


class Invitation(models.Model):
    """An organization's invitation of an email address, accepted (or not) by that person.

    Nobody becomes a member, and no account is created, before the person accepts: with
    the account of that email, signed in, or with the secret of the link sent to that
    address (only its SHA-256 is stored). Seats are counted on acceptance.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"], name="one_open_invitation_per_email",
                condition=Q(accepted_at__isnull=True, declined_at__isnull=True,
                            revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization.slug} ({self.status})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return InvitationStatus.ACCEPTED
        if self.declined_at:
            return InvitationStatus.DECLINED
        if self.revoked_at:
            return InvitationStatus.REVOKED
        if self.expires_at <= timezone.now():
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING
