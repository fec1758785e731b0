# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The database itself refuses to change or remove audit entries and checkpoints (ORM and
raw SQL alike); content is stored apart and purged after its retention without breaking
the chain; each organization has its own chain, numbered from 1."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from potluck_enterprise.audit import services
from potluck_enterprise.audit.models import AuditCheckpoint, AuditContent, AuditEntry
from potluck_enterprise.audit.verify import verify


def records(key: str) -> list[dict]:
    import json

    return [json.loads(line) for line in services.export_lines(key)]


def test_updates_and_deletes_are_refused_by_the_database(db, org):
    entry = services.append(organization_id=org.id, kind="admin", action="api_key.created",
                            target="key:pot_x")
    services.checkpoint(services.chain_key(org.id))
    for statement in (
            lambda: AuditEntry.objects.filter(pk=entry.pk).update(action="nothing"),
            lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
            lambda: AuditCheckpoint.objects.all().delete(),
            lambda: connection.cursor().execute(
                "UPDATE potluck_enterprise_auditentry SET data = '{}'::jsonb"),
            lambda: connection.cursor().execute(
                "DELETE FROM potluck_enterprise_auditcheckpoint")):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()
    assert AuditEntry.objects.get(pk=entry.pk).action == "api_key.created"


def test_chains_are_per_organization_and_purged_content_keeps_them_verifiable(
        db, org, other_org):
    now = timezone.now()
    for i in range(3):
        services.append(organization_id=org.id, kind="request", action="inference.request",
                        data={"n": i}, content={"prompt": [f"hello {i}"], "answer": "hi"},
                        retention_days=1, now=now)
    services.append(organization_id=other_org.id, kind="admin", action="member.added")
    mine = AuditEntry.objects.filter(organization_id=org.id).order_by("seq")
    assert [e.seq for e in mine] == [1, 2, 3]
    assert AuditEntry.objects.get(organization_id=other_org.id).seq == 1
    assert mine[1].prev_hash == mine[0].entry_hash
    assert AuditContent.objects.count() == 3

    assert services.purge_content(now + timedelta(days=2)) == 3
    assert AuditContent.objects.count() == 0 and mine.count() == 3
    report = verify(records(services.chain_key(org.id)))
    assert report.ok, report.problems
    assert report.entries == 3 and report.checkpoints_checked == 1
