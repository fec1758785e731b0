# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The Stripe outbox: meter events written with the priced lines, sent by a Celery task.

**What goes in.** Stripe meters sum whole numbers here (minor units), while lines are
exact fractions of a cent. For each organization linked to Stripe, ``enqueue`` keeps
a running total of its lines in minor units (``carry_exact``, exact) and of the whole
units already queued (``carry_sent``); a line whose running total crosses a whole unit
queues an event of ``floor(total) - carry_sent`` units, identified by that line's id.
So the meter's total always equals the floor of the ledger's total in minor units: equal
"to the minor unit", never more. ``enqueue`` runs in the pricing transaction: exactly
once. What prepaid payers (``payers``: contribution credits) paid of a line is left out
of the running total, so only the remainder is billed.

**Sending** (``send_due``, the task ``billing.send_meter_events`` every 2 s):

- per organization, under a PostgreSQL session advisory lock on it (at most one call in
  flight per customer and meter, whatever number of senders; a killed sender's lock goes
  with its connection);
- up to 100 due events per call (Stripe's meter event stream limit), paced to
  ``BILLING_STRIPE_CALLS_PER_SECOND`` over all senders (a Redis counter per second);
- marked sent only after a 2xx; a failure sets the events' next attempt after a
  back-off doubling per failure (``BILLING_STRIPE_RETRY_SECONDS`` up to
  ``..._MAX_SECONDS``; after a call that got no answer, at least the call timeout, so a
  call Stripe may still be working on does not overlap the next); a sender killed
  after Stripe's 2xx resends the same identifiers, which Stripe drops as duplicates
  (24 h window);
- events whose usage is older than Stripe's 35-day limit (less a safety hour) are never
  sent: they turn ``expired`` and an ``OperatorAlert`` names them.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from potluck.redis_client import get_redis
from potluck_enterprise.billing import money
from potluck_enterprise.billing.models import (
    AlertKind,
    BillingAccount,
    MeterEvent,
    OperatorAlert,
    OutboxState,
    PricedLine,
)
from potluck_enterprise.billing.stripe_adapter import (
    MAX_EVENTS_PER_CALL,
    MeterEventIn,
    StripeBilling,
    StripeRejected,
    StripeUnavailable,
)

log = logging.getLogger(__name__)

STRIPE_MAX_AGE = timedelta(days=35) - timedelta(hours=1)
_LOCK_NAMESPACE = 0x706F746C  # "potl": the advisory lock's first key
_RATE_KEY = "potluck:billing:stripe-calls:"


def enqueue(lines: Iterable[PricedLine], due: dict[str, Decimal] | None = None
            ) -> list[MeterEvent]:
    """Queue the meter events that ``lines`` (in order) make for linked organizations.
    ``due`` (line id -> amount) is what is left to bill of each line after prepaid
    payers (``payers.settle``); None: each line's whole ``amount``."""
    by_org: dict[str, list[PricedLine]] = {}
    for line in lines:
        by_org.setdefault(str(line.organization_id), []).append(line)
    if not by_org:
        return []
    accounts = {str(a.organization_id): a for a in BillingAccount.objects.select_for_update()
                .filter(organization_id__in=list(by_org)).order_by("organization_id")}
    exponent = money.minor_unit_exponent()
    events = []
    with money.exact():
        for org, account in accounts.items():
            for line in by_org[org]:
                owed = line.amount if due is None else due[line.id]
                if not owed:
                    continue
                account.carry_exact += owed.scaleb(exponent)
                whole = int(account.carry_exact.to_integral_value(rounding=ROUND_FLOOR))
                if whole > account.carry_sent:
                    events.append(MeterEvent(identifier=line.id, organization_id=org,
                                             value=whole - account.carry_sent,
                                             timestamp=line.usage_at))
                    account.carry_sent = whole
            account.save(update_fields=["carry_exact", "carry_sent", "updated_at"])
    MeterEvent.objects.bulk_create(events)
    return events


# -- sending --------------------------------------------------------------------------
@dataclass
class SendResult:
    """What one ``send_due`` did, in counts of events and calls."""

    sent: int = 0
    calls: int = 0
    failed_calls: int = 0
    expired: int = 0
    busy: int = 0  # organizations another sender held
    errors: list[str] = field(default_factory=list)


def retry_delay(attempts: int) -> float:
    first = settings.BILLING_STRIPE_RETRY_SECONDS
    return min(settings.BILLING_STRIPE_RETRY_MAX_SECONDS, first * 2 ** min(attempts - 1, 30))


def expire_old(now: datetime) -> int:
    """Turn due events older than Stripe accepts into ``expired`` with an alert."""
    cutoff = now - STRIPE_MAX_AGE
    with transaction.atomic():
        old = list(MeterEvent.objects.select_for_update(skip_locked=True)
                   .filter(state=OutboxState.PENDING, timestamp__lt=cutoff))
        if not old:
            return 0
        MeterEvent.objects.filter(pk__in=[e.pk for e in old]).update(state=OutboxState.EXPIRED)
        by_org: dict[str, list[MeterEvent]] = {}
        for e in old:
            by_org.setdefault(str(e.organization_id), []).append(e)
        for org, events in by_org.items():
            units = sum(e.value for e in events)
            OperatorAlert.objects.create(
                kind=AlertKind.METER_EVENT_TOO_OLD, organization_id=org,
                message=f"{len(events)} meter event(s) worth {units} minor units are older "
                        "than Stripe's 35-day limit and were not sent; invoice them by hand",
                data={"identifiers": [e.identifier for e in events][:1000], "units": units})
        log.warning("billing: %d meter events older than 35 days not sent (alerts made)",
                    len(old))
    return len(old)


def _pace() -> None:
    """Wait until this call fits ``BILLING_STRIPE_CALLS_PER_SECOND`` over all senders."""
    limit = settings.BILLING_STRIPE_CALLS_PER_SECOND
    if limit <= 0:
        return
    conn = get_redis()
    while True:
        second = int(time.time())
        key = f"{_RATE_KEY}{second}"
        pipe = conn.pipeline()
        pipe.incr(key)
        pipe.expire(key, 5)
        count, _ = pipe.execute()
        if count <= limit:
            return
        time.sleep(max(0.01, second + 1 - time.time()))


def _try_lock(organization_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)",
                       [_LOCK_NAMESPACE, _org_lock_key(organization_id)])
        return bool(cursor.fetchone()[0])


