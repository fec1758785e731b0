# SPDX-License-Identifier: Apache-2.0
"""Usage consumers get every committed record once in effect, in order, whatever fails."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from prometheus_client import REGISTRY
from usage_probe import effect_table, effects
from waiting import wait_for

from potluck import extensions
from potluck.extensions import CommittedUsageRecord
from potluck.usage import consumers, services
from potluck.usage.consumers import Outcome, consumer_lag, feed, feed_all
from potluck.usage.metrics import update_consumer_lag
from potluck.usage.models import UsageConsumerCursor, UsageRecord
from potluck.usage.stream import UsageEvent, new_request_id

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def only_these_consumers() -> Iterator[None]:
    saved = extensions.usage_consumers.items()
    extensions.usage_consumers.clear()
    yield
    extensions.usage_consumers.clear()
    for key, item in saved:
        extensions.usage_consumers.register(key, item)


@pytest.fixture
def probe_table(db) -> Iterator[None]:
    with effect_table():
        yield


def record(org, count: int) -> list[str]:
    """Commit ``count`` usage records as the roll-up does; their request ids in log order."""
    before = set(UsageRecord.objects.values_list("request_id", flat=True))
    services.record_events([UsageEvent(
        request_id=new_request_id(), organization_id=str(org.pk), api_key_id=None,
        model="potluck-demo", endpoint="chat.completions", status=200, stream=False,
        prompt_tokens=i, completion_tokens=1, latency_ms=10.0, ttft_ms=None, replica_id=None,
        created_at=T0.timestamp() + i) for i in range(count)])
    return [rid for rid in UsageRecord.objects.order_by("seq").values_list("request_id",
                                                                             flat=True)
            if rid not in before]


class Applying:
    """Applies each record as a row of the effect table, in the feed's transaction, and
    keeps every delivery; raises after applying a batch while ``failures`` are left for
    its ``fail_on_batch``-th batch."""

    def __init__(self, name: str, *, batch_size: int = 10, failures: int = 0,
                 fail_on_batch: int = 1, start: str = "beginning") -> None:
        self.name = name
        self.batch_size = batch_size
        self.start = start
        self.failures = failures
        self.fail_on_batch = fail_on_batch
        self.deliveries: list[list[str]] = []
        self.succeeded = 0

    def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
        self.deliveries.append([r.request_id for r in records])
        with connection.cursor() as cursor:
            for r in records:
                cursor.execute("INSERT INTO usage_probe_effect (consumer, request_id, seq, pid) "
                               "VALUES (%s, %s, %s, 0)", [self.name, r.request_id, r.seq])
        if self.failures and self.succeeded + 1 == self.fail_on_batch:
            self.failures -= 1
            raise RuntimeError("the ledger is down")
        self.succeeded += 1


def cursor(name: str) -> UsageConsumerCursor:
    return UsageConsumerCursor.objects.get(name=name)


def seq_of(request_id: str) -> int:
    return UsageRecord.objects.get(pk=request_id).seq


def test_a_consumer_that_fails_three_times_then_succeeds_sees_every_record_once_in_order(
        org, probe_table, settings):
    settings.USAGE_CONSUMER_RETRY_SECONDS = 2
    order = record(org, 25)
    flaky = extensions.usage_consumers.add(Applying("ledger", failures=3, fail_on_batch=2))

    first = feed(flaky, now=T0)

    assert (first.outcome, first.consumed, first.batches) == (Outcome.FAILED, 10, 1)
    failed = cursor("ledger")
    assert (failed.position, failed.attempts, failed.last_error, failed.last_error_at,
            failed.retry_at) == (seq_of(order[9]), 1, "builtins.RuntimeError", T0,
                                 T0 + timedelta(seconds=2))
    # The failed batch's effects were rolled back with it; the first batch's stayed.
    assert effects("ledger") == order[:10]

    # Not tried again before its retry time...
    assert feed(flaky, now=T0 + timedelta(seconds=1)).outcome == Outcome.BACKING_OFF
    assert len(flaky.deliveries) == 2
    # ...then tried from its cursor, with a back-off that doubles.
    retry_ats = [failed.retry_at]
    for attempt in (2, 3):
        assert feed(flaky, now=retry_ats[-1]).outcome == Outcome.FAILED
        assert cursor("ledger").attempts == attempt
        retry_ats.append(cursor("ledger").retry_at)
    assert retry_ats == [T0 + timedelta(seconds=s) for s in (2, 2 + 4, 2 + 4 + 8)]

    done = feed(flaky, now=retry_ats[-1])

    assert (done.outcome, done.consumed) == (Outcome.CAUGHT_UP, 15)
    assert effects("ledger") == order  # every record once, in order
    assert flaky.deliveries[1:5] == [order[10:20]] * 4  # the same batch, 3 failures + 1
    assert [rid for batch in [flaky.deliveries[0], *flaky.deliveries[4:]] for rid in batch
            ] == order
    healed = cursor("ledger")
    assert (healed.position, healed.attempts, healed.retry_at, healed.consumed) == (
        seq_of(order[-1]), 0, None, 25)


def test_a_consumer_failing_forever_does_not_delay_the_others(org, probe_table):
    broken = extensions.usage_consumers.add(Applying("broken", failures=10**6))
    keeper = extensions.usage_consumers.add(Applying("keeper"))
    order = record(org, 30)

    first = {r.name: r for r in feed_all(now=T0)}
    order += record(org, 20)
    second = {r.name: r for r in feed_all(now=T0 + timedelta(days=1))}  # past its back-off

    assert (first["broken"].outcome, second["broken"].outcome) == (Outcome.FAILED,) * 2
    assert (first["keeper"].consumed, second["keeper"].consumed) == (30, 20)
    assert effects("keeper") == order and effects("broken") == []
    assert broken.deliveries == [order[:10]] * 2  # nothing after its failing batch
    assert keeper.deliveries == [order[i:i + 10] for i in range(0, 50, 10)]
    lags = {lag.name: lag for lag in consumer_lag()}
    assert (lags["broken"].records_behind, lags["broken"].attempts) == (50, 2)
    assert (lags["keeper"].records_behind, lags["keeper"].attempts) == (0, 0)


def test_a_consumer_starting_at_the_end_gets_only_later_records(org, probe_table):
    record(org, 5)
    late = extensions.usage_consumers.add(Applying("late", start="end"))
    assert consumer_lag()[0].records_behind == 0
    assert feed(late).outcome == Outcome.CAUGHT_UP and late.deliveries == []
    later = record(org, 3)
    feed(late)
    assert effects("late") == later


@pytest.mark.parametrize("attribute,value,complaint", [
    ("start", "now", "start must be one of beginning, end"),
    ("batch_size", 0, "batch_size must be a positive integer"),
])
def test_a_misconfigured_consumer_is_refused_by_name(org, attribute, value, complaint):
    record(org, 1)
    consumer = Applying("odd")
    setattr(consumer, attribute, value)
    extensions.usage_consumers.add(consumer)
    with pytest.raises(ValueError, match=f"usage consumer odd: {complaint}"):
        feed(consumer)
    assert [r.outcome for r in feed_all()] == [Outcome.ERROR]


def test_records_reach_consumers_with_their_columns(org):
    key = uuid.uuid4()
    services.record_events([UsageEvent(
        request_id="req_shape", organization_id=str(org.pk), api_key_id=str(key),
        model="potluck-demo", endpoint="completions", status=429, stream=True,
        prompt_tokens=7, completion_tokens=3, latency_ms=12.5, ttft_ms=4.0, replica_id=None,
        created_at=T0.timestamp())])
    seen: list[CommittedUsageRecord] = []

    class Keep:
        name = "keep"

        def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
            seen.extend(records)

    feed(extensions.usage_consumers.add(Keep()))

    (got,) = seen
    stored = UsageRecord.objects.get(pk="req_shape")
    assert got == CommittedUsageRecord(
        seq=stored.seq, request_id="req_shape", organization_id=org.pk, api_key_id=key,
        model="potluck-demo", endpoint="completions", status=429, stream=True,
        prompt_tokens=7, completion_tokens=3, latency_ms=12.5, ttft_ms=4.0, replica_id=None,
        created_at=T0, recorded_at=stored.recorded_at)
    assert got.total_tokens == 10 and got.recorded_at.tzinfo is not None


def test_lag_counts_the_records_behind_and_the_age_of_the_oldest(org, probe_table):
    keeper = extensions.usage_consumers.add(Applying("keeper"))
    extensions.usage_consumers.add(Applying("newcomer"))
    extensions.usage_consumers.add(Applying("tail", start="end"))
    consumed = record(org, 12)
    feed(keeper)
    behind = record(org, 5)
    with connection.cursor() as db:  # as if the last five were recorded hours ago
        db.execute("UPDATE usage_usagerecord SET recorded_at = clock_timestamp() - "
                   "CASE WHEN request_id = %s THEN interval '2 hours' ELSE interval '1 hour' END "
                   "WHERE request_id = ANY(%s)", [behind[0], behind])

    lags = {lag.name: lag for lag in update_consumer_lag()}

    assert lags.keys() == {"keeper", "newcomer", "tail"}
    assert lags["keeper"].records_behind == 5
    assert 7200 <= lags["keeper"].seconds_behind < 7200 + 600  # the oldest: two hours
    assert lags["keeper"].position == seq_of(consumed[-1])
    assert lags["newcomer"].records_behind == 17  # not run yet: it starts at the beginning
    assert (lags["tail"].records_behind, lags["tail"].seconds_behind) == (0, 0.0)
    sample = REGISTRY.get_sample_value
    assert sample("potluck_usage_consumer_lag_records", {"consumer": "keeper"}) == 5
    assert sample("potluck_usage_consumer_lag_seconds", {"consumer": "keeper"}) >= 7200
    assert sample("potluck_usage_consumer_failed_attempts", {"consumer": "keeper"}) == 0

    feed(keeper)
    caught_up = {lag.name: lag for lag in consumer_lag()}["keeper"]
    assert (caught_up.records_behind, caught_up.seconds_behind) == (0, 0.0)


@pytest.mark.django_db(transaction=True)
def test_one_runner_at_a_time_and_a_hung_consumer_holds_up_no_other(make_org):
    org = make_org("Acme")
    order = record(org, 30)
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, list[str]] = {"hung": [], "keeper": []}

    class Recording:
        def __init__(self, name: str, hang: bool = False) -> None:
            self.name, self.hang, self.batch_size = name, hang, 100

        def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
            seen[self.name].extend(r.request_id for r in records)
            if self.hang and not release.is_set():
                entered.set()
                release.wait(60)

    hung = extensions.usage_consumers.add(Recording("hung", hang=True))
    extensions.usage_consumers.add(Recording("keeper"))

    def run_hung() -> None:
        try:
            feed(hung)
        finally:
            connection.close()

    runner = threading.Thread(target=run_hung)
    runner.start()
    try:
        wait_for(entered.is_set, 30, "the hung consumer to be inside consume")
        # A second runner passes the hung consumer by (its cursor is locked) and feeds
        # the other one.
        results = {r.name: r for r in feed_all()}
    finally:
        release.set()
        runner.join(60)

    assert (results["hung"].outcome, results["keeper"].outcome) == (Outcome.BUSY,
                                                                     Outcome.CAUGHT_UP)
    assert seen == {"hung": order, "keeper": order}  # each delivered once
    assert cursor("hung").position == cursor("keeper").position == seq_of(order[-1])


def test_the_retry_delay_doubles_up_to_its_ceiling(settings):
    settings.USAGE_CONSUMER_RETRY_SECONDS = 2
    settings.USAGE_CONSUMER_RETRY_MAX_SECONDS = 60
    assert [consumers.retry_delay(n) for n in (1, 2, 3, 5, 6, 100)] == [2, 4, 8, 32, 60, 60]

