# SPDX-License-Identifier: Apache-2.0
"""Usage consumers: durable readers of committed usage records, in order, each from its cursor.

Billing (Stripe meter events) and credits (a ledger) must see every usage record, once
in effect. They register a ``potluck.extensions.UsageConsumer``; a Celery task
(``potluck.usage.feed_consumers``, every 2 s on the control queue) calls ``feed_all``.

**The usage log.** Every ``UsageRecord`` has a ``seq``, set by a database trigger on
insert (migration ``usage.0003``), whoever the writer is. A consumer's cursor is the
``seq`` of the last record it consumed; it reads ``seq > position ORDER BY seq``.

**Why no record is skipped when roll-ups commit concurrently.** A plain sequence can
commit out of order: transaction A takes seq 10, B takes 11 and commits first; a reader
that consumed 11 and advanced past it would never see 10. So the trigger takes a
transaction-scoped advisory lock (``LOG_LOCK_ID``) before it calls ``nextval``, and the
lock is held until the inserting transaction ends. Claim: whenever a reader's snapshot
shows the record with seq *s*, it also shows every record with seq < *s* that will
ever commit. Proof: let *s'* < *s* belong to another transaction T' and *s* to T. Both
called ``nextval`` while holding the lock, and a transaction holds it until it ends, so
their lock-holding spans do not overlap; since *s'* < *s*, T' held it first, and ended
(committed or rolled back) before T acquired it, so before T committed. PostgreSQL
makes a commit visible before it releases the transaction's locks. So if the snapshot
shows T committed, it shows T' committed too, or T' rolled back (a gap, never filled:
sequences do not reuse values). Hence every snapshot sees a prefix of the log (up to
gaps that stay gaps), and ``seq > position`` never jumps over a record that commits
later. The cost: usage inserts are serialized per transaction. The roll-up inserts up to
500 records per transaction in one statement, so it waits at most for one other
roll-up's batch; readers never take the lock.

**Delivery.** A feed step, in ONE transaction: lock the consumer's cursor row
(``FOR UPDATE SKIP LOCKED``: one runner per consumer at a time, others pass it by),
read the next batch after the cursor, call ``consume(records)`` in a savepoint, advance
the cursor. So:

- A consumer whose effects are in this database, written through Django's default
  connection inside ``consume``, gets them committed with the cursor advance: exactly
  once. A worker killed mid-batch commits neither.
- Effects outside the database (an HTTP call) happen at least once: a worker killed
  after the call and before the commit delivers the same batch again. Such a consumer
  must make its effects idempotent by ``request_id`` (e.g. Stripe's meter event
  ``identifier``).
- A ``consume`` that raises: its savepoint is rolled back, the cursor stays, and the
  failure is counted on the cursor row (attempts, the exception's class and time, never
  the records' content). The same batch is tried again after a back-off that doubles
  per attempt (``USAGE_CONSUMER_RETRY_SECONDS``, up to
  ``USAGE_CONSUMER_RETRY_MAX_SECONDS``). Nothing after it is delivered before it
  succeeds, and no other consumer waits for it: each has its own cursor and transaction,
  and one that hangs holds only its own row lock.
- Records deleted with their organization before a consumer reached them are not
  delivered to it.

**Lag.** ``consumer_lag`` gives, per consumer, the records behind its cursor and the age
in seconds of the oldest of them (``recorded_at``, the database's clock); see
``potluck.usage.metrics`` for the Prometheus gauges and ``potluck doctor``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from potluck import extensions
from potluck.extensions import CommittedUsageRecord, UsageConsumer
from potluck.usage.models import UsageConsumerCursor, UsageRecord

log = logging.getLogger(__name__)

# The advisory lock the insert trigger takes ("usagelog" as a big-endian int64); the
# migration that creates the trigger holds the same number.
LOG_LOCK_ID = 0x75736167656C6F67
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000
# How long one feed keeps giving batches to one consumer before moving to the next.
FEED_BUDGET_S = 2.0
STARTS = ("beginning", "end")

_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(CommittedUsageRecord))


class Outcome(StrEnum):
    """What the last feed step of a consumer did."""

    CONSUMED = "consumed"  # a batch was consumed and the cursor advanced
    CAUGHT_UP = "caught_up"  # nothing after the cursor
    BUSY = "busy"  # another runner holds the cursor
    BACKING_OFF = "backing_off"  # failed lately; not tried before its retry time
    FAILED = "failed"  # consume raised; rolled back, counted, retried later
    ERROR = "error"  # the feed itself failed (e.g. the database went away)


@dataclass
class FeedResult:
    """One consumer's share of a ``feed_all``: records consumed and how it ended."""

    name: str
    consumed: int = 0
    batches: int = 0
    outcome: Outcome = Outcome.CAUGHT_UP
    position: int | None = None  # the cursor afterwards, when this runner held it


