# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Spend so far: periods, the ledger's counters, and the *pending* spend in Redis.

A budget's balance is ``ledger + pending``:

- **ledger**: ``SpendCounter`` rows, which the pricing consumer adds to in the same
  transaction as the priced lines (exact, a few seconds behind the requests);
- **pending**: what gateway workers estimated for requests that finished but are not
  priced yet. Each worker adds its requests to a Redis hash per scope and period
  (field = request id, value = ``nano:epoch``; a total beside it), at most a second after
  they finish; the pricing consumer removes each record's fields once its lines have
  committed. Adding and removing are Lua scripts, idempotent by request id: a field is
  counted in the total exactly while it is in the hash.

A reader reads pending first and the ledger second, so a record priced in between is
counted twice (briefly too much, never too little). A record whose fields were removed
before a late worker added them stays pending until ``sweep_pending`` (every minute)
removes fields of records already consumed by pricing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection

from potluck.redis_client import get_redis
from potluck_enterprise.billing import money
from potluck_enterprise.billing.models import Period, Scope, SpendCounter
from potluck_enterprise.billing.pricebook import zone

log = logging.getLogger(__name__)

PENDING_PREFIX = "potluck:billing:pending:"
# Fields not removed after this long are dropped by the sweep even if their record was
# never seen (a request whose usage was lost with its organization).
PENDING_MAX_AGE_SECONDS = 24 * 3600

_ADD = """
local added = 0
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  local field = ARGV[3 * n - 2]
  local value = ARGV[3 * n - 1]
  local ttl = tonumber(ARGV[3 * n])
  if redis.call('HSETNX', KEYS[i], field, value) == 1 then
    redis.call('INCRBY', KEYS[i + 1], tonumber(string.match(value, '^(%d+)')))
    added = added + 1
  end
  redis.call('EXPIRE', KEYS[i], ttl)
  redis.call('EXPIRE', KEYS[i + 1], ttl)
end
return added
"""
_REMOVE = """
local removed = 0
for i = 1, #KEYS, 2 do
  local field = ARGV[(i + 1) / 2]
  local value = redis.call('HGET', KEYS[i], field)
  if value then
    redis.call('HDEL', KEYS[i], field)
    redis.call('DECRBY', KEYS[i + 1], tonumber(string.match(value, '^(%d+)')))
    removed = removed + 1
  end
end
return removed
"""


def billing_zone():  # noqa: ANN201 - a ZoneInfo
    return zone(settings.BILLING_TIME_ZONE)


def period_start(period: str, moment: datetime) -> date:
    """The first day of the day or month that holds ``moment`` in ``BILLING_TIME_ZONE``."""
    local = moment.astimezone(billing_zone()).date()
    return local if period == Period.DAY else local.replace(day=1)


def period_end(period: str, start: date) -> datetime:
    """When the period that began on ``start`` ends (the budget's reset), aware."""
    if period == Period.DAY:
        nxt = start + timedelta(days=1)
    else:
        nxt = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(nxt, time(0), tzinfo=billing_zone())


@dataclass(frozen=True)
class ScopeKey:
    """A scope (an organization, or one of its keys) in one period."""

    scope: str
    organization_id: str
    api_key_id: str | None
    period: str
    start: date

    @property
    def redis_key(self) -> str:
        who = self.api_key_id if self.scope == Scope.KEY else self.organization_id
        return f"{PENDING_PREFIX}{self.scope}:{who}:{self.period}:{self.start.isoformat()}"

    @property
    def total_key(self) -> str:
        return self.redis_key + ":total"


def scope_keys(organization_id: str, api_key_id: str | None, moment: datetime
               ) -> list[ScopeKey]:
    """The four scope-periods a request's spend counts in (two without a key)."""
    found = []
    for period in (Period.DAY, Period.MONTH):
        start = period_start(period, moment)
        found.append(ScopeKey(Scope.ORGANIZATION, organization_id, None, period, start))
        if api_key_id:
            found.append(ScopeKey(Scope.KEY, organization_id, api_key_id, period, start))
    return found


# -- the ledger's counters ------------------------------------------------------------
_COUNTER_SQL = f"""
INSERT INTO {SpendCounter._meta.db_table} AS c
    (organization_id, scope, api_key_id, period, period_start, amount)
SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::uuid[], %s::varchar[], %s::date[],
                     %s::numeric[])
ON CONFLICT (organization_id, scope, api_key_id, period, period_start) DO UPDATE
    SET amount = c.amount + EXCLUDED.amount
"""