def _unlock(organization_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)",
                       [_LOCK_NAMESPACE, _org_lock_key(organization_id)])


def _org_lock_key(organization_id: str) -> int:
    return zlib.crc32(organization_id.encode()) - 2**31


def send_due(adapter: StripeBilling | None = None, *, now: datetime | None = None,
             budget_s: float = 20.0) -> SendResult:
    """Send every due event, organization by organization (module docstring). Must not
    run inside a transaction. ``now`` (tests) fixes the clock for ages and back-offs."""
    result = SendResult()
    result.expired = expire_old(now or timezone.now())
    orgs = list(MeterEvent.objects.filter(state=OutboxState.PENDING,
                                          next_attempt_at__lte=now or timezone.now())
                .order_by().values_list("organization_id", flat=True).distinct())
    if not orgs:
        return result
    adapter = adapter or StripeBilling.from_settings()
    deadline = time.monotonic() + budget_s
    for org in orgs:
        if time.monotonic() > deadline:
            break
        org = str(org)
        if not _try_lock(org):
            result.busy += 1
            continue
        try:
            _send_org(adapter, org, now, result, deadline)
        finally:
            _unlock(org)
    return result


def _customer(adapter: StripeBilling, organization_id: str) -> str:
    """The organization's Stripe customer, created on first use (idempotently)."""
    account = BillingAccount.objects.select_related("organization").get(
        organization_id=organization_id)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = adapter.create_customer(organization_id, account.organization.name)
    BillingAccount.objects.filter(pk=organization_id, stripe_customer_id="").update(
        stripe_customer_id=customer)
    if settings.BILLING_STRIPE_PRICE_ID:
        sub, status = adapter.subscribe(organization_id, customer,
                                        settings.BILLING_STRIPE_PRICE_ID)
        BillingAccount.objects.filter(pk=organization_id).update(
            subscription_id=sub, subscription_status=status)
    return customer


def _send_org(adapter: StripeBilling, organization_id: str, now: datetime | None,
              result: SendResult, deadline: float) -> None:
    while time.monotonic() <= deadline:
        moment = now or timezone.now()
        batch = list(MeterEvent.objects.filter(
            organization_id=organization_id, state=OutboxState.PENDING,
            next_attempt_at__lte=moment, timestamp__gte=moment - STRIPE_MAX_AGE)
            .order_by("timestamp", "identifier")[:MAX_EVENTS_PER_CALL])
        if not batch:
            return
        try:
            customer = _customer(adapter, organization_id)
            _pace()
            result.calls += 1
            adapter.send_meter_events([MeterEventIn(e.identifier, customer, e.value,
                                                    e.timestamp) for e in batch])
        except (StripeUnavailable, StripeRejected) as exc:
            result.failed_calls += 1
            result.errors.append(str(exc))
            _failed(organization_id, batch, exc, now or timezone.now())
            return
        MeterEvent.objects.filter(pk__in=[e.pk for e in batch],
                                  state=OutboxState.PENDING).update(
            state=OutboxState.SENT, sent_at=timezone.now())
        result.sent += len(batch)


def _failed(organization_id: str, batch: list[MeterEvent], exc: Exception, now: datetime
            ) -> None:
    """Back off the whole customer (not only this batch: its next call must not overlap
    one Stripe may still be working on), counting the attempt on the batch."""
    attempts = max(e.attempts for e in batch) + 1
    delay = retry_delay(attempts)
    if getattr(exc, "unanswered", False):
        # Stripe may still be working on the call we gave up on: wait at least as long
        # as we waited for it, so that the next call for this customer does not overlap.
        delay = max(delay, float(settings.BILLING_STRIPE_TIMEOUT_SECONDS))
    retry_at = now + timedelta(seconds=delay)
    MeterEvent.objects.filter(pk__in=[e.pk for e in batch]).update(
        attempts=attempts, last_error=str(exc)[:200], next_attempt_at=retry_at)
    MeterEvent.objects.filter(organization_id=organization_id, state=OutboxState.PENDING,
                              next_attempt_at__lt=retry_at).update(next_attempt_at=retry_at)
    log.warning("billing: %d meter events not sent (%s); retrying in %.0f s", len(batch),
                exc, delay)


def outbox_totals(organization_id: str) -> dict[str, int]:
    """Minor units per outbox state for an organization (the console and tests)."""
    rows = MeterEvent.objects.filter(organization_id=organization_id).values("state") \
        .annotate(units=Sum("value"))
    return {r["state"]: int(r["units"] or 0) for r in rows}


def ledger_minor_units(organization_id: str, since: datetime | None = None) -> int:
    """The floor of the organization's priced total (since ``since``) in minor units."""
    lines = PricedLine.objects.filter(organization_id=organization_id)
    if since is not None:
        lines = lines.filter(priced_at__gte=since)
    total = lines.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return money.to_minor_floor(total)
