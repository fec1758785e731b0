# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""An auditor's offline check of an export (``potluck audit verify``) passes on the log as
written and catches each kind of tampering: an entry altered, one removed, two swapped,
the log truncated since a checkpoint held apart, a chain rewritten consistently after a
checkpoint, a forged checkpoint, and a row edited in the database by its owner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.db import connection

from potluck_enterprise.audit import chain as fmt
from potluck_enterprise.audit import services
from potluck_enterprise.audit.verify import verify


@pytest.fixture
def chain(db, org):
    for i in range(6):
        services.append(organization_id=org.id, kind="request", action="inference.request",
                        actor="key:k", target="demo:finance",
                        data={"status": 200, "detections": {"request:CARD:redact": i}})
    key = services.chain_key(org.id)
    exported = [json.loads(line) for line in services.export_lines(key)]
    return key, exported


def entries(records):
    return [r for r in records if r["type"] == "entry"]


def without_checkpoints(records):
    return [r for r in records if r["type"] != "checkpoint"]


def test_the_log_as_written_verifies(chain):
    _, records = chain
    report = verify(records)
    assert report.ok, report.problems
    assert report.entries == 6 and report.checkpoints_checked == 1


def test_an_altered_entry_is_caught(chain):
    _, records = chain
    entries(records)[2]["data"]["status"] = 500
    report = verify(records)
    assert not report.ok and any("seq 3" in p and "altered" in p for p in report.problems)


def test_a_removed_entry_is_caught(chain):
    _, records = chain
    records.remove(entries(records)[3])
    report = verify(records)
    assert not report.ok and any("removed" in p for p in report.problems)


def test_reordered_entries_are_caught(chain):
    _, records = chain
    a, b = (records.index(e) for e in entries(records)[1:3])
    records[a], records[b] = records[b], records[a]
    report = verify(records)
    assert not report.ok and any("reordered" in p for p in report.problems)


def test_truncation_since_a_checkpoint_is_caught(chain):
    _, records = chain
    held = [r for r in records if r["type"] == "checkpoint"]
    cut = without_checkpoints(records)[:-2]  # the last two entries gone, and the checkpoint
    assert verify(cut).ok  # on its own the shorter log is consistent...
    report = verify(cut, held)  # ...but not with the checkpoint the auditor kept
    assert not report.ok and any("truncated" in p for p in report.problems)


def test_a_consistent_rewrite_after_a_checkpoint_is_caught(chain):
    _, records = chain
    held = [r for r in records if r["type"] == "checkpoint"]
    rewritten = without_checkpoints(records)
    previous = fmt.GENESIS
    for entry in entries(rewritten):  # alter one entry and recompute every hash after it
        if entry["seq"] == 2:
            entry["data"]["status"] = 403
        entry["prev_hash"] = previous
        entry["entry_hash"] = previous = fmt.entry_hash(entry)
    assert verify(rewritten).ok
    report = verify(rewritten, held)
    assert not report.ok and any("rewritten" in p for p in report.problems)


def test_a_checkpoint_signed_by_another_key_is_refused(chain):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _, records = chain
    forged = dict(next(r for r in records if r["type"] == "checkpoint"))
    forged["signature"] = fmt.sign_checkpoint(forged, Ed25519PrivateKey.generate())
    report = verify(without_checkpoints(records), [forged])
    assert not report.ok and any("signature" in p for p in report.problems)


def test_a_row_edited_in_the_database_fails_the_cli_verify(chain, org, tmp_path, live_env):
    key, records = chain
    held = tmp_path / "checkpoint.json"
    held.write_text(json.dumps(next(r for r in records if r["type"] == "checkpoint")))
    public = tmp_path / "key.pem"
    public.write_bytes(services.signing_key()[2])

    def cli_verify() -> subprocess.CompletedProcess[str]:
        export = tmp_path / "export.jsonl"
        export.write_text("".join(line + "\n" for line in services.export_lines(key)))
        return subprocess.run([sys.executable, "-m", "potluck", "audit", "verify",
                               str(export), "--checkpoint", str(held), "--public-key",
                               str(public)], capture_output=True, text=True, timeout=120,
                              env=live_env)

    ok = cli_verify()
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"verified {key}: 6 entries")
    with connection.cursor() as cursor:  # the table's owner bypasses the trigger
        cursor.execute("ALTER TABLE potluck_enterprise_auditentry DISABLE TRIGGER USER")
        cursor.execute("UPDATE potluck_enterprise_auditentry SET target = 'other' "
                       "WHERE seq = 4 AND chain = %s", [key])
        cursor.execute("ALTER TABLE potluck_enterprise_auditentry ENABLE TRIGGER USER")
    failed = cli_verify()
    assert failed.returncode == 1
    assert "verification FAILED" in failed.stderr and "seq 4" in failed.stderr
