# SPDX-License-Identifier: Apache-2.0
"""The roll-up: drains the usage stream into Postgres, each request exactly once.

Why it neither loses nor doubles:

- An entry is acknowledged (XACK + XDEL, atomically) only after the transaction that
  records it has committed. A consumer that dies before that leaves the entry pending;
  the next roll-up takes it over (XAUTOCLAIM) once it has been idle ``min_idle_ms``. A
  consumer that lives on (its roll-up failed: the database was down) retries its own
  pending entries first thing in its next roll-up, without waiting for them to go idle.
- Records are inserted with ``ON CONFLICT (request_id) DO NOTHING``, and the daily
  totals grow only by the rows that insert returned. A consumer that dies after the
  commit but before the acknowledgement gets its entries re-delivered, and they insert
  and add nothing.
- An entry that can never be recorded (malformed, unknown organization, refused by the
  database) is copied to the dead-letter stream with its reason, then acknowledged.

What happens to a record after its commit (billing, credits) is the business of the
usage consumers (``potluck.usage.consumers``), which read Postgres, not this stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.db import DataError, IntegrityError

from potluck.redis_client import get_redis
from potluck.usage import services
from potluck.usage.stream import (
    DEAD_LETTER_KEY,
    GROUP,
    STREAM_KEY,
    MalformedEvent,
    UsageEvent,
    decode,
)

log = logging.getLogger(__name__)

MIN_IDLE_MS = 60_000  # a consumer silent this long on an entry is taken for dead
BUDGET_S = 5.0
FORGET_CONSUMERS_IDLE_MS = 15 * 60_000

Entry = tuple[str, dict[bytes, bytes]]

# Atomically: a consumer is forgotten only while it holds no pending entry, so a
# consumer that reads between the check and the delete cannot lose what it read.
_FORGET_IDLE_CONSUMERS = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local info = {}
    for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
    if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
        removed = removed + 1
    end
end
return removed
"""


@dataclass
class RollupResult:
    read: int = 0  # entries taken from the stream, new or reclaimed
    reclaimed: int = 0  # of which taken over from a consumer that went silent
    inserted: int = 0
    duplicates: int = 0  # already recorded: re-delivered, or appended twice
    dead_lettered: int = 0
    vanished: int = 0  # pending entries deleted from the stream by someone else
    batches: int = 0
    drained: bool = False  # the stream held nothing more for this group
    seconds: float = 0.0


@dataclass(frozen=True)
class DeadLetter:
    entry_id: str
    fields: dict[bytes, bytes]
    reason: str


def roll_up(consumer: str, batch: int = 500, *, min_idle_ms: int = MIN_IDLE_MS,
            budget_s: float = BUDGET_S, conn: redis.Redis | None = None) -> RollupResult:
    """Record stream entries until the stream is drained or ``budget_s`` is spent."""
    conn = conn or get_redis()
    started = time.monotonic()
    deadline = started + budget_s
    result = RollupResult()
    ensure_group(conn)
    _process(conn, consumer, _read_own_pending(conn, consumer, batch), result)
    cursor = "0-0"
    while time.monotonic() < deadline:
        cursor, entries, vanished = _claim_stale(conn, consumer, min_idle_ms, batch, cursor)
        result.vanished += vanished
        result.reclaimed += len(entries)
        _process(conn, consumer, entries, result)
        if cursor == "0-0":
            break
    while time.monotonic() < deadline:
        entries = _read_new(conn, consumer, batch)
        if not entries:
            result.drained = True
            break
        _process(conn, consumer, entries, result)
    forget_idle_consumers(conn, FORGET_CONSUMERS_IDLE_MS, keep=consumer)
    result.seconds = time.monotonic() - started
    return result


def ensure_group(conn: redis.Redis) -> None:
    try:
        conn.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def forget_idle_consumers(conn: redis.Redis, idle_ms: int, *, keep: str) -> int:
    """Remove consumers (gone worker processes) that hold nothing and were idle ``idle_ms``."""
    return int(conn.eval(_FORGET_IDLE_CONSUMERS, 1, STREAM_KEY, GROUP, idle_ms, keep))


