# SPDX-License-Identifier: Apache-2.0
"""Usage reports, read from the usage records of one organization."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Aggregate, Count, F, FloatField, Q, Sum
from django.db.models.functions import TruncDate, TruncHour

from potluck.accounts.models import ApiKey, Organization
from potluck.usage.models import UsageRecord

GROUPS = ("day", "hour", "model", "key")
PERCENTILES = {"latency_p50_ms": 0.5, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}
METRICS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "errors",
           *PERCENTILES)


class PercentileCont(Aggregate):
    """Postgres ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)``: interpolated percentile."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError("a percentile is a fraction from 0 to 1")
        super().__init__(expression, fraction=repr(float(fraction)))


@dataclass(frozen=True)
class UsageQuery:
    start: date  # first day, UTC, inclusive
    end: date  # last day, UTC, inclusive
    group_by: Sequence[str] = ("day",)
    model: str | None = None
    api_key_id: uuid.UUID | None = None
    since: datetime | None = None  # a finer start within ``start`` (e.g. the last hour)


def usage_report(organization: Organization, query: UsageQuery) -> list[dict[str, Any]]:
    """One row per group: request and token counts, errors and latency percentiles."""
    records = UsageRecord.objects.for_org(organization).filter(
        created_at__gte=datetime.combine(query.start, time.min, tzinfo=UTC),
        created_at__lt=datetime.combine(query.end + timedelta(days=1), time.min, tzinfo=UTC),
    )
    if query.since is not None:
        records = records.filter(created_at__gte=query.since)
    if query.model is not None:
        records = records.filter(model=query.model)
    if query.api_key_id is not None:
        records = records.filter(api_key_id=query.api_key_id)
    groups = list(query.group_by)
    expressions = {"day": TruncDate("created_at", tzinfo=UTC),
                   "hour": TruncHour("created_at", tzinfo=UTC), "key": F("api_key_id")}
    rows = list(
        records.order_by()
        .values(*[g for g in groups if g not in expressions],  # "model" is a column already
                **{g: expressions[g] for g in groups if g in expressions})
        .annotate(
            requests=Count("*"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            errors=Count("request_id", filter=Q(status__gte=400)),
            **{name: PercentileCont("latency_ms", fraction)
               for name, fraction in PERCENTILES.items()},
        )
        .order_by(*groups)
    )
    names = _key_names(organization, rows) if "key" in groups else {}
    for row in rows:
        row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
        for name in PERCENTILES:
            row[name] = round(row[name], 3)
        for name in ("day", "hour"):
            if name in row:
                row[name] = row[name].isoformat()
        if "key" in groups:
            key = row["key"]
            row["key"] = str(key) if key else None
            row["key_name"] = names.get(key)
    return rows


def _key_names(organization: Organization, rows: list[dict[str, Any]]) -> dict[uuid.UUID, str]:
    ids = {row["key"] for row in rows if row["key"]}
    keys = ApiKey.objects.for_org(organization).filter(pk__in=ids).values_list("pk", "name")
    return dict(keys)
