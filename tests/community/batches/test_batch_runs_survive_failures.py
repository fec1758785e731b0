# SPDX-License-Identifier: Apache-2.0
"""A batch run survives its worker and its dependencies failing: a resumed run never
resends a recorded line, the lease is kept (or given up before it lapses), a worker
shutting down hands the batch back, and runs that keep failing fail the batch while
keeping the lines that finished."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from batch_lines import read_jsonl, request_line
from batch_runs import (
    in_background,
    join,
    new_batch,
    outage_in,
    ran_some_lines,
    rid,
    stored_file,
)
from django.utils import timezone
from waiting import wait_for

from potluck.batches import lease, results, runner, services
from potluck.batches.models import Batch, BatchResult, BatchStatus
from potluck.files.storage import get_storage

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_resumed_batch_never_resends_recorded_lines(org, batch_file, fake_replicas, served,
                                                      quick):
    replica = fake_replicas()
    served("fake-model", [replica.port])
    stored = batch_file(org, [request_line(n) for n in range(1, 11)])
    batch = new_batch(org, stored)
    # A runner that recorded lines 1-4, then died holding its lease.
    ran_some_lines(batch, stored, "dead-worker", range(1, 5))

    assert runner.run_batch(batch.pk) == "not claimed"  # its lease has not lapsed yet
    assert services.resume_stalled_batches() == []
    Batch.objects.filter(pk=batch.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.resume_stalled_batches() == [batch.pk]
    assert services.resume_stalled_batches() == []  # reserved for the runner on its way

    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    assert sorted(replica.request_ids) == sorted(rid(batch, n) for n in range(5, 11))
    output = read_jsonl(stored_file(org, Batch.objects.get(pk=batch.pk).output_file_id))
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, 11)]
    assert [line["response"]["body"] for line in output[:4]] == [
        {"recorded": n} for n in range(1, 5)]
    assert runner.run_batch(batch.pk) == "not claimed"  # finished: nothing runs again


def test_a_slow_progress_refresh_never_costs_the_runner_its_lease(
        org, batch_file, fake_replicas, served, quick, monkeypatch, settings):
    """The lease is renewed on a thread of its own: progress refreshes slower than the
    whole lease (a loaded database), while sending and while finishing, leave the batch
    to its runner, and no line is sent twice."""
    settings.BATCH_CONCURRENCY = 2
    replica = fake_replicas(delay=0.1)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 61)]))
    refresh = results.refresh_counts

    def slow_refresh(batch_id: str) -> None:
        time.sleep(4)  # the lease is 3 s
        refresh(batch_id)

    monkeypatch.setattr(results, "refresh_counts", slow_refresh)
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 4, 30, "4 lines")
    resumed: list[str] = []
    while thread.is_alive():  # what the beat's pass would have found stalled meanwhile
        resumed += services.resume_stalled_batches()
        thread.join(0.2)
    assert resumed == []
    assert said == [BatchStatus.COMPLETED]
    assert sorted(replica.request_ids) == sorted(rid(batch, n) for n in range(1, 61))


def test_a_runner_that_cannot_renew_its_lease_stops_sending_before_it_lapses(
        org, batch_file, fake_replicas, served, quick, monkeypatch, settings):
    """If the database stops answering its renewals, a runner takes no new line once its
    lease may have lapsed: the successor that takes the batch over never races it."""
    settings.BATCH_CONCURRENCY = 2
    replica = fake_replicas(delay=0.05)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 301)]))
    answer = threading.Event()
    renew = lease.renew

    def unanswered_renew(batch_id: str, token: str):
        answer.wait(30)
        return renew(batch_id, token)

    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 4, 30, "4 lines")
    monkeypatch.setattr(lease, "renew", unanswered_renew)
    wait_for(lambda: Batch.objects.filter(pk=batch.pk, lease_expires_at__lt=timezone.now())
             .exists(), 10, "the lease to lapse", interval=0.05)
    lapsed = time.monotonic()
    assert lease.claim(batch.pk, "successor") is not None  # as the periodic pass would
    time.sleep(0.5)
    answer.set()
    join(thread)
    assert said == ["lease_lost"]
    sent = len(replica.request_ids)
    assert 4 <= sent < 300
    assert [t for t in replica.arrivals if t >= lapsed] == []
    # Lines in flight when it stopped finished and kept their results: none is lost.
    assert BatchResult.objects.filter(batch=batch).count() == sent


def test_an_input_file_whose_bytes_are_gone_fails_the_batch(org, batch_file, fake_replicas,
                                                             served):
    replica = fake_replicas()
    served("fake-model", [replica.port])
    stored = batch_file(org, [request_line(n) for n in range(1, 4)])
    batch = new_batch(org, stored)
    get_storage().delete(stored.storage_key)  # the row stays; the bytes are lost

    assert runner.run_batch(batch.pk) == BatchStatus.FAILED
    [error] = Batch.objects.get(pk=batch.pk).errors
    assert (error["code"], error["param"]) == ("file_not_found", "input_file_id")
    assert replica.request_ids == []


def test_a_run_that_ends_normally_resets_the_count_of_failed_runs(
        org, batch_file, fake_replicas, served, monkeypatch):
    replica = fake_replicas()
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 5)]))
    down = outage_in(monkeypatch, results, "recorded_lines")

    assert [runner.run_batch(batch.pk) for _ in range(2)] == ["error", "error"]
    failing = Batch.objects.get(pk=batch.pk)
    assert (failing.status, failing.failed_runs, failing.lease_owner) == (
        BatchStatus.IN_PROGRESS, 2, "")
    assert services.resume_stalled_batches() == [batch.pk]  # released: resumed at once
    down[0] = False
    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    assert Batch.objects.get(pk=batch.pk).failed_runs == 0
    assert sorted(replica.request_ids) == sorted(rid(batch, n) for n in range(1, 5))


def test_runs_that_keep_failing_fail_the_batch_and_keep_the_finished_lines(
        org, batch_file, fake_replicas, served, monkeypatch, settings):
    settings.BATCH_MAX_FAILED_RUNS = 3
    replica = fake_replicas()
    served("fake-model", [replica.port])
    stored = batch_file(org, [request_line(n) for n in range(1, 7)])
    batch = new_batch(org, stored)
    ran_some_lines(batch, stored, "earlier", (1, 2))  # and released its lease
    lease.release(batch.pk, "earlier")
    outage_in(monkeypatch, results, "recorded_lines")

    assert [runner.run_batch(batch.pk) for _ in range(3)] == [
        "error", "error", BatchStatus.FAILED]
    failed = Batch.objects.get(pk=batch.pk)
    assert (failed.failed_runs, failed.lease_owner, failed.request_completed) == (3, "", 2)
    [error] = failed.errors
    assert error["code"] == "batch_run_failed"
    assert "3 runs in a row failed (OperationalError)" in error["message"]
    assert "closed the connection" not in error["message"]  # details stay in the log
    output = read_jsonl(stored_file(org, failed.output_file_id))
    assert [line["response"]["body"] for line in output] == [{"recorded": 1}, {"recorded": 2}]
    assert replica.request_ids == []
    assert services.resume_stalled_batches() == []
    assert runner.run_batch(batch.pk) == "not claimed"


def test_a_worker_shutting_down_hands_its_batch_back_to_be_resumed(
        org, batch_file, fake_replicas, served, quick, settings):
    from potluck.batches.dispatcher import WORKER_SHUTTING_DOWN

    settings.BATCH_CONCURRENCY = 2
    replica = fake_replicas(delay=0.1)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 31)]))
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 4, 30, "4 lines")
    WORKER_SHUTTING_DOWN.set()  # what Celery's worker_shutting_down signal does
    try:
        join(thread)
    finally:
        WORKER_SHUTTING_DOWN.clear()
    assert said == ["worker_shutdown"]
    handed_back = Batch.objects.get(pk=batch.pk)
    assert handed_back.status == BatchStatus.IN_PROGRESS
    assert (handed_back.lease_owner, handed_back.lease_expires_at) == ("", None)
    assert len(replica.request_ids) == BatchResult.objects.filter(batch=batch).count() < 30

    assert services.resume_stalled_batches() == [batch.pk]  # at once: no lease to lapse
    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    assert sorted(replica.request_ids) == sorted(rid(batch, n) for n in range(1, 31))