def add_to_counters(amounts: dict[ScopeKey, Decimal]) -> None:
    """Add to the counters (inside the pricing transaction). Rows are taken in one order,
    so concurrent writers never deadlock."""
    if not amounts:
        return
    columns: list[list[object]] = [[], [], [], [], [], []]
    for key in sorted(amounts, key=lambda k: (k.organization_id, k.scope, k.api_key_id or "",
                                              k.period, k.start)):
        for column, value in zip(columns, (key.organization_id, key.scope, key.api_key_id,
                                           key.period, key.start, amounts[key]), strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_COUNTER_SQL, columns)


def ledger(keys: Iterable[ScopeKey]) -> dict[ScopeKey, Decimal]:
    """The counters of ``keys`` (absent: 0)."""
    wanted = list(keys)
    if not wanted:
        return {}
    from django.db.models import Q

    query = Q()
    for k in wanted:
        query |= Q(organization_id=k.organization_id, scope=k.scope, api_key_id=k.api_key_id,
                   period=k.period, period_start=k.start)
    found = {ScopeKey(r.scope, str(r.organization_id),
                      str(r.api_key_id) if r.api_key_id else None, r.period, r.period_start):
             r.amount for r in SpendCounter.objects.filter(query)}
    return {k: found.get(k, Decimal(0)) for k in wanted}


# -- pending spend in Redis -----------------------------------------------------------
@dataclass(frozen=True)
class PendingEntry:
    """A finished request's estimated cost in one scope-period, to be added to Redis."""

    key: ScopeKey
    request_id: str
    nano: int
    at: float  # epoch seconds


def _ttl(key: ScopeKey) -> int:
    end = period_end(key.period, key.start)
    return int((end - datetime.now(end.tzinfo)).total_seconds()) + 2 * 86400


def add_pending(entries: Sequence[PendingEntry], conn=None) -> int:  # noqa: ANN001
    """Add entries (idempotent by request id); returns how many were new. Raises the
    Redis client's errors."""
    if not entries:
        return 0
    conn = conn or get_redis()
    keys: list[str] = []
    args: list[object] = []
    for e in entries:
        keys += [e.key.redis_key, e.key.total_key]
        args += [e.request_id, f"{e.nano}:{int(e.at)}", max(60, _ttl(e.key))]
    return int(conn.eval(_ADD, len(keys), *keys, *args))


def remove_pending(items: Sequence[tuple[ScopeKey, str]], conn=None) -> int:  # noqa: ANN001
    """Remove (scope-period, request id) fields; idempotent. Raises Redis errors."""
    if not items:
        return 0
    conn = conn or get_redis()
    removed = 0
    for i in range(0, len(items), 1000):
        chunk = items[i:i + 1000]
        keys: list[str] = []
        for key, _ in chunk:
            keys += [key.redis_key, key.total_key]
        removed += int(conn.eval(_REMOVE, len(keys), *keys, *[rid for _, rid in chunk]))
    return removed


def pending_nano(keys: Sequence[ScopeKey], conn=None) -> dict[ScopeKey, int]:  # noqa: ANN001
    """The pending totals of ``keys`` in billionths (absent: 0). Raises Redis errors."""
    if not keys:
        return {}
    conn = conn or get_redis()
    values = conn.mget([k.total_key for k in keys])
    return {k: max(0, int(v)) if v is not None else 0 for k, v in zip(keys, values,
                                                                      strict=True)}


def sweep_pending(consumed_up_to: int | None, *, now: float | None = None) -> int:
    """Remove pending fields of requests whose usage record the pricing consumer has
    consumed (``seq <= consumed_up_to``), and fields older than a day; returns how many."""
    import time as _time

    from potluck.usage.models import UsageRecord

    conn = get_redis()
    now = now if now is not None else _time.time()
    removed = 0
    for raw in conn.scan_iter(match=PENDING_PREFIX + "*", count=500):
        name = raw.decode() if isinstance(raw, bytes) else raw
        if name.endswith(":total"):
            continue
        fields = {(f.decode() if isinstance(f, bytes) else f):
                  (v.decode() if isinstance(v, bytes) else v)
                  for f, v in conn.hgetall(name).items()}
        if not fields:
            continue
        done = set()
        if consumed_up_to is not None:
            done = set(UsageRecord.objects.filter(request_id__in=list(fields),
                                                  seq__lte=consumed_up_to)
                       .values_list("request_id", flat=True))
        stale = {f for f, v in fields.items()
                 if now - int(v.split(":", 1)[1] or 0) > PENDING_MAX_AGE_SECONDS}
        gone = sorted(done | stale)
        if gone:
            keys: list[str] = []
            for _ in gone:
                keys += [name, name + ":total"]
            removed += int(conn.eval(_REMOVE, len(keys), *keys, *gone))
    return removed


def to_decimal_nano(value: int) -> Decimal:
    return money.from_nano(value)
