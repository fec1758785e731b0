# SPDX-License-Identifier: Apache-2.0
"""After a phase: drain the usage stream into Postgres and reconcile it with the upstream.

Each phase sends with its own API key, so its usage records are those of that key.
Expected are the requests the upstream actually received (nginx's access log, which
carries the gateway's x-request-id) or, for the Python clients, the exact count sent.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field

CONSUMER = "bench-gateway"


@dataclass
class Reconciliation:
    phase: str
    expected: int  # requests the upstream received (or the client sent)
    expected_from: str
    records: int = 0
    distinct_request_ids: int = 0
    daily_requests: int = 0  # UsageDaily's running total for the key
    statuses: dict[str, int] = field(default_factory=dict)
    missing: int = 0  # expected request ids with no record
    unexpected: int = 0  # records the upstream never saw, not explained as abandoned
    # Records of requests the client dropped (wrk stopping with requests in flight) before
    # the gateway forwarded them: status 499, no replica. Recording them is right (they
    # were sent); the upstream's log cannot show them. At most one per open connection.
    abandoned: int = 0
    max_abandoned: int = 0
    upstream_repeats: int = 0  # request ids the upstream saw more than once (retries)
    ok_records: int = 0  # records of status 200
    ok_completion_tokens: int = 0  # their completion tokens
    tokens_per_ok: int | None = None  # what each answer carries
    stream_left: int = 0
    drain_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        tokens_ok = (self.tokens_per_ok is None
                     or self.ok_completion_tokens == self.tokens_per_ok * self.ok_records)
        return (self.records == self.expected + self.abandoned == self.distinct_request_ids
                == self.daily_requests and self.abandoned <= self.max_abandoned
                and not self.missing and not self.unexpected
                and not self.upstream_repeats and self.stream_left == 0 and tokens_ok)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def drain(settle_s: float = 0.6, timeout_s: float = 60.0) -> tuple[int, float]:
    """roll_up() until the stream is empty and stays empty for ``settle_s`` (the gateway
    appends an event just after its response, so the last ones may still be on the way).
    Returns (entries left, seconds spent)."""
    from potluck.redis_client import get_redis
    from potluck.usage.rollup import roll_up
    from potluck.usage.stream import STREAM_KEY

    conn = get_redis()
    started = time.monotonic()
    quiet_since: float | None = None
    while time.monotonic() - started < timeout_s:
        result = roll_up(CONSUMER, batch=1000, budget_s=10.0)
        left = conn.xlen(STREAM_KEY)
        if result.read or left or not result.drained:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle_s:
            return int(left), time.monotonic() - started
        time.sleep(0.1)
    return int(conn.xlen(STREAM_KEY)), time.monotonic() - started


def reconcile(phase: str, key_id: str, *, expected_ids: list[str] | None = None,
              expected_count: int | None = None,
              tokens_per_ok: int | None = None,
              ignore_key_id: str | None = None,
              max_abandoned: int = 0) -> Reconciliation:
    """``ignore_key_id``: a key whose requests (warm-ups) may sit among
    ``expected_ids`` and are not part of the phase."""
    from django.db.models import Count, Sum

    from potluck.usage.models import UsageDaily, UsageRecord

    left, seconds = drain()
    rows = UsageRecord.objects.filter(api_key_id=key_id)
    if expected_ids is not None and ignore_key_id is not None:
        ignored = set(UsageRecord.objects.filter(api_key_id=ignore_key_id)
                      .values_list("request_id", flat=True))
        expected_ids = [rid for rid in expected_ids if rid not in ignored]
    if expected_ids is not None:
        expected, source = len(expected_ids), "upstream access log"
    else:
        expected, source = int(expected_count or 0), "client count"
    agg = rows.aggregate(n=Count("request_id"), distinct=Count("request_id", distinct=True))
    ok = rows.filter(status=200).aggregate(n=Count("request_id"),
                                           tokens=Sum("completion_tokens"))
    daily = UsageDaily.objects.filter(api_key_id=key_id).aggregate(n=Sum("requests"))
    check = Reconciliation(
        phase=phase, expected=expected, expected_from=source, records=agg["n"],
        distinct_request_ids=agg["distinct"], daily_requests=int(daily["n"] or 0),
        statuses={str(k): v for k, v in sorted(Counter(
            rows.values_list("status", flat=True)).items())},
        ok_records=ok["n"], ok_completion_tokens=int(ok["tokens"] or 0),
        tokens_per_ok=tokens_per_ok,
        stream_left=left, drain_seconds=round(seconds, 2), max_abandoned=max_abandoned)
    if expected_ids is not None:
        recorded = set(rows.values_list("request_id", flat=True))
        wanted = set(expected_ids)
        check.missing = len(wanted - recorded)
        check.upstream_repeats = len(expected_ids) - len(wanted)
        unseen = recorded - wanted
        abandoned = set(rows.filter(request_id__in=unseen, status=499, replica_id__isnull=True)
                        .values_list("request_id", flat=True))
        check.abandoned = len(abandoned)
        check.unexpected = len(unseen - abandoned)
    return check
