# SPDX-License-Identifier: Apache-2.0
"""The usage journal against real Redis: recorded events reach the stream, a journal left
by a dead writer is shipped by the next one, a live writer's journal is never taken, and
nothing is lost while Redis is down."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from redis.asyncio import Redis

from potluck.inference.usage_writer import TRUNCATE_AT, UsageJournal, recover_journals
from potluck.usage.stream import STREAM_KEY, UsageEvent, decode


def event(n: int, org: str) -> UsageEvent:
    return UsageEvent(request_id=f"req_journal_{n}", organization_id=org, api_key_id=None,
                      model="m", endpoint="completions", status=200, stream=False,
                      prompt_tokens=3, completion_tokens=n, latency_ms=1.0, ttft_ms=None,
                      replica_id=None, created_at=time.time())


def stream_ids(redis_conn) -> list[str]:
    return [decode(fields).request_id for _, fields in redis_conn.xrange(STREAM_KEY)]


def redis_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL


def test_recorded_events_are_shipped_in_order_and_the_file_starts_over(redis_conn, tmp_path):
    org = str(uuid.uuid4())

    async def go() -> tuple[int, int]:
        journal = UsageJournal(Redis.from_url(redis_url()), tmp_path)
        for n in range(5):
            await journal.record(event(n, org))
        assert journal.pending_bytes > 0
        moved = await journal.ship()
        size_after_ship = os.path.getsize(journal.path)
        await journal.close()
        return moved, size_after_ship

    moved, size = asyncio.run(go())
    assert moved == 5 and size > 0
    assert stream_ids(redis_conn) == [f"req_journal_{n}" for n in range(5)]
    assert list(tmp_path.glob("usage-*")) == []  # closed with everything shipped: deleted
    assert TRUNCATE_AT >= 1 << 20


def test_a_dead_writers_journal_is_shipped_once_by_the_next_and_a_live_one_is_left(
        redis_conn, tmp_path):
    org = str(uuid.uuid4())

    async def go() -> tuple[int, int, int]:
        conn = Redis.from_url(redis_url())
        dead = UsageJournal(conn, tmp_path)
        await dead.record(event(1, org))
        await dead.record(event(2, org))
        os.close(dead._fd)  # what the kernel does when its process dies: the lock goes
        live = UsageJournal(conn, tmp_path)
        await live.record(event(3, org))
        finder = UsageJournal(conn, tmp_path)
        first = await finder.recover()
        again = await finder.recover()
        left = len(list(tmp_path.glob("usage-*")))
        await live.close()
        await finder.close()
        return first, again, left

    first, again, left = asyncio.run(go())
    assert (first, again) == (2, 0)
    assert left == 2  # the live writer's and the finder's own
    assert stream_ids(redis_conn) == ["req_journal_1", "req_journal_2", "req_journal_3"]


def test_while_redis_is_down_records_wait_and_ship_when_it_answers(redis_conn, tmp_path):
    org = str(uuid.uuid4())

    async def go() -> tuple[int, int]:
        down = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
        journal = UsageJournal(down, tmp_path, ship_seconds=0.01)
        shipping = asyncio.create_task(journal.run())
        await journal.record(event(7, org))
        await asyncio.sleep(0.2)  # several failed rounds
        waiting = journal.pending_bytes
        journal.redis = Redis.from_url(redis_url())  # Redis is back
        for _ in range(200):
            if journal.pending_bytes == 0:
                break
            await asyncio.sleep(0.01)
        shipping.cancel()
        await journal.close()
        return waiting, journal.pending_bytes

    waiting, left = asyncio.run(go())
    assert waiting > 0 and left == 0
    assert stream_ids(redis_conn) == ["req_journal_7"]


def test_the_node_agent_ships_abandoned_journals_without_an_event_loop(redis_conn, tmp_path):
    org = str(uuid.uuid4())

    async def leave_one() -> None:
        journal = UsageJournal(Redis.from_url(redis_url()), tmp_path)
        await journal.record(event(9, org))
        os.close(journal._fd)

    asyncio.run(leave_one())
    assert recover_journals(tmp_path, redis_conn) == 1
    assert stream_ids(redis_conn) == ["req_journal_9"]
    assert list(tmp_path.glob("usage-*")) == []


def test_a_writer_closed_while_a_shipment_is_in_flight_ships_each_line_once(
        redis_conn, tmp_path, monkeypatch):
    """The gateway and batch runs cancel the shipping task, then close the journal. A
    cancel that lands after Redis took an XADD but before its answer was read must not
    make ``close`` send those lines again (the batch test saw every event twice)."""
    org = str(uuid.uuid4())
    real_xadd = UsageJournal._xadd

    async def slow_answer(self, lines):
        await real_xadd(self, lines)  # Redis has the lines...
        self.answer_pending.set()
        await asyncio.sleep(0.3)  # ...and the answer is read late

    monkeypatch.setattr(UsageJournal, "_xadd", slow_answer)

    async def go() -> None:
        journal = UsageJournal(Redis.from_url(redis_url()), tmp_path, ship_seconds=0.01)
        journal.answer_pending = asyncio.Event()
        for n in range(10):
            await journal.record(event(n, org))
        shipping = asyncio.create_task(journal.run())
        await journal.answer_pending.wait()
        shipping.cancel()  # as the dispatcher's and the gateway's shutdown do
        await asyncio.gather(shipping, return_exceptions=True)
        await journal.close()

    asyncio.run(go())
    assert stream_ids(redis_conn) == [f"req_journal_{n}" for n in range(10)]
    assert list(tmp_path.glob("usage-*")) == []
