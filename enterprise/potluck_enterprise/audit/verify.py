# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Offline verification of an exported audit chain (``potluck audit verify``).

Needs nothing of Potluck's (no database, no settings): an auditor runs it on the export
file and, ideally, a checkpoint they received earlier and kept apart. The export is JSON
lines: a ``header`` (format, chain, the installation's public key), then ``entry`` lines
in order, then the ``checkpoint`` lines of that chain.

What it catches (each has a test): an entry altered (its hash no longer matches), an
entry removed or entries reordered (``seq`` not consecutive, or ``prev_hash`` not the
previous entry's hash), and the log truncated since a checkpoint (fewer entries than the
checkpoint's ``size``, or a different hash at that position). A chain rewritten
consistently after a checkpoint was taken is caught by that checkpoint; without any
checkpoint, only internal consistency can be checked, and the report says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from potluck_enterprise.audit import chain as fmt


@dataclass
class Report:
    ok: bool = True
    entries: int = 0
    chain: str = ""
    checkpoints_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < 20:
            self.problems.append(problem)


def read_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(item, dict) or "type" not in item:
            raise ValueError(f"line {number} is not an audit export record")
        out.append(item)
    return out


def verify(records: list[dict[str, Any]], extra_checkpoints: list[dict[str, Any]] = (),
           public_key_pem: bytes | None = None) -> Report:
    """Check an export's records (and checkpoints held apart). ``public_key_pem``: the key
    the auditor trusts; without it, the export's own header key is used (noted)."""
    report = Report()
    header = next((r for r in records if r["type"] == "header"), None)
    if header is None or header.get("format") != fmt.FORMAT:
        report.fail(f"no {fmt.FORMAT} header")
        return report
    report.chain = header.get("chain", "")
    if public_key_pem is None:
        public_key_pem = str(header.get("public_key", "")).encode()
        report.notes.append("checkpoint signatures checked against the key in the export "
                            "header (pass --public-key to pin the key you trust)")
    hashes: dict[int, str] = {}
    previous = fmt.GENESIS
    expected_seq = 1
    for entry in (r for r in records if r["type"] == "entry"):
        report.entries += 1
        seq = entry.get("seq")
        if entry.get("chain") != report.chain:
            report.fail(f"entry seq {seq} belongs to chain {entry.get('chain')!r}")
        if seq != expected_seq:
            report.fail(f"entry seq {seq} where seq {expected_seq} was expected "
                        "(an entry removed, or entries reordered)")
        if entry.get("prev_hash") != previous:
            report.fail(f"entry seq {seq}: prev_hash does not match the entry before it")
        try:
            computed = fmt.entry_hash(entry)
        except KeyError as exc:
            report.fail(f"entry seq {seq} lacks {exc}")
            computed = ""
        if computed != entry.get("entry_hash"):
            report.fail(f"entry seq {seq}: its content does not match its hash (altered)")
        if isinstance(seq, int):
            hashes[seq] = entry.get("entry_hash", "")
            expected_seq = seq + 1
        previous = entry.get("entry_hash", "")
    checkpoints = [r for r in records if r["type"] == "checkpoint"] + list(extra_checkpoints)
    last = max(hashes) if hashes else 0
    for checkpoint in checkpoints:
        size = checkpoint.get("size")
        if checkpoint.get("chain") != report.chain:
            report.fail(f"a checkpoint is for chain {checkpoint.get('chain')!r}")
            continue
        if not fmt.checkpoint_signature_ok(checkpoint, public_key_pem):
            report.fail(f"the checkpoint of size {size} has no valid signature")
            continue
        report.checkpoints_checked += 1
        if not isinstance(size, int) or size > last:
            report.fail(f"a checkpoint says the chain had {size} entries; the export has "
                        f"{last} (truncated)")
        elif size > 0 and hashes.get(size) != checkpoint.get("head_hash"):
            report.fail(f"entry seq {size} differs from the checkpoint's head (rewritten "
                        "since the checkpoint)")
    if not checkpoints:
        report.notes.append("no checkpoint: only internal consistency was checked "
                            "(truncation at the end cannot be seen without one)")
    return report
