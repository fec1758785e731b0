# SPDX-License-Identifier: Apache-2.0
"""Recording usage: events become records once each, and the daily totals grow with them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction

from potluck.accounts.models import Organization
from potluck.usage.models import UsageDaily, UsageRecord
from potluck.usage.stream import UsageEvent

_RECORD_COLUMNS = ("request_id", "organization_id", "api_key_id", "model", "endpoint", "status",
                   "stream", "prompt_tokens", "completion_tokens", "latency_ms", "ttft_ms",
                   "replica_id", "created_at", "cached_tokens")
_ARRAY_TYPES = ("varchar", "uuid", "uuid", "varchar", "varchar", "smallint", "boolean", "integer",
                "integer", "float8", "float8", "uuid", "timestamptz", "integer")

# One statement: insert what is new, and add exactly the inserted rows (RETURNING) to the
# daily totals. ORDER BY keeps concurrent roll-ups taking row locks in one order (no
# deadlock between two of them).
_RECORD_SQL = f"""
WITH new AS (
    INSERT INTO {UsageRecord._meta.db_table} ({", ".join(_RECORD_COLUMNS)})
    SELECT * FROM unnest({", ".join(f"%s::{t}[]" for t in _ARRAY_TYPES)})
    ON CONFLICT (request_id) DO NOTHING
    RETURNING request_id, organization_id, api_key_id, model, status, prompt_tokens,
              completion_tokens, created_at
), totals AS (
    INSERT INTO {UsageDaily._meta.db_table} AS daily
        (organization_id, day, model, api_key_id, requests, errors, prompt_tokens,
         completion_tokens)
    SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, model, api_key_id,
           count(*), count(*) FILTER (WHERE status >= 400), sum(prompt_tokens),
           sum(completion_tokens)
    FROM new
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (organization_id, day, model, api_key_id) DO UPDATE SET
        requests = daily.requests + EXCLUDED.requests,
        errors = daily.errors + EXCLUDED.errors,
        prompt_tokens = daily.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = daily.completion_tokens + EXCLUDED.completion_tokens
)
SELECT request_id FROM new
"""


@dataclass
class Recorded:
    """What one ``record_events`` call did with its events."""

    inserted: list[UsageEvent] = field(default_factory=list)
    # Already recorded: a re-delivered entry, or the same request appended twice.
    duplicates: list[UsageEvent] = field(default_factory=list)
    # Of an organization that no longer exists (deleted): never insertable.
    orphans: list[UsageEvent] = field(default_factory=list)


def record_events(events: Sequence[UsageEvent]) -> Recorded:
    """Insert each event's record unless its request id is already recorded, in ONE transaction.

    Durable: it must commit here, because the caller acknowledges the stream entries
    right after; inside an outer transaction that could still roll back, it would lose
    them.
    """
    result = Recorded()
    unique: dict[str, UsageEvent] = {}
    for event in sorted(events, key=lambda e: e.request_id):
        if event.request_id in unique:
            result.duplicates.append(event)
        else:
            unique[event.request_id] = event
    if not unique:
        return result
    with transaction.atomic(durable=True):
        known = _existing_organizations({e.organization_id for e in unique.values()})
        insertable = [e for e in unique.values() if e.organization_id in known]
        result.orphans = [e for e in unique.values() if e.organization_id not in known]
        new_ids = _insert(insertable) if insertable else set()
    for event in insertable:
        (result.inserted if event.request_id in new_ids else result.duplicates).append(event)
    return result


def _existing_organizations(ids: set[str]) -> set[str]:
    found = Organization.objects.filter(pk__in=ids).values_list("pk", flat=True)
    return {str(pk) for pk in found}


def _insert(events: Sequence[UsageEvent]) -> set[str]:
    columns: list[list[object]] = [[] for _ in _RECORD_COLUMNS]
    for event in events:
        row = (event.request_id, uuid.UUID(event.organization_id), _as_uuid(event.api_key_id),
               event.model, event.endpoint, event.status, event.stream, event.prompt_tokens,
               event.completion_tokens, event.latency_ms, event.ttft_ms,
               _as_uuid(event.replica_id), event.created_time, event.cached_tokens)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL, columns)
        return {row[0] for row in cursor.fetchall()}


def _as_uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)
