# SPDX-License-Identifier: Apache-2.0
"""A usage consumer in a real worker, killed mid-batch, resumes from its cursor: no gap,
no effect applied twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from usage_probe import effect_table, effects, journal, plugin_env
from waiting import wait_for

from potluck.accounts import services as accounts
from potluck.usage import services
from potluck.usage.models import UsageConsumerCursor, UsageRecord
from potluck.usage.stream import UsageEvent, new_request_id
from potluck.usage.tasks import feed_consumers


@pytest.fixture
def probe_table(live_env) -> Iterator[None]:
    with effect_table():
        yield


def position() -> int | None:
    found = UsageConsumerCursor.objects.filter(name="probe").first()
    return found.position if found else None


@pytest.mark.slow
def test_a_consumer_killed_mid_batch_resumes_from_its_cursor(probe_table, start_agent,
                                                            live_env, tmp_path):
    # probe_table first: it is dropped only after the agents are gone (one stalled
    # mid-batch would hold a lock on it).
    org = accounts.create_organization("Acme")
    services.record_events([UsageEvent(
        request_id=new_request_id(), organization_id=str(org.pk), api_key_id=None,
        model="potluck-demo", endpoint="completions", status=200, stream=False,
        prompt_tokens=i, completion_tokens=1, latency_ms=5.0, ttft_ms=None, replica_id=None,
        created_at=time.time()) for i in range(50)])
    order = list(UsageRecord.objects.order_by("seq").values_list("request_id", flat=True))
    seqs = list(UsageRecord.objects.order_by("seq").values_list("seq", flat=True))
    # Batches of 10: the first worker applies batches 1-2 and half of batch 3, then stalls.
    first = start_agent("consumer-a", **plugin_env(live_env, tmp_path, batch="10",
                                                    stall_at=order[24]))
    feed_consumers.delay()  # as beat would
    wait_for((tmp_path / "probe.stalled").exists, 60, "the consumer to stall mid-batch")
    first.kill()  # SIGKILL, its whole process group

    assert position() == seqs[19]  # two batches committed with their cursor advance
    assert effects("probe") == order[:20]  # the third batch's five effects rolled back
    assert journal(tmp_path, "probe") == [(first.process.pid, rid) for rid in order[:25]]

    second = start_agent("consumer-b", **plugin_env(live_env, tmp_path, batch="10"))

    def finished() -> bool:
        feed_consumers.delay()  # as beat would, every second
        return position() == seqs[-1]

    wait_for(finished, 90, "the second worker to catch up", interval=1.0)
    assert second.stop() == 0, second.output()[-3000:]

    assert effects("probe") == order  # no gap, no effect applied twice, in order
    deliveries = journal(tmp_path, "probe")
    # The second worker started again at the cursor: the interrupted batch, then the rest.
    assert deliveries[25:] == [(second.process.pid, rid) for rid in order[20:]]
    assert UsageConsumerCursor.objects.get(name="probe").attempts == 0