@dataclass(frozen=True)
class ConsumerLag:
    """How far one consumer is behind the committed usage log.

    ``records_behind``: committed records after its cursor; ``seconds_behind``: age of the
    oldest of them (0.0 when caught up). ``attempts``: failed tries since it last
    advanced, ``last_error`` the class of the last failure (``module.Class``).
    """

    name: str
    position: int
    records_behind: int
    seconds_behind: float
    consumed: int
    consumed_at: datetime | None
    attempts: int
    last_error: str
    last_error_at: datetime | None
    retry_at: datetime | None

    @property
    def failing(self) -> bool:
        return self.attempts > 0


def feed_all(*, now: datetime | None = None, budget_s: float = FEED_BUDGET_S
             ) -> list[FeedResult]:
    """Feed every registered consumer in turn; one's failure never stops the others.

    ``now`` (tests) fixes the time that retry times are compared with.
    """
    results = []
    for name, consumer in extensions.usage_consumers.items():
        try:
            results.append(feed(consumer, now=now, budget_s=budget_s))
        except Exception:  # e.g. the database went away mid-step: rolled back, retried
            log.exception("feeding usage consumer %s failed", name)
            connection.close_if_unusable_or_obsolete()
            results.append(FeedResult(name, outcome=Outcome.ERROR))
    return results


def feed(consumer: UsageConsumer, *, now: datetime | None = None,
         budget_s: float = FEED_BUDGET_S) -> FeedResult:
    """Give ``consumer`` batches until it is caught up, fails, or ``budget_s`` is spent.

    Must not run inside a transaction (each step commits). Raises what the database
    raises; a ``consume`` that raises is recorded, not re-raised.
    """
    ensure_cursor(consumer)
    deadline = time.monotonic() + budget_s
    result = FeedResult(consumer.name)
    while True:
        result.outcome, count, position = _step(consumer, now or timezone.now())
        if position is not None:
            result.position = position
        if result.outcome != Outcome.CONSUMED:
            return result
        result.consumed += count
        result.batches += 1
        if time.monotonic() >= deadline:
            return result


def ensure_cursor(consumer: UsageConsumer) -> UsageConsumerCursor:
    """The consumer's cursor, made on first use at the start the consumer asks for.

    Raises ``ValueError`` for a ``start`` other than ``"beginning"`` or ``"end"``.
    """
    found = UsageConsumerCursor.objects.filter(name=consumer.name).first()
    if found is not None:
        return found
    start = getattr(consumer, "start", "beginning")
    if start not in STARTS:
        raise ValueError(f"usage consumer {consumer.name}: start must be one of "
                         f"{', '.join(STARTS)}, not {start!r}")
    # "end": by the prefix property (module docstring), every record committed later has
    # a higher seq than the highest one visible now.
    position = 0 if start == "beginning" else (
        UsageRecord.objects.aggregate(top=Max("seq"))["top"] or 0)
    cursor, _ = UsageConsumerCursor.objects.get_or_create(
        name=consumer.name, defaults={"position": position})
    return cursor