def _claim_stale(conn: redis.Redis, consumer: str, min_idle_ms: int, count: int,
                 cursor: str) -> tuple[str, list[Entry], int]:
    """Take over entries pending longer than ``min_idle_ms``: (next cursor, entries, vanished).

    Vanished entries were deleted from the stream while pending (someone trimmed it):
    Redis 7 drops them from the pending list itself; Redis 6.2 returns them without an id.
    """
    reply = conn.xautoclaim(STREAM_KEY, GROUP, consumer, min_idle_ms, start_id=cursor,
                            count=count)
    entries = [(_text(entry_id), fields) for entry_id, fields in reply[1] if entry_id]
    vanished = len(reply[1]) - len(entries) + (len(reply[2]) if len(reply) > 2 else 0)
    if vanished:
        log.error("%d pending usage entries were deleted from %s before being recorded; "
                  "never trim the usage stream", vanished, STREAM_KEY)
    return _text(reply[0]), entries, vanished


def _read_own_pending(conn: redis.Redis, consumer: str, count: int) -> list[Entry]:
    """Entries delivered to this consumer earlier and not acknowledged (its roll-up
    failed before the commit). Recording them again is harmless: see the module."""
    # An entry trimmed from the stream meanwhile comes back without fields: XAUTOCLAIM
    # reports and clears those (see ``_claim_stale``).
    return [(entry_id, fields) for entry_id, fields in
            _read_new(conn, consumer, count, start="0") if fields]


def _read_new(conn: redis.Redis, consumer: str, count: int, start: str = ">") -> list[Entry]:
    reply = conn.xreadgroup(GROUP, consumer, {STREAM_KEY: start}, count=count)
    if not reply:
        return []
    # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}.
    found = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
    return [(_text(entry_id), fields) for entry_id, fields in found]


def _process(conn: redis.Redis, consumer: str, entries: list[Entry],
             result: RollupResult) -> None:
    if not entries:
        return
    result.batches += 1
    result.read += len(entries)
    events: list[UsageEvent] = []
    dead: list[DeadLetter] = []
    fields_of: dict[str, tuple[str, dict[bytes, bytes]]] = {}
    for entry_id, fields in entries:
        try:
            event = decode(fields)
        except MalformedEvent as exc:
            dead.append(DeadLetter(entry_id, fields, f"malformed: {exc}"))
            continue
        events.append(event)
        fields_of.setdefault(event.request_id, (entry_id, fields))
    recorded, refused = record_batch(events)
    for event in recorded.orphans:
        entry_id, fields = fields_of[event.request_id]
        dead.append(DeadLetter(entry_id, fields,
                               f"unknown organization {event.organization_id}"))
    for event, reason in refused:
        entry_id, fields = fields_of[event.request_id]
        dead.append(DeadLetter(entry_id, fields, reason))
    # Committed: only now may the entries leave the stream.
    _acknowledge(conn, consumer, [entry_id for entry_id, _ in entries], dead)
    result.inserted += len(recorded.inserted)
    result.duplicates += len(recorded.duplicates)
    result.dead_lettered += len(dead)


def record_batch(events: Sequence[UsageEvent]
                 ) -> tuple[services.Recorded, list[tuple[UsageEvent, str]]]:
    """Record a batch; if the database refuses it, record one by one to isolate the culprit.

    A connection or server failure is not a refusal: it propagates, the entries stay
    pending, and a later roll-up retries them.
    """
    try:
        return services.record_events(events), []
    except (DataError, IntegrityError):
        log.warning("the database refused a batch of %d usage events; isolating", len(events))
    merged = services.Recorded()
    refused: list[tuple[UsageEvent, str]] = []
    for event in events:
        try:
            one = services.record_events([event])
        except (DataError, IntegrityError) as exc:
            refused.append((event, f"refused by the database: {type(exc).__name__}: {exc}"))
            continue
        merged.inserted += one.inserted
        merged.duplicates += one.duplicates
        merged.orphans += one.orphans
    return merged, refused


def _acknowledge(conn: redis.Redis, consumer: str, entry_ids: list[str],
                 dead: list[DeadLetter]) -> None:
    """Dead letters, XACK and XDEL in one MULTI: all of them happen, or none does."""
    pipe = conn.pipeline(transaction=True)
    for letter in dead:
        pipe.xadd(DEAD_LETTER_KEY, {
            **letter.fields,
            "dead.reason": letter.reason[:1000],
            "dead.entry_id": letter.entry_id,
            "dead.consumer": consumer,
            "dead.at": f"{time.time():.3f}",
        })
    pipe.xack(STREAM_KEY, GROUP, *entry_ids)
    pipe.xdel(STREAM_KEY, *entry_ids)
    pipe.execute()
    for letter in dead:
        log.warning("usage entry %s dead-lettered: %s", letter.entry_id, letter.reason[:200])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
