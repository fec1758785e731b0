# SPDX-License-Identifier: Apache-2.0
"""Each line of a batch goes where the gateway would send it, through the same policies
and retry rules, and its answer or failure lands in OpenAI's output and error files;
problems with the file itself fail the batch naming the lines."""

from __future__ import annotations

import pytest
from batch_lines import read_jsonl, request_line
from batch_runs import (
    closed_port,
    new_batch,
    rid,
    stored_file,
)

from potluck import extensions
from potluck.batches import runner
from potluck.batches.models import Batch, BatchResult, BatchStatus
from potluck.files import services as files
from potluck.files.models import Purpose
from potluck.inference.policies import Policy, Refusal
from potluck.registry.models import Kind, RegisteredModel, Source
from potluck.serving.adapters import server_name
from potluck.serving.models import Deployment, Replica
from potluck.usage.models import UsageRecord
from potluck.usage.rollup import roll_up
from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_a_line_that_asks_to_stream_is_refused_at_upload(org, batch_file):
    """Issue 13.3: a line with "stream": true completed as "succeeded" with raw SSE text
    as its body and its tokens unmetered. A batch line is answered as one JSON body, so
    such a file is refused when it is uploaded, naming the line."""
    from potluck.errors import InvalidInput

    streaming = request_line(2)
    streaming["body"]["stream"] = True
    with pytest.raises(InvalidInput) as refused:
        batch_file(org, [request_line(1), streaming])
    assert "line 2" in refused.value.message and "stream" in refused.value.message


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
