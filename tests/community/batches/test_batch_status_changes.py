# SPDX-License-Identifier: Apache-2.0
"""A batch's status changes only as ``potluck.batches.lifecycle.TRANSITIONS`` allows, and
only lifecycle.py writes it."""

from __future__ import annotations

import ast
from pathlib import Path

from potluck.batches import lifecycle
from potluck.batches.models import TERMINAL, BatchStatus

BATCHES_DIR = Path(lifecycle.__file__).parent


def test_ended_batches_change_no_more_and_every_state_is_stated():
    assert set(lifecycle.TRANSITIONS) == set(BatchStatus.values)
    for status in TERMINAL:
        assert lifecycle.TRANSITIONS[status] == frozenset()
    # Only a cancelling batch ends cancelled, unless no runner ever picked it up.
    assert set(lifecycle._from(BatchStatus.CANCELLED)) == {BatchStatus.CANCELLING,
                                                            BatchStatus.VALIDATING}
    assert lifecycle._from(BatchStatus.COMPLETED) == (BatchStatus.FINALIZING,)


def test_no_other_module_of_batches_writes_a_batch_status():
    """Batches are written with ``update``/``create`` calls; one that sets ``status``
    appears only in lifecycle.py (``ctx.status`` in the dispatcher is a request's)."""
    writers = []
    for path in BATCHES_DIR.rglob("*.py"):
        if path.name == "lifecycle.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("update", "create", "update_or_create")
                    and any(k.arg == "status" for k in node.keywords)):
                writers.append(f"{path.name}:{node.lineno}")
    assert writers == []
