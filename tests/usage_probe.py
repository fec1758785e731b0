# SPDX-License-Identifier: Apache-2.0
"""The usage-probe plug-in (``tests/plugins/potluck_usage_probe``) for worker processes.

``plugin_env`` gives a subprocess environment that installs it; ``effect_table`` makes
(and drops) the table its consumers write their effects to.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"
EFFECT_TABLE = "usage_probe_effect"


def plugin_env(base: dict[str, str], directory: Path, **probe: str) -> dict[str, str]:
    """``base`` plus the plug-in: ``probe`` keys become ``POTLUCK_PROBE_<KEY>`` variables."""
    path = os.pathsep.join(p for p in (str(PLUGIN_DIR), base.get("PYTHONPATH", "")) if p)
    return {**base, "PYTHONPATH": path, "POTLUCK_PLUGINS": "potluck_usage_probe",
            "POTLUCK_PROBE_DIR": str(directory),
            **{f"POTLUCK_PROBE_{key.upper()}": value for key, value in probe.items()}}


@contextmanager
def effect_table() -> Iterator[None]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {EFFECT_TABLE} (id bigserial PRIMARY KEY, "
                       "consumer text NOT NULL, request_id text NOT NULL, seq bigint NOT NULL, "
                       "pid integer NOT NULL)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {EFFECT_TABLE}")


def effects(consumer: str) -> list[str]:
    """The request ids of the consumer's committed effects, in the order applied."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT request_id FROM {EFFECT_TABLE} WHERE consumer = %s ORDER BY id",
                       [consumer])
        return [row[0] for row in cursor.fetchall()]


def journal(directory: Path, consumer: str) -> list[tuple[int, str]]:
    """Every delivery the consumer saw, committed or not: (pid, request id), in order."""
    path = directory / f"{consumer}.journal"
    if not path.exists():
        return []
    return [(int(pid), request_id) for pid, _, request_id in
            (line.split() for line in path.read_text().splitlines())]
