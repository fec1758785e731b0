# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Read queries of the audit log, always one organization's chain."""

from __future__ import annotations

from typing import Any

from potluck.accounts.models import Organization
from potluck_enterprise.audit import services
from potluck_enterprise.audit.models import AuditChain, AuditCheckpoint, AuditEntry


def entries(org: Organization, *, limit: int = 50, before_seq: int | None = None,
            kind: str | None = None) -> dict[str, Any]:
    """The newest entries of the organization's chain (newest first), a page at a time."""
    key = services.chain_key(org.id)
    rows = AuditEntry.objects.filter(chain=key)
    if before_seq:
        rows = rows.filter(seq__lt=before_seq)
    if kind:
        rows = rows.filter(kind=kind)
    page = list(rows.order_by("-seq")[:limit])
    head = AuditChain.objects.filter(key=key).first()
    return {"chain": key, "size": head.size if head else 0,
            "head_hash": head.head_hash if head else "",
            "data": [services.entry_fields(e) for e in page],
            "next_before_seq": page[-1].seq if len(page) == limit else None}


def checkpoints(org: Organization) -> dict[str, Any]:
    key = services.chain_key(org.id)
    _, kid, public = services.signing_key()
    rows = AuditCheckpoint.objects.filter(chain=key).order_by("-size")[:100]
    return {"chain": key, "key_id": kid, "public_key": public.decode(),
            "data": [services.checkpoint_record(r) for r in rows]}
