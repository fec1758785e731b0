# SPDX-License-Identifier: Apache-2.0
"""The runner's own logic against fake replicas: routing, per-line and file-level
failures, retries, resumption without re-sending, cancellation, expiry, and usage.

The runner runs in the test process here (``run_batch`` is what the Celery task
calls); the end-to-end test runs it in a real node agent against real vLLM.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

import pytest
from batch_lines import read_jsonl, request_line
from django.db import OperationalError, connections
from django.utils import timezone
from waiting import wait_for

from potluck import extensions
from potluck.accounts import services as accounts
from potluck.batches import finalize, lease, results, runner, services
from potluck.batches import input as batch_input
from potluck.batches.models import Batch, BatchResult, BatchStatus
from potluck.files import services as files
from potluck.files.models import Purpose
from potluck.files.storage import get_storage
from potluck.inference.policies import Policy, Refusal
from potluck.registry.models import Kind, RegisteredModel, Source
from potluck.serving.adapters import server_name
from potluck.serving.models import Deployment, Replica
from potluck.usage.models import UsageRecord
from potluck.usage.rollup import roll_up
from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_key(org):
    key, _ = accounts.create_api_key(org, "batch-key")
    return key


@pytest.fixture
def quick(monkeypatch):
    """Short heartbeats and back-offs, so cancellation and expiry are seen quickly."""
    monkeypatch.setenv("POTLUCK_BATCH_HEARTBEAT_SECONDS", "0.1")
    monkeypatch.setenv("POTLUCK_BATCH_LEASE_SECONDS", "3")


def new_batch(org, stored, api_key=None, endpoint: str = "/v1/completions") -> Batch:
    return services.create_batch(org, {"input_file_id": stored.id, "endpoint": endpoint,
                                       "completion_window": "24h"}, api_key=api_key)


def in_background(batch_id: str) -> tuple[threading.Thread, list[str]]:
    """run_batch in a thread of its own (as a worker thread runs it)."""
    said: list[str] = []

    def work() -> None:
        try:
            said.append(runner.run_batch(batch_id))
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, said


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored_file(org, file_id: str | None):
    assert file_id is not None
    return files.get_file(org, file_id)


def ran_some_lines(batch: Batch, stored, token: str, lines: Iterable[int]) -> None:
    """What a runner holding ``token`` leaves after recording ``lines``: the batch
    in progress, still leased to it, those lines with results ``{"recorded": n}``."""
    assert lease.claim(batch.pk, token) is not None
    assert finalize.start(batch, token, batch_input.check_input(stored, batch.endpoint))
    results.record(batch.pk, [results.Outcome(line=n, custom_id=f"req-{n}", model="fake-model",
                                              status_code=200, body={"recorded": n})
                              for n in lines])


def rid(batch: Batch, line: int) -> str:
    return f"batch_req_{batch.pk.removeprefix('batch_')}_{line}"


def test_a_batch_completes_with_per_line_failures_in_openai_files(
        org, api_key, batch_file, fake_replicas, served, redis_conn):
    replica = fake_replicas()
    served("fake-model", [replica.port])
    lines = [request_line(n) for n in range(1, 9)]
    lines.append(request_line(9, model="no-such-model"))
    lines.append(request_line(10, top_k=-5))  # the replica answers 400
    batch = new_batch(org, batch_file(org, lines), api_key)

    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    batch.refresh_from_db()
    assert (batch.request_total, batch.request_completed, batch.request_failed) == (10, 8, 2)
    assert batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert (batch.input_tokens, batch.output_tokens) == (8 * 3, 8 * 4)  # 200s only
    assert batch.lease_owner == "" and batch.errors is None

    output = stored_file(org, batch.output_file_id)
    assert (output.purpose, output.line_count, output.filename) == (
        Purpose.BATCH_OUTPUT, 8, f"{batch.pk}_output.jsonl")
    answered = read_jsonl(output)
    assert [line["custom_id"] for line in answered] == [f"req-{n}" for n in range(1, 9)]
    for n, line in enumerate(answered, start=1):
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert line["id"] == rid(batch, n) and line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"] == rid(batch, n)
        assert line["response"]["body"]["choices"][0]["text"] == f"echo line {n}"
    unknown, refused = read_jsonl(stored_file(org, batch.error_file_id))
    assert unknown == {"id": rid(batch, 9), "custom_id": "req-9", "response": None,
                       "error": {"code": "model_not_found", "message":
                                 "The model 'no-such-model' does not exist or you do not have "
                                 "access to it."}}
    assert refused["custom_id"] == "req-10" and refused["error"] is None
    assert refused["response"]["status_code"] == 400
    error = refused["response"]["body"]["error"]  # in OpenAI's shape, not vLLM's
    assert error == {"message": "top_k must be -1 or at least 1",
                     "type": "invalid_request_error", "param": None, "code": None}
    # The unknown model's line was never sent; every other line exactly once.
    assert sorted(replica.request_ids) == sorted(
        [rid(batch, n) for n in range(1, 9)] + [rid(batch, 10)])

    events = [decode(fields) for _, fields in redis_conn.xrange(STREAM_KEY)]
    assert sorted(e.request_id for e in events) == sorted(rid(batch, n) for n in range(1, 11))
    assert {e.request_id: e.status for e in events}[rid(batch, 9)] == 404
    assert {e.request_id: e.status for e in events}[rid(batch, 10)] == 400
    assert {e.api_key_id for e in events} == {str(api_key.pk)}
    assert {e.endpoint for e in events} == {"completions"}
    assert roll_up("batch-test", min_idle_ms=0).inserted == 10
    records = UsageRecord.objects.for_org(org).filter(request_id__startswith="batch_req_")
    assert records.count() == 10
    assert sum(r.completion_tokens for r in records) == 8 * 4


def test_lines_route_like_the_gateway(org, other_org, batch_file, fake_replicas, served):
    public, own, base = fake_replicas(), fake_replicas(), fake_replicas()
    served("shared", [public.port])
    served("shared", [own.port], organization=org)  # the org's own name wins
    served("private", [public.port], organization=other_org)
    base_model = served("base", [base.port], organization=org)
    Deployment.objects.filter(model=base_model).update(engine_args={"enable_lora": True})
    adapter = RegisteredModel.objects.create(
        name="my-adapter", organization=org, kind=Kind.ADAPTER, base=base_model,
        source=Source.HUGGINGFACE, repo_id="test/my-adapter")
    Replica.objects.filter(deployment__model=base_model).update(
        adapters=[server_name(adapter.id)])
    lines = [request_line(1, model="shared"), request_line(2, model="my-adapter"),
             request_line(3, model="private")]
    batch = new_batch(org, batch_file(org, lines))

    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    assert own.request_ids == [rid(batch, 1)] and base.request_ids == [rid(batch, 2)]
    # The adapter goes upstream under its server name; the answer names it as the org does.
    assert base.models == [server_name(adapter.id)]
    output = read_jsonl(stored_file(org, Batch.objects.get(pk=batch.pk).output_file_id))
    assert [line["response"]["body"]["model"] for line in output] == ["shared", "my-adapter"]
    assert public.request_ids == []  # another org's model is not this org's to use
    [error] = read_jsonl(stored_file(org, Batch.objects.get(pk=batch.pk).error_file_id))
    assert (error["custom_id"], error["error"]["code"]) == ("req-3", "model_not_found")


def test_a_line_that_asks_to_stream_is_refused_at_validation(org, batch_file, fake_replicas,
                                                             served):
    """Issue 13.3: a line with "stream": true completed as "succeeded" with raw SSE text
    as its body and its tokens unmetered. A batch line is answered as one JSON body."""
    replica = fake_replicas()
    served("fake-model", [replica.port])
    streaming = request_line(2)
    streaming["body"]["stream"] = True
    batch = new_batch(org, batch_file(org, [request_line(1), streaming]))
    assert runner.run_batch(batch.pk) == BatchStatus.FAILED
    [error] = Batch.objects.get(pk=batch.pk).errors
    assert (error["code"], error["line"], error["param"]) == ("invalid_request", 2,
                                                              "body.stream")
    assert replica.request_ids == []


def test_file_level_problems_fail_the_batch_naming_the_lines(org, batch_file, fake_replicas,
                                                             served):
    replica = fake_replicas()
    served("fake-model", [replica.port])
    chat = "/v1/chat/completions"
    lines = [request_line(n, url=chat if n not in (2, 4) else "/v1/completions")
             for n in range(1, 6)]
    batch = new_batch(org, batch_file(org, lines), endpoint=chat)

    assert runner.run_batch(batch.pk) == BatchStatus.FAILED
    batch.refresh_from_db()
    assert batch.failed_at is not None and batch.in_progress_at is None
    assert [(e["code"], e["line"], e["param"]) for e in batch.errors] == [
        ("url_mismatch", 2, "url"), ("url_mismatch", 4, "url")]
    assert batch.errors[0]["message"] == ("The url '/v1/completions' does not match the "
                                          "batch's endpoint '/v1/chat/completions'.")
    assert replica.request_ids == [] and not BatchResult.objects.exists()
    assert batch.output_file_id is None and batch.error_file_id is None

    gone = new_batch(org, batch_file(org, [request_line(1)]))
    files.delete_file(org, gone.input_file_id)
    assert runner.run_batch(gone.pk) == BatchStatus.FAILED
    [error] = Batch.objects.get(pk=gone.pk).errors
    assert (error["code"], error["param"]) == ("file_not_found", "input_file_id")


def test_503s_and_unreachable_replicas_are_retried_elsewhere_then_reported(
        org, batch_file, fake_replicas, served, monkeypatch):
    monkeypatch.setenv("POTLUCK_UPSTREAM_MAX_ATTEMPTS", "3")
    flaky, steady = fake_replicas(fail_first=2), fake_replicas()
    served("fake-model", [flaky.port, closed_port(), steady.port])
    always_busy = fake_replicas(always=503)
    served("busy-model", [always_busy.port])
    served("gone-model", [closed_port()])
    lines = [request_line(n) for n in range(1, 7)]
    lines += [request_line(7, model="busy-model"), request_line(8, model="gone-model")]
    batch = new_batch(org, batch_file(org, lines))

    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    batch.refresh_from_db()
    assert (batch.request_completed, batch.request_failed) == (6, 2)
    answered = BatchResult.objects.filter(batch=batch, line__lte=6)
    assert {r.status_code for r in answered} == {200}
    assert sum(r.attempts for r in answered) > 6  # some went elsewhere after a failure
    busy, gone = read_jsonl(stored_file(org, batch.error_file_id))
    assert busy["response"]["status_code"] == 503 and busy["error"] is None
    assert len(always_busy.request_ids) == 3  # POTLUCK_UPSTREAM_MAX_ATTEMPTS sends, no more
    assert gone["response"] is None and gone["error"]["code"] == "replica_unreachable"
    assert "in 3 attempt(s)" in gone["error"]["message"]


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


def test_cancel_mid_run_lets_in_flight_lines_finish_and_keeps_their_results(
        org, batch_file, fake_replicas, served, quick, monkeypatch):
    monkeypatch.setenv("POTLUCK_BATCH_CONCURRENCY", "2")
    replica = fake_replicas(delay=0.2)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 41)]))
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 4, 30,
             "a few lines done")

    cancelling = services.cancel_batch(org, batch.pk)
    assert cancelling.status == BatchStatus.CANCELLING
    thread.join(30)
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


def test_a_slow_progress_refresh_never_costs_the_runner_its_lease(
        org, batch_file, fake_replicas, served, quick, monkeypatch):
    """The lease is renewed on a thread of its own: progress refreshes slower than the
    whole lease (a loaded database), while sending and while finishing, leave the batch
    to its runner, and no line is sent twice."""
    monkeypatch.setenv("POTLUCK_BATCH_CONCURRENCY", "2")
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
        org, batch_file, fake_replicas, served, quick, monkeypatch):
    """If the database stops answering its renewals, a runner takes no new line once its
    lease may have lapsed: the successor that takes the batch over never races it."""
    monkeypatch.setenv("POTLUCK_BATCH_CONCURRENCY", "2")
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
    thread.join(30)
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


def outage_in(monkeypatch, module: object, name: str) -> list[bool]:
    """Makes ``module.name`` raise OperationalError while the returned flag is true."""
    real = getattr(module, name)
    down = [True]

    def maybe_down(*args: object) -> object:
        if down[0]:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args)

    monkeypatch.setattr(module, name, maybe_down)
    return down


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
        org, batch_file, fake_replicas, served, monkeypatch):
    monkeypatch.setenv("POTLUCK_BATCH_MAX_FAILED_RUNS", "3")
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


def test_a_running_batch_expires_and_unsent_lines_get_batch_expired(
        org, batch_file, fake_replicas, served, quick, monkeypatch):
    monkeypatch.setenv("POTLUCK_BATCH_CONCURRENCY", "1")
    replica = fake_replicas(delay=0.2)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 31)]))
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 2, 30, "two lines")
    Batch.objects.filter(pk=batch.pk).update(expires_at=timezone.now())
    thread.join(30)

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
        finalize.start(batch, owner, batch_input.check_input(stored, batch.endpoint))
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


def test_request_policies_apply_to_batch_lines(org, batch_file, fake_replicas, served):
    finished: list[tuple[str, str, int, str]] = []

    class NoSecrets(Policy):
        name = "no-secrets"

        async def on_finish(self, ctx) -> None:
            finished.append((ctx.request_id, ctx.source, ctx.status, ctx.outcome))

        async def on_request(self, ctx) -> None:
            if "secret" in ctx.body.get("prompt", ""):
                raise Refusal("no secrets in prompts")
            ctx.body = {**ctx.body, "max_tokens": 2}

        async def on_response(self, ctx, body: dict) -> dict | None:
            return {**body, "checked": True}

    replica = fake_replicas()
    served("fake-model", [replica.port])
    lines = [request_line(1), request_line(2, prompt="my secret")]
    batch = new_batch(org, batch_file(org, lines))
    extensions.request_policies.register("no-secrets", NoSecrets())
    try:
        assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    finally:
        extensions.request_policies.unregister("no-secrets")
    batch.refresh_from_db()
    [ok] = read_jsonl(stored_file(org, batch.output_file_id))
    assert ok["response"]["body"]["checked"] is True
    assert ok["response"]["body"]["usage"]["completion_tokens"] == 2  # rewritten max_tokens
    [refused] = read_jsonl(stored_file(org, batch.error_file_id))
    assert refused["response"]["status_code"] == 403
    assert refused["response"]["body"]["error"]["code"] == "policy_violation"
    assert replica.request_ids == [rid(batch, 1)]
    # on_finish: once per line, as for an online request
    assert sorted(finished) == [(rid(batch, 1), "batch", 200, "served"),
                                (rid(batch, 2), "batch", 403, "refused")]


def test_a_worker_shutting_down_hands_its_batch_back_to_be_resumed(
        org, batch_file, fake_replicas, served, quick, monkeypatch):
    from potluck.batches.dispatcher import WORKER_SHUTTING_DOWN

    monkeypatch.setenv("POTLUCK_BATCH_CONCURRENCY", "2")
    replica = fake_replicas(delay=0.1)
    served("fake-model", [replica.port])
    batch = new_batch(org, batch_file(org, [request_line(n) for n in range(1, 31)]))
    thread, said = in_background(batch.pk)
    wait_for(lambda: BatchResult.objects.filter(batch=batch).count() >= 4, 30, "4 lines")
    WORKER_SHUTTING_DOWN.set()  # what Celery's worker_shutting_down signal does
    try:
        thread.join(30)
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
