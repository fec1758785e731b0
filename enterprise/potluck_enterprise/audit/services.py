# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Writing the audit log: append, checkpoint, purge content, export.

``append`` adds one entry to its organization's chain under a row lock on the chain's
head (``AuditChain``), inside the caller's transaction if there is one, so an
administrative act and its entry commit together. Nothing written here contains a
secret, a raw key or a value a detector matched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck_enterprise import crypto
from potluck_enterprise.audit import chain as fmt
from potluck_enterprise.audit.models import (
    AuditChain,
    AuditCheckpoint,
    AuditContent,
    AuditEntry,
    AuditSigningKey,
)

log = logging.getLogger(__name__)
INSTALLATION = "installation"


def chain_key(organization_id: Any) -> str:
    """``org:<uuid>`` for an organization, ``installation`` for None."""
    return f"org:{organization_id}" if organization_id else INSTALLATION


def _head(key: str, organization_id: Any) -> AuditChain:
    """The chain's head row, locked for this transaction (created on first use)."""
    head = AuditChain.objects.select_for_update().filter(key=key).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            AuditChain.objects.create(key=key, organization_id=organization_id or None,
                                      size=0, head_hash=fmt.GENESIS)
    except IntegrityError:
        pass  # another process made it first
    return AuditChain.objects.select_for_update().get(key=key)


@transaction.atomic
def append(*, organization_id: Any, kind: str, action: str, actor: str = "",
           target: str = "", data: dict[str, Any] | None = None,
           content: dict[str, Any] | None = None, retention_days: int | None = None,
           now: datetime | None = None) -> AuditEntry:
    """Append one entry; ``content`` (kept apart, purged after ``retention_days``) is
    hashed into the entry. Returns the entry."""
    key = chain_key(organization_id)
    head = _head(key, organization_id)
    content_hash = fmt.hashlib_sha256(fmt.canonical(content)) if content is not None else ""
    fields = {"chain": key, "seq": head.size + 1,
              "created_at": fmt.timestamp(now or timezone.now()), "kind": kind,
              "action": action, "actor": actor[:200], "target": target[:240],
              "data": json.loads(json.dumps(data or {})), "content_sha256": content_hash,
              "prev_hash": head.head_hash}
    digest = fmt.entry_hash(fields)
    entry = AuditEntry.objects.create(
        chain=key, seq=fields["seq"], organization_id=organization_id or None,
        created_at=datetime.fromisoformat(fields["created_at"].replace("Z", "+00:00")),
        kind=kind, action=action, actor=fields["actor"], target=fields["target"],
        data=fields["data"], content_sha256=content_hash, prev_hash=head.head_hash,
        entry_hash=digest)
    head.size, head.head_hash = fields["seq"], digest
    head.save(update_fields=["size", "head_hash"])
    if content is not None:
        AuditContent.objects.create(entry=entry, body=content, purge_after=(
            now or timezone.now()) + timedelta(days=retention_days or 2190))
    return entry


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the export and the hash see it."""
    return {"chain": entry.chain, "seq": entry.seq,
            "created_at": fmt.timestamp(entry.created_at), "kind": entry.kind,
            "action": entry.action, "actor": entry.actor, "target": entry.target,
            "data": entry.data, "content_sha256": entry.content_sha256,
            "prev_hash": entry.prev_hash, "entry_hash": entry.entry_hash}


# -- the installation's signing key ------------------------------------------------------
def signing_key() -> tuple[Ed25519PrivateKey, str, bytes]:
    """(private key, key id, public PEM): the installation's checkpoint key, made on first
    use and kept encrypted at rest."""
    row = AuditSigningKey.objects.order_by("created_at").first()
    if row is None:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with transaction.atomic():
            AuditSigningKey.objects.get_or_create(
                key_id=fmt.key_id(public), defaults={
                    "public_key_pem": public.decode(),
                    "private_key_encrypted": crypto.encrypt(pem)})
        row = AuditSigningKey.objects.order_by("created_at").first()
        assert row is not None
    private = serialization.load_pem_private_key(
        crypto.decrypt(row.private_key_encrypted).encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return private, row.key_id, row.public_key_pem.encode()


@transaction.atomic
def checkpoint(key: str, now: datetime | None = None) -> AuditCheckpoint | None:
    """Sign the chain's current head (None for a chain with no entry, or one whose head
    is already checkpointed)."""
    head = AuditChain.objects.select_for_update().filter(key=key).first()
    if head is None or head.size == 0:
        return None
    latest = AuditCheckpoint.objects.filter(chain=key).order_by("-size").first()
    if latest is not None and latest.size == head.size:
        return None
    private, kid, _ = signing_key()
    fields = {"chain": key, "size": head.size, "head_hash": head.head_hash,
              "created_at": fmt.timestamp(now or timezone.now()), "key_id": kid}
    return AuditCheckpoint.objects.create(
        chain=key, size=head.size, head_hash=head.head_hash,
        created_at=datetime.fromisoformat(fields["created_at"].replace("Z", "+00:00")),
        key_id=kid, signature=fmt.sign_checkpoint(fields, private))


def checkpoint_all() -> int:
    """Checkpoint every chain that grew; returns how many were signed."""
    return sum(1 for key in AuditChain.objects.values_list("key", flat=True)
               if checkpoint(key) is not None)


def checkpoint_record(row: AuditCheckpoint) -> dict[str, Any]:
    return {"type": "checkpoint", "chain": row.chain, "size": row.size,
            "head_hash": row.head_hash, "created_at": fmt.timestamp(row.created_at),
            "key_id": row.key_id, "signature": row.signature}


def purge_content(now: datetime | None = None) -> int:
    """Delete content past its retention; entries (and their hashes) stay. Returns rows."""
    deleted, _ = AuditContent.objects.filter(purge_after__lte=now or timezone.now()).delete()
    if deleted:
        log.info("audit: purged the content of %d entries past retention", deleted)
    return deleted


def export_lines(key: str) -> Iterator[str]:
    """The chain as JSON lines (header, entries in order, its checkpoints), after a fresh
    checkpoint of its head."""
    checkpoint(key)
    _, kid, public = signing_key()
    yield json.dumps({"type": "header", "format": fmt.FORMAT, "chain": key,
                      "key_id": kid, "public_key": public.decode(),
                      "exported_at": fmt.timestamp(timezone.now())})
    for entry in AuditEntry.objects.filter(chain=key).order_by("seq").iterator(2000):
        yield json.dumps({"type": "entry", **entry_fields(entry)}, ensure_ascii=False)
    for row in AuditCheckpoint.objects.filter(chain=key).order_by("size"):
        yield json.dumps(checkpoint_record(row))
