# SPDX-License-Identifier: Apache-2.0
"""Every finished request becomes exactly one usage record: never lost, never doubled."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from potluck.usage import rollup, services
from potluck.usage.models import UsageDaily, UsageRecord
from potluck.usage.stream import (
    DEAD_LETTER_KEY,
    GROUP,
    STREAM_KEY,
    MalformedEvent,
    UsageEvent,
    append,
    decode,
    encode,
    new_request_id,
)

pytestmark = pytest.mark.django_db

DAY_1 = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
DAY_2 = datetime(2026, 11, 21, 23, 59, tzinfo=UTC).timestamp()


def event(org, **overrides) -> UsageEvent:
    fields = {
        "request_id": new_request_id(), "api_key_id": None,
        "organization_id": str(org.pk) if org else str(uuid.uuid4()),
        "model": "potluck-demo", "endpoint": "chat.completions", "status": 200,
        "stream": False, "prompt_tokens": 10, "completion_tokens": 5, "latency_ms": 42.5,
        "ttft_ms": None, "replica_id": None, "created_at": DAY_1,
    }
    return UsageEvent(**{**fields, **overrides})


def pending(conn) -> int:
    return conn.xpending(STREAM_KEY, GROUP)["pending"]


def daily_totals() -> dict[tuple, tuple]:
    return {(str(d.organization_id), d.day.isoformat(), d.model, d.api_key_id):
            (d.requests, d.errors, d.prompt_tokens, d.completion_tokens)
            for d in UsageDaily.objects.all()}


def test_an_event_survives_encoding():
    sent = UsageEvent("req_1", str(uuid.uuid4()), str(uuid.uuid4()), "m", "embeddings", 429,
                      True, 3, 0, 12.0, 1.5, str(uuid.uuid4()), DAY_1)
    fields = encode(sent)
    assert list(fields) == ["r"]
    assert decode({b"r": fields["r"]}) == sent
    assert decode({b"r": json.dumps(sent.as_dict()).encode()}) == sent


def test_encoding_needs_no_orjson(monkeypatch):
    from potluck.usage import stream

    sent = event(None, api_key_id=str(uuid.uuid4()), ttft_ms=0.5)
    monkeypatch.setattr(stream, "orjson", None)
    fields = encode(sent)
    assert isinstance(fields["r"], str) and ", " not in fields["r"]
    assert decode({"r": fields["r"]}) == sent


@pytest.mark.parametrize("fields,complaint", [
    ({b"x": b"1"}, "no 'r' field"),
    ({b"r": b"{not json"}, "not JSON"),
    ({b"r": b"[1, 2]"}, "not a JSON object"),
    ({b"r": b'{"request_id": "req_1"}'}, "missing fields"),
])
def test_a_malformed_entry_is_refused_with_its_reason(fields, complaint):
    with pytest.raises(MalformedEvent, match=complaint):
        decode(fields)


@pytest.mark.parametrize("field,value", [
    ("organization_id", "acme"), ("status", "200"), ("status", 99), ("stream", 1),
    ("prompt_tokens", -1), ("completion_tokens", 2**31), ("latency_ms", None),
    ("endpoint", "chat"), ("model", ""), ("model", "a\x00b"), ("request_id", "r" * 65),
    ("created_at", 1e300), ("api_key_id", "key-1"),
])
def test_a_field_of_the_wrong_shape_is_named(field, value):
    data = {**event(None).as_dict(), field: value}
    with pytest.raises(MalformedEvent, match=f"^{field}: expected"):
        decode({b"r": json.dumps(data).encode()})


def test_every_appended_event_becomes_exactly_one_record(org, other_org, redis_conn):
    key = uuid.uuid4()
    sent = []
    for i in range(1234):
        sent.append(event(
            org if i % 3 else other_org, model=f"m{i % 2}",
            api_key_id=str(key) if i % 5 == 0 else None,
            status=500 if i % 7 == 0 else 200, prompt_tokens=i, completion_tokens=2 * i,
            created_at=DAY_1 if i % 4 else DAY_2, stream=bool(i % 2),
            ttft_ms=3.0 if i % 2 else None,
        ))
    for e in sent:
        append(redis_conn, e)

    result = rollup.roll_up("consumer-a", batch=500)

    assert (result.read, result.inserted, result.duplicates, result.dead_lettered) == (
        1234, 1234, 0, 0)
    assert result.drained and result.batches == 3
    assert UsageRecord.objects.count() == 1234
    assert redis_conn.xlen(STREAM_KEY) == 0 and pending(redis_conn) == 0
    stored = UsageRecord.objects.get(pk=sent[5].request_id)
    assert (stored.api_key_id, stored.status, stored.prompt_tokens, stored.stream,
            stored.ttft_ms) == (key, 200, 5, True, 3.0)
    assert stored.created_at.timestamp() == DAY_1

    expected: dict[tuple, list[int]] = {}
    for e in sent:
        day = datetime.fromtimestamp(e.created_at, UTC).date().isoformat()
        group = (e.organization_id, day, e.model, uuid.UUID(e.api_key_id) if e.api_key_id
                 else None)
        totals = expected.setdefault(group, [0, 0, 0, 0])
        totals[0] += 1
        totals[1] += e.status >= 400
        totals[2] += e.prompt_tokens
        totals[3] += e.completion_tokens
    assert daily_totals() == {group: tuple(t) for group, t in expected.items()}


def test_the_same_request_appended_twice_is_recorded_once(org, redis_conn):
    once = event(org)
    append(redis_conn, once)
    append(redis_conn, once)
    first = rollup.roll_up("consumer-a")
    append(redis_conn, replace(once, prompt_tokens=999))  # a later re-send: still the same
    second = rollup.roll_up("consumer-a")

    assert (first.inserted, first.duplicates, second.inserted, second.duplicates) == (1, 1, 0, 1)
    assert UsageRecord.objects.get().prompt_tokens == 10
    assert UsageDaily.objects.get().requests == 1
    assert redis_conn.xlen(STREAM_KEY) == 0 and pending(redis_conn) == 0


def test_a_consumer_that_dies_before_commit_loses_nothing(org, redis_conn):
    sent = [event(org) for _ in range(300)]
    for e in sent:
        append(redis_conn, e)
    rollup.ensure_group(redis_conn)
    # Consumer A reads a batch, then dies before it records anything.
    taken = redis_conn.xreadgroup(GROUP, "consumer-a", {STREAM_KEY: ">"}, count=300)
    assert len(taken[0][1]) == 300

    # A live consumer's entries are not taken while they are fresh...
    early = rollup.roll_up("consumer-b")
    assert (early.read, UsageRecord.objects.count(), pending(redis_conn)) == (0, 0, 300)
    # ...but once silent for min_idle they are, and recorded once.
    time.sleep(0.1)
    late = rollup.roll_up("consumer-b", batch=128, min_idle_ms=50)

    assert (late.reclaimed, late.inserted, late.duplicates) == (300, 300, 0)
    assert set(UsageRecord.objects.values_list("pk", flat=True)) == {e.request_id for e in sent}
    assert UsageDaily.objects.get().requests == 300
    assert redis_conn.xlen(STREAM_KEY) == 0 and pending(redis_conn) == 0


def test_a_roll_up_that_failed_retries_its_own_entries_at_once(org, redis_conn):
    """Issue 21: the database was down during a roll-up; the same worker's next roll-up
    records what it had read, without waiting ``min_idle`` for a takeover."""
    sent = [event(org) for _ in range(40)]
    for e in sent:
        append(redis_conn, e)
    rollup.ensure_group(redis_conn)
    # The consumer read the entries, then its transaction failed (nothing committed).
    taken = redis_conn.xreadgroup(GROUP, "worker:1", {STREAM_KEY: ">"}, count=500)
    assert len(taken[0][1]) == 40 and pending(redis_conn) == 40

    again = rollup.roll_up("worker:1", min_idle_ms=60_000)

    assert (again.read, again.inserted, again.reclaimed) == (40, 40, 0)
    assert set(UsageRecord.objects.values_list("pk", flat=True)) == {e.request_id for e in sent}
    assert redis_conn.xlen(STREAM_KEY) == 0 and pending(redis_conn) == 0


def test_a_crash_after_commit_before_ack_does_not_double(org, redis_conn):
    sent = [event(org, prompt_tokens=7) for _ in range(200)]
    for e in sent:
        append(redis_conn, e)
    rollup.ensure_group(redis_conn)
    # Consumer A reads and commits, then dies before acknowledging.
    taken = redis_conn.xreadgroup(GROUP, "consumer-a", {STREAM_KEY: ">"}, count=500)
    committed = services.record_events([decode(fields) for _, fields in taken[0][1]])
    assert len(committed.inserted) == 200 and pending(redis_conn) == 200

    again = rollup.roll_up("consumer-b", min_idle_ms=0)

    assert (again.reclaimed, again.inserted, again.duplicates) == (200, 0, 200)
    assert UsageRecord.objects.count() == 200
    daily = UsageDaily.objects.get()
    assert (daily.requests, daily.prompt_tokens) == (200, 1400)
    assert redis_conn.xlen(STREAM_KEY) == 0 and pending(redis_conn) == 0


def test_malformed_entries_are_dead_lettered_and_the_rest_recorded(org, redis_conn):
    good = [event(org) for _ in range(10)]
    for e in good[:5]:
        append(redis_conn, e)
    redis_conn.xadd(STREAM_KEY, {"r": "{not json"})
    redis_conn.xadd(STREAM_KEY, {"something": "else"})
    redis_conn.xadd(STREAM_KEY, {"r": json.dumps({**good[0].as_dict(), "status": "ok"})})
    deleted_org = event(org, organization_id=str(uuid.uuid4()))
    append(redis_conn, deleted_org)
    for e in good[5:]:
        append(redis_conn, e)

    result = rollup.roll_up("consumer-a")

    assert (result.inserted, result.dead_lettered) == (10, 4)
    assert UsageRecord.objects.count() == 10
    assert redis_conn.xlen(STREAM_KEY) == 0 and pending(redis_conn) == 0
    dead = [fields for _, fields in redis_conn.xrange(DEAD_LETTER_KEY)]
    reasons = [d[b"dead.reason"].decode() for d in dead]
    assert reasons[0].startswith("malformed: 'r' is not JSON")
    assert reasons[1] == "malformed: no 'r' field in the entry"
    assert reasons[2].startswith("malformed: status: expected an integer")
    assert reasons[3] == f"unknown organization {deleted_org.organization_id}"
    # The original fields are kept, so a dead letter can be appended again once fixed.
    assert dead[0][b"r"] == b"{not json" and dead[1][b"something"] == b"else"
    assert decode(dead[3]) == deleted_org


def test_an_event_the_database_refuses_is_isolated_from_its_batch(org, redis_conn):
    # decode() guards every column; a refusal can still come from the database itself.
    batch = [event(org) for _ in range(4)]
    refused_one = replace(batch[2], model="m" * 300)
    recorded, refused = rollup.record_batch([*batch[:2], refused_one, batch[3]])
    assert len(recorded.inserted) == 3
    assert [(e.request_id, reason.split(":")[0]) for e, reason in refused] == [
        (refused_one.request_id, "refused by the database")]
    assert UsageRecord.objects.count() == 3 and UsageDaily.objects.get().requests == 3


def test_gone_consumers_are_forgotten_unless_they_hold_entries(org, redis_conn):
    append(redis_conn, event(org))
    append(redis_conn, event(org))
    rollup.ensure_group(redis_conn)
    redis_conn.xreadgroup(GROUP, "holder", {STREAM_KEY: ">"}, count=1)
    done = redis_conn.xreadgroup(GROUP, "gone", {STREAM_KEY: ">"}, count=1)
    redis_conn.xack(STREAM_KEY, GROUP, done[0][1][0][0])

    assert rollup.forget_idle_consumers(redis_conn, 0, keep="me") == 1

    names = {c["name"] for c in redis_conn.xinfo_consumers(STREAM_KEY, GROUP)}
    assert names == {b"holder"}
