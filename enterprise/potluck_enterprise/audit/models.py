# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The audit log: hash-chained entries per organization, signed checkpoints, and the
content of requests kept apart so that retention can purge it without breaking a chain.

``AuditEntry`` and ``AuditCheckpoint`` are append-only in the database: a trigger
(migration ``0003``) refuses every UPDATE and DELETE, whoever sends it. Entries keep the
organization as a plain id, not a foreign key, so deleting an organization cannot
cascade into its trail.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

__all__ = ["AuditChain", "AuditCheckpoint", "AuditContent", "AuditEntry", "AuditSigningKey"]


class AuditChain(models.Model):
    """The head of one chain (``org:<uuid>``, or ``installation`` for acts that belong to
    no organization); locked while an entry is appended, so a chain grows one at a time."""

    key = models.CharField(max_length=64, primary_key=True)
    organization_id = models.UUIDField(null=True, blank=True, db_index=True)
    size = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64)


class AuditEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    chain = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    organization_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=16)  # "request" or "admin"
    action = models.CharField(max_length=64)
    actor = models.CharField(max_length=200, blank=True)
    target = models.CharField(max_length=240, blank=True)
    data = models.JSONField(default=dict)
    content_sha256 = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"],
                                               name="audit_entry_seq_unique")]


class AuditContent(models.Model):
    """What a request said and got (as redacted by its profile), kept only where the
    profile retains content, until ``purge_after``; its hash is in the entry."""

    entry = models.OneToOneField(AuditEntry, on_delete=models.DO_NOTHING, primary_key=True,
                                 db_constraint=False, related_name="content")
    body = models.JSONField()
    purge_after = models.DateTimeField(db_index=True)


class AuditCheckpoint(models.Model):
    """A signed statement of a chain's head: ``size`` entries ending in ``head_hash``."""

    id = models.BigAutoField(primary_key=True)
    chain = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)


class AuditSigningKey(models.Model):
    """The installation's own Ed25519 key for checkpoints (private half encrypted at
    rest with ``potluck_enterprise.crypto``)."""

    key_id = models.CharField(max_length=64, primary_key=True)
    public_key_pem = models.TextField()
    private_key_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