def batch_size(consumer: UsageConsumer) -> int:
    size = getattr(consumer, "batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"usage consumer {consumer.name}: batch_size must be a positive "
                         f"integer, not {size!r}")
    return min(size, MAX_BATCH_SIZE)


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row: doubling, capped."""
    first = settings.USAGE_CONSUMER_RETRY_SECONDS
    return min(settings.USAGE_CONSUMER_RETRY_MAX_SECONDS, first * 2 ** min(attempts - 1, 30))


def _step(consumer: UsageConsumer, now: datetime) -> tuple[Outcome, int, int | None]:
    """One batch in one transaction: (outcome, records consumed, cursor position)."""
    size = batch_size(consumer)
    with transaction.atomic(durable=True):
        cursor = (UsageConsumerCursor.objects.select_for_update(skip_locked=True)
                  .filter(name=consumer.name).first())
        if cursor is None:
            return Outcome.BUSY, 0, None
        if cursor.retry_at is not None and cursor.retry_at > now:
            return Outcome.BACKING_OFF, 0, cursor.position
        records = [CommittedUsageRecord(**row) for row in
                   UsageRecord.objects.filter(seq__gt=cursor.position).order_by("seq")
                   .values(*_RECORD_FIELDS)[:size]]
        if not records:
            return Outcome.CAUGHT_UP, 0, cursor.position
        try:
            with transaction.atomic():  # a savepoint: a failure undoes only the consumer
                consumer.consume(records)
        except Exception as exc:
            _record_failure(cursor, exc, now)
            return Outcome.FAILED, 0, cursor.position
        cursor.position = records[-1].seq
        cursor.consumed += len(records)
        cursor.consumed_at = now
        cursor.attempts = 0
        cursor.retry_at = None
        cursor.save(update_fields=["position", "consumed", "consumed_at", "attempts",
                                   "retry_at"])
        return Outcome.CONSUMED, len(records), cursor.position


def _record_failure(cursor: UsageConsumerCursor, exc: Exception, now: datetime) -> None:
    cursor.attempts += 1
    kind = type(exc)
    cursor.last_error = f"{kind.__module__}.{kind.__qualname__}"[:200]
    cursor.last_error_at = now
    delay = retry_delay(cursor.attempts)
    cursor.retry_at = now + timedelta(seconds=delay)
    cursor.save(update_fields=["attempts", "last_error", "last_error_at", "retry_at"])
    log.warning("usage consumer %s failed on the records after seq %d (attempt %d, %s); "
                "retrying from there in %.1f s", cursor.name, cursor.position, cursor.attempts,
                cursor.last_error, delay, exc_info=exc)


_LAG_SQL = f"""
SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)
FROM {UsageRecord._meta.db_table} WHERE seq > %s
"""


def consumer_lag(names: Iterable[str] | None = None) -> list[ConsumerLag]:
    """The lag of the named consumers (default: every registered one), by name.

    A registered consumer that has not run yet is measured from where it will start.
    Counting is exact, so it reads every record behind a cursor: cheap while consumers
    keep up, slower (about a second per few million records) when one is far behind.
    """
    wanted = sorted(set(extensions.usage_consumers.keys() if names is None else names))
    cursors = {c.name: c for c in UsageConsumerCursor.objects.filter(name__in=wanted)}
    found = []
    with connection.cursor() as db:
        for name in wanted:
            cursor = cursors.get(name)
            if cursor is None:
                consumer = extensions.usage_consumers.get(name)
                if consumer is None:
                    continue  # neither registered here nor ever run
                cursor = UsageConsumerCursor(name=name)
                if getattr(consumer, "start", "beginning") == "end":
                    found.append(_lag(cursor, 0, 0.0))
                    continue
            db.execute(_LAG_SQL, [cursor.position])
            behind, seconds = db.fetchone()
            found.append(_lag(cursor, behind, max(0.0, float(seconds))))
    return found


def _lag(cursor: UsageConsumerCursor, behind: int, seconds: float) -> ConsumerLag:
    return ConsumerLag(
        name=cursor.name, position=cursor.position, records_behind=behind,
        seconds_behind=seconds, consumed=cursor.consumed, consumed_at=cursor.consumed_at,
        attempts=cursor.attempts, last_error=cursor.last_error,
        last_error_at=cursor.last_error_at, retry_at=cursor.retry_at)
