# SPDX-License-Identifier: Apache-2.0
"""A batch cancelled mid-run lets its lines in flight finish and keeps their results; a
batch past its completion window expires, its unsent lines answered batch_expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_lines import read_jsonl, request_line
from batch_runs import (
    in_background,
    join,
    new_batch,
    stored_file,
)
from django.utils import timezone
from waiting import wait_for

from potluck.batches import input as batch_input
from potluck.batches import lease, lifecycle, results, services
from potluck.batches.models import Batch, BatchResult, BatchStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancel_mid_run_lets_in_flight_lines_finish_and_keeps_their_results(
        org, batch_file, fake_replicas, served, quick, settings):
    settings.BATCH_CONCURRENCY = 2
    replica = fake_replicas(delay=0.2)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 41)]))
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 4, 30,
             "a few lines done")

    cancelling = services.cancel_batch(org, batch.pk)
    assert cancelling.status == BatchStatus.CANCELLING
    join(thread)
    assert said == [BatchStatus.CANCELLED]
    batch.refresh_from_db()
    assert batch.cancelling_at <= batch.cancelled_at
    done = BatchResult.objects.filter(batch=batch).count()
    assert 4 <= done < 40
    # Every line that was sent finished and was recorded; none was sent after that.
    assert len(replica.request_ids) == done
    assert (batch.request_total, batch.request_completed, batch.request_failed) == (40, done, 0)
    output = read_jsonl(stored_file(org, batch.output_file_id))
    assert len(output) == done and batch.error_file_id is None


def test_a_running_batch_expires_and_unsent_lines_get_batch_expired(
        org, batch_file, fake_replicas, served, quick, settings):
    settings.BATCH_CONCURRENCY = 1
    replica = fake_replicas(delay=0.2)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 31)]))
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 2, 30, "two lines")
    Batch.objects.filter(pk=batch.pk).update(expires_at=timezone.now())
    join(thread)

    assert said == [BatchStatus.EXPIRED]
    batch.refresh_from_db()
    answered = len(replica.request_ids)
    assert batch.expired_at is not None
    assert (batch.request_completed, batch.request_failed) == (answered, 30 - answered)
    expired = read_jsonl(stored_file(org, batch.error_file_id))
    assert [line["custom_id"] for line in expired] == [
        f"req-{n}" for n in range(answered + 1, 31)]
    assert {line["error"]["code"] for line in expired} == {"batch_expired"}
    assert len(read_jsonl(stored_file(org, batch.output_file_id))) == answered


def test_expire_batches_ends_batches_no_runner_holds(org, batch_file, served, fake_replicas):
    served("fake-model", [fake_replicas().port])
    stored = batch_file(org, [request_line(n) for n in range(1, 6)])
    abandoned, held = new_batch(org, stored), new_batch(org, stored)
    for batch, owner in ((abandoned, "dead-worker"), (held, "live-worker")):
        lease.claim(batch.pk, owner)
        lifecycle.start(batch, owner, batch_input.check_input(stored, batch.endpoint))
    results.record(abandoned.pk, [
        results.Outcome(line=1, custom_id="req-1", model="fake-model", status_code=200,
                        body={}),
        results.Outcome(line=3, custom_id="req-3", model="fake-model", status_code=400,
                        body={"error": {"message": "bad"}})])
    past = timezone.now() - timedelta(seconds=1)
    Batch.objects.update(expires_at=past)
    Batch.objects.filter(pk=abandoned.pk).update(lease_expires_at=past)

    assert services.expire_batches() == [abandoned.pk]  # the held one expires itself
    abandoned.refresh_from_db()
    assert abandoned.status == BatchStatus.EXPIRED and abandoned.expired_at is not None
    assert (abandoned.request_completed, abandoned.request_failed) == (1, 4)
    errors = read_jsonl(stored_file(org, abandoned.error_file_id))
    assert [(e["custom_id"], (e["error"] or {}).get("code")) for e in errors] == [
        ("req-2", "batch_expired"), ("req-3", None), ("req-4", "batch_expired"),
        ("req-5", "batch_expired")]
    assert Batch.objects.get(pk=held.pk).status == BatchStatus.IN_PROGRESS
