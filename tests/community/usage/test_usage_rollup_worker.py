# SPDX-License-Identifier: Apache-2.0
"""A real Celery worker drains the usage stream, and a worker killed mid-batch loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.db.models import Count, Sum
from waiting import wait_for

from potluck.accounts import services
from potluck.nodes.services import live_node_names
from potluck.usage.models import UsageDaily, UsageRecord
from potluck.usage.stream import GROUP, STREAM_KEY, UsageEvent, encode, new_request_id
from potluck.usage.tasks import roll_up

WORKER = "rollup-test"




def start_worker(env: dict[str, str]) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, "-m", "potluck", "agent", "--name", WORKER, "--control"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for(lambda: WORKER in live_node_names())
    return worker


def append_events(conn, org, count: int) -> None:
    pipe = conn.pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(STREAM_KEY, encode(UsageEvent(
            request_id=new_request_id(), organization_id=str(org.pk), api_key_id=None,
            model="potluck-demo", endpoint="completions", status=200, stream=False,
            prompt_tokens=i % 50, completion_tokens=1, latency_ms=12.0, ttft_ms=None,
            replica_id=None, created_at=time.time())))
    pipe.execute()


def recorded() -> int:
    return UsageRecord.objects.count()


def drained(conn) -> bool:
    return conn.xlen(STREAM_KEY) == 0 and conn.xpending(STREAM_KEY, GROUP)["pending"] == 0


@pytest.mark.slow
def test_a_worker_killed_mid_roll_up_loses_and_doubles_nothing(live_env, redis_conn):
    org = services.create_organization("Acme")
    # Entries a dead worker held are taken over after 1 s instead of a minute.
    env = {**live_env, "POTLUCK_NODE_HEARTBEAT_SECONDS": "1",
           "POTLUCK_USAGE_RECLAIM_IDLE_SECONDS": "1"}

    first = start_worker(env)
    try:
        append_events(redis_conn, org, 1000)
        started = time.monotonic()
        roll_up.delay()
        wait_for(lambda: recorded() == 1000 and drained(redis_conn))
        print(f"1,000 events recorded by the worker in {time.monotonic() - started:.2f}s")

        append_events(redis_conn, org, 2000)
        roll_up.delay(batch=10)  # small batches: many commits to be killed between or in
        wait_for(lambda: recorded() > 1000, interval=0.005)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        landed = recorded()
        held = redis_conn.xpending(STREAM_KEY, GROUP)["pending"]
        print(f"killed with {landed - 1000} of 2,000 recorded, {held} entries pending")
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
    assert 1000 < landed < 3000, "the worker finished before it could be killed"

    second = start_worker(env)
    try:
        def finished() -> bool:
            roll_up.delay()  # as beat would, every second
            return recorded() == 3000 and drained(redis_conn)

        wait_for(finished, timeout=90, interval=1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=60)[0].decode()
    assert second.returncode == 0, output[-3000:]

    totals = UsageRecord.objects.aggregate(rows=Count("request_id"),
                                           ids=Count("request_id", distinct=True))
    assert totals == {"rows": 3000, "ids": 3000}
    assert UsageDaily.objects.aggregate(n=Sum("requests"))["n"] == 3000
    assert redis_conn.xlen(STREAM_KEY) == 0
