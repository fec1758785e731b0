# SPDX-License-Identifier: Apache-2.0
"""The usage log is read in commit order: a record that commits late is never skipped.

The hazard: transaction A takes seq 10, B takes 11 and commits first; a consumer that
reads 11 and advances its cursor past it would never see 10. These tests run two real
inserting transactions on two connections and feed a consumer between their commits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from waiting import wait_for

from potluck import extensions
from potluck.accounts import services as accounts
from potluck.extensions import CommittedUsageRecord
from potluck.usage.consumers import feed

pytestmark = pytest.mark.django_db(transaction=True)

INSERT = """
INSERT INTO usage_usagerecord (request_id, organization_id, model, endpoint, status, stream,
    prompt_tokens, completion_tokens, latency_ms, created_at)
VALUES (%s, %s, 'potluck-demo', 'completions', 200, false, 1, 1, 1.0, %s)
RETURNING seq
"""


class Recording:
    name = "order-probe"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
        self.seen.extend(r.request_id for r in records)


@pytest.fixture
def raw_connections() -> Iterator[list[Any]]:
    """Plain psycopg connections of their own (not Django's), closed after the test."""
    opened: list[Any] = []

    def open_one() -> Any:
        raw = connection.get_new_connection(connection.get_connection_params())
        opened.append(raw)
        return raw

    yield open_one  # type: ignore[misc]
    for raw in opened:
        raw.close()


def waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def test_a_record_that_takes_its_seq_first_and_commits_last_is_not_skipped(raw_connections):
    org = accounts.create_organization("Acme")
    consumer = extensions.usage_consumers.add(Recording(), replace=True)
    try:
        at = datetime(2026, 12, 1, tzinfo=UTC)
        a, b = raw_connections(), raw_connections()
        b_pid = b.execute("SELECT pg_backend_pid()").fetchone()[0]
        b.commit()
        feed(consumer)  # the cursor exists, at the start of the (empty) log

        # A inserts and stays open; B inserts and commits while A is still open.
        seq_a = a.execute(INSERT, ["req_a", org.pk, at]).fetchone()[0]
        b_result: dict[str, Any] = {}

        def insert_b() -> None:
            try:
                b_result["seq"] = b.execute(INSERT, ["req_b", org.pk, at]).fetchone()[0]
                b.commit()
            except Exception as exc:  # reported by the assertion below
                b_result["error"] = exc

        writer = threading.Thread(target=insert_b)
        writer.start()
        # Either B is held back until A ends (the log's lock), or it committed already
        # (a log without one): the consumer is fed at that moment in both cases.
        wait_for(lambda: not writer.is_alive() or waiting_on_a_lock(b_pid), 30,
                 "B to commit or to wait for A")
        feed(consumer)
        a.commit()
        writer.join(30)
        feed(consumer)
    finally:
        extensions.usage_consumers.unregister("order-probe")

    assert "error" not in b_result
    assert seq_a < b_result["seq"]  # A took its seq first and committed last
    assert consumer.seen == ["req_a", "req_b"]  # neither skipped, in seq order


def test_concurrent_roll_ups_lose_no_record_for_a_consumer_fed_meanwhile():
    from potluck.usage import services
    from potluck.usage.stream import UsageEvent, new_request_id

    org = accounts.create_organization("Acme")
    consumer = extensions.usage_consumers.add(Recording(), replace=True)
    sent: list[str] = []
    stop = threading.Event()

    def roll_up_batches() -> None:
        try:
            while not stop.is_set():
                events = [UsageEvent(
                    request_id=new_request_id(), organization_id=str(org.pk), api_key_id=None,
                    model="m", endpoint="completions", status=200, stream=False,
                    prompt_tokens=1, completion_tokens=1, latency_ms=1.0, ttft_ms=None,
                    replica_id=None, created_at=1.8e9) for _ in range(20)]
                services.record_events(events)
                sent.extend(e.request_id for e in events)
        finally:
            connection.close()

    writers = [threading.Thread(target=roll_up_batches) for _ in range(3)]
    try:
        for writer in writers:
            writer.start()
        # Feed while three writers commit batches of 20, until the consumer saw 600.
        wait_for(lambda: feed(consumer) and len(consumer.seen) >= 600, 120,
                 "600 records consumed", interval=0.01)
    finally:
        stop.set()
        for writer in writers:
            writer.join(60)
        feed(consumer)
        extensions.usage_consumers.unregister("order-probe")

    assert sorted(consumer.seen) == sorted(sent)
    assert len(consumer.seen) == len(set(consumer.seen))


def test_the_insert_trigger_takes_the_documented_lock():
    from potluck.usage.consumers import LOG_LOCK_ID

    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'usage_record_join_log'")
        (source,) = cursor.fetchone()
    assert f"pg_advisory_xact_lock({LOG_LOCK_ID})" in source


def test_records_made_before_the_log_join_it_in_the_order_they_were_made():
    from django.db.migrations.executor import MigrationExecutor

    from potluck.usage.models import UsageRecord

    org = accounts.create_organization("Acme")
    before = [("usage", "0002_usagedaily")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_record = executor.loader.project_state(before).apps.get_model("usage",
                                                                          "UsageRecord")
        for request_id, hour in (("req_c", 9), ("req_a", 11), ("req_b", 10)):
            old_record.objects.create(
                request_id=request_id, organization_id=org.pk, model="m",
                endpoint="completions", status=200, latency_ms=1.0,
                created_at=datetime(2026, 11, 1, hour, tzinfo=UTC))
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    UsageRecord.objects.create(request_id="req_new", organization_id=org.pk, model="m",
                               endpoint="completions", status=200, latency_ms=1.0,
                               created_at=datetime(2026, 10, 1, tzinfo=UTC))
    logged = list(UsageRecord.objects.order_by("seq").values_list("request_id", "seq"))
    assert logged == [("req_c", 1), ("req_b", 2), ("req_a", 3), ("req_new", 4)]
    assert UsageRecord.objects.get(pk="req_a").recorded_at == datetime(2026, 11, 1, 11,
                                                                       tzinfo=UTC)
