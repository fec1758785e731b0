# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The installed licence: its signed text, the fields shown to people, and its history.

A licence belongs to the installation, not to one organization, so this model is not
org-scoped. Installing a licence deactivates the previous one and keeps it as history;
at most one row is active (a partial unique constraint says so).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone


class InstalledLicence(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The armored, signed text: the gate verifies it again on every re-evaluation, so an
    # edited row grants nothing. The fields below are copies for display and queries.
    raw = models.TextField()
    license_id = models.CharField(max_length=100)
    format_version = models.PositiveSmallIntegerField()
    licensee = models.CharField(max_length=200)
    organization = models.CharField(max_length=200, blank=True)
    features = ArrayField(models.CharField(max_length=50), default=list)
    seats = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    grace_days = models.PositiveIntegerField()
    installed_at = models.DateTimeField(default=timezone.now)
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    active = models.BooleanField(default=True)
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-installed_at"]
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True),
                                    name="one_active_licence"),
        ]

    def __str__(self) -> str:
        return f"{self.license_id} for {self.licensee}"


class Installation(models.Model):
    """This installation's identity: one row (``pk`` 1), made on first use and never
    changed. A licence bound to an installation names this id (see ``installation``).
    Also where the last online renewal attempt is remembered (the console shows it)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    installation_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    renewal_checked_at = models.DateTimeField(null=True, blank=True)
    renewal_outcome = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="one_installation")]

    def __str__(self) -> str:
        return self.installation_id
