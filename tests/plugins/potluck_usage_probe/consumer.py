# SPDX-License-Identifier: Apache-2.0
"""A usage consumer with one effect outside the database and one in it, per record.

Outside: a line ``<pid> <seq> <request_id>`` appended to ``$POTLUCK_PROBE_DIR/<name>.journal``
before the record is applied (every delivery, even one whose transaction never commits).
Inside: a row in the ``usage_probe_effect`` table, through Django's connection, so in the
feed's transaction. The table has no unique key: an effect applied twice shows as two rows.

``POTLUCK_PROBE_STALL_AT=<request_id>``: after applying that record, write
``<name>.stalled`` and sleep forever (the test then kills the process mid-batch).
``POTLUCK_PROBE_FAIL=<name,...>``: those consumers raise ``RuntimeError`` on every batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from django.db import connection

from potluck.extensions import CommittedUsageRecord

EFFECT_TABLE = "usage_probe_effect"


class ProbeConsumer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.batch_size = int(os.environ.get("POTLUCK_PROBE_BATCH", "10"))
        self.directory = Path(os.environ.get("POTLUCK_PROBE_DIR", "."))

    def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
        if self.name in os.environ.get("POTLUCK_PROBE_FAIL", "").split(","):
            raise RuntimeError("the probe is told to fail")
        stall_at = os.environ.get("POTLUCK_PROBE_STALL_AT")
        for record in records:
            with (self.directory / f"{self.name}.journal").open("a") as journal:
                journal.write(f"{os.getpid()} {record.seq} {record.request_id}\n")
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {EFFECT_TABLE} (consumer, request_id, seq, pid) "
                               "VALUES (%s, %s, %s, %s)",
                               [self.name, record.request_id, record.seq, os.getpid()])
            if record.request_id == stall_at:
                (self.directory / f"{self.name}.stalled").touch()
                while True:
                    time.sleep(1)
