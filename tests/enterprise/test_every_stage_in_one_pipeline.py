# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Every enterprise stage in one pipeline: with a licence granting billing, credits and
compliance (which brings the audit trail), the /v1 gateway (its ASGI application, in this
process, in front of the fake replica tests/fake_upstream.py) runs each request through
the audit trail (order 50), the rate limiter (100), budgets (200), credits (210), the
compliance guardrails (300) and the usage meter (1000), as
potluck/inference/policies.py says: ``on_request`` outermost first, ``on_response`` and
stream transformers innermost first, ``on_finish`` in order, once.

- A request served: each stage's hooks ran in that order; the prompt is redacted before
  the replica and the answer carries the disclaimer.
- A request refused by budgets (an early stage): the later stages' ``on_request`` never
  ran, yet every stage's ``on_finish`` did, so the audit log and the usage meter record
  the refusal.
- A streamed request passes the compliance transformer (the card split over events is
  masked, the disclaimer added once) and is metered once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_upstream import FakeUpstream, UpstreamThread
from waiting import wait_for

from potluck.inference.policies import Policy

pytestmark = pytest.mark.django_db(transaction=True)

MODEL, VARIANT = "demo", "demo:finance"
CARD = "4111 1111 1111 1111"
DISCLAIMER = "This is general information, not financial advice."
# The documented order of each stage (module docstrings of each policy).
DOCUMENTED = [("compliance-audit", 50), ("rate-limits", 100), ("billing-budgets", 200),
              ("credits", 210), ("compliance-guardrails", 300), ("usage-meter", 1000)]
HOOKS = ("on_request", "on_response", "stream_transformer", "on_finish")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    thread = UpstreamThread(FakeUpstream())
    yield thread.start()
    thread.stop()


@pytest.fixture
def stack(licensed, upstream, settings, tmp_path, redis_conn):
    """Everything licensed; a served base with a published finance variant; prices."""
    from potluck.accounts import services as accounts
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState
    from potluck_enterprise.billing import pricebook

    settings.DATA_DIR = tmp_path / "data"
    licensed(features=["billing", "credits", "compliance"])
    prices = {"input": "1000", "output": "2000", "request_fee": "0.001"}
    pricebook.create_version({"effective_from": "2020-01-01T00:00:00Z",
                              "models": {MODEL: prices, VARIANT: prices}})
    base = RegisteredModel.objects.create(name=MODEL, source=Source.HUGGINGFACE,
                                          repo_id="test/demo", context_length=512)
    deployment = Deployment.objects.create(model=base, replicas=1)
    node = Node.objects.create(name="node-demo", queue="node.demo", hostname="localhost")
    Replica.objects.create(deployment=deployment, node=node, port=upstream.port,
                           state=ReplicaState.READY)
    org = accounts.create_organization("Acme")
    from django.utils import timezone

    from potluck_enterprise.compliance import services
    from potluck_enterprise.compliance.models import Variant, VariantState

    Variant.objects.create(organization=org, name=VARIANT, base=base, model=base,
                           profile=services.ensure_profile(org, "finance"),
                           candidate_name=f"{VARIANT}@candidate-test",
                           state=VariantState.PUBLISHED, published_at=timezone.now())
    return org


def instrument(monkeypatch, policies: tuple[Policy, ...]) -> list[tuple[str, str, str]]:
    """Wrap each stage's own hooks (never adding one it lacks) to log (request, stage,
    hook) as they run; a stream transformer's ``on_end`` is logged as ``on_end``."""
    calls: list[tuple[str, str, str]] = []

    def hooked(hook: str, original: Any) -> Any:
        if hook == "stream_transformer":
            def transformer(self, ctx):
                calls.append((ctx.request_id, self.name, hook))
                made = original(self, ctx)
                if made is not None:
                    end = made.on_end

                    async def on_end():
                        calls.append((ctx.request_id, self.name, "on_end"))
                        return await end()
                    made.on_end = on_end
                return made
            return transformer

        async def call(self, ctx, *args):
            calls.append((ctx.request_id, self.name, hook))
            return await original(self, ctx, *args)
        return call

    for policy in policies:
        cls = type(policy)
        for hook in HOOKS:
            original = getattr(cls, hook)
            if original is not getattr(Policy, hook):
                monkeypatch.setattr(cls, hook, hooked(hook, original))
    return calls


def of(calls: list[tuple[str, str, str]], request_id: str, hook: str) -> list[str]:
    return [stage for rid, stage, h in calls if rid == request_id and h == hook]


def defining(policies: tuple[Policy, ...], hook: str) -> list[str]:
    return [p.name for p in policies if getattr(type(p), hook) is not getattr(Policy, hook)]


def test_every_stage_runs_in_order_refusals_are_recorded_and_streams_metered_once(
        stack, upstream, monkeypatch, key_for, redis_conn):
    from potluck import extensions
    from potluck.gateway.app import Gateway
    from potluck.usage import rollup, stream
    from potluck.usage.models import UsageRecord
    from potluck_enterprise.audit.models import AuditEntry
    from potluck_enterprise.billing import budgets

    org = stack
    key = key_for(org, ["inference"])
    from potluck.accounts.models import ApiKey

    limited_secret = key_for(org, ["inference"], name="limited")
    limited = ApiKey.objects.get(name="limited")
    budgets.save_budget(org, {"period": "day", "api_key": limited, "hard_limit": "0.000001"})
    extensions.run_refreshers()  # this process's budget view (the gateway's too)

    async def scenario() -> dict[str, Any]:
        gateway = Gateway()
        await gateway.start()
        try:
            pipeline = gateway.core.pipelines.get()
            assert [(p.name, p.order) for p in pipeline.policies] == DOCUMENTED
            calls = instrument(monkeypatch, pipeline.policies)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway),
                                         base_url="http://gateway", timeout=30) as client:
                def ask(secret: str, **body: Any):
                    return client.post("/v1/chat/completions",
                                       headers={"authorization": f"Bearer {secret}"},
                                       json={"model": VARIANT, **body})

                upstream.behaviour.pieces = ["Your card 4111 11", "11 1111 1", "111 is ok."]
                served = await ask(key, messages=[{"role": "user", "content": f"card {CARD}"}])
                seen = upstream.bodies[-1]
                calls_to_upstream = len(upstream.bodies)
                refused = await ask(limited_secret, max_tokens=50,
                                    messages=[{"role": "user", "content": "hi"}])
                assert len(upstream.bodies) == calls_to_upstream  # never reached it
                streamed = await ask(key, stream=True,
                                     messages=[{"role": "user", "content": "status?"}])
                with_usage = await ask(key, stream=True, stream_options={"include_usage": True},
                                       messages=[{"role": "user", "content": "again?"}])
            return {"pipeline": pipeline, "calls": calls, "served": served, "seen": seen,
                    "refused": refused, "streamed": streamed, "with_usage": with_usage}
        finally:
            from django.db import connections

            await gateway.db.run(connections.close_all)
            await gateway.shutdown()

            for policy in gateway.core.pipelines.get().policies:  # the audit's own thread
                executor = getattr(policy, "_executor", None)
                if executor is not None:
                    executor.submit(connections.close_all).result()

    out = asyncio.run(scenario())
    policies, calls = out["pipeline"].policies, out["calls"]
    inward = defining(policies, "on_request")  # in `order`: outermost first
    in_order_finish = defining(policies, "on_finish")
    outward = list(reversed(defining(policies, "on_response")))
    # What the stages' docstrings say they hook: the audit trail and the meter only finish.
    assert inward == ["rate-limits", "billing-budgets", "credits", "compliance-guardrails"]
    assert in_order_finish == ["compliance-audit", "rate-limits", "billing-budgets",
                               "credits", "usage-meter"]

    # Served: each hook in the documented order, on_finish once per stage.
    served = out["served"]
    assert served.status_code == 200, served.text
    rid = served.headers["x-request-id"]
    assert of(calls, rid, "on_request") == inward
    assert of(calls, rid, "on_response") == outward and outward
    assert of(calls, rid, "on_finish") == in_order_finish
    assert out["seen"]["model"] == MODEL
    assert out["seen"]["messages"][0]["content"] == "card [CARD]"
    assert served.json()["model"] == VARIANT
    assert served.json()["choices"][0]["message"]["content"] == (
        f"Your card **** **** **** 1111 is ok.\n\n{DISCLAIMER}")

    # Refused by budgets (200): the stages inside it never saw the request; every stage
    # still finished it.
    refused = out["refused"]
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    refused_id = refused.headers["x-request-id"]
    assert of(calls, refused_id, "on_request") == inward[:inward.index("billing-budgets") + 1]
    assert of(calls, refused_id, "on_response") == []
    assert of(calls, refused_id, "on_finish") == in_order_finish

    # Streamed: through the compliance transformer once, masked, the disclaimer once.
    streamed = out["streamed"]
    assert streamed.status_code == 200, streamed.text
    stream_id = streamed.headers["x-request-id"]
    events = [json.loads(line[len("data: "):]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]
    text = "".join((e["choices"][0]["delta"].get("content") or "")
                   for e in events if e.get("choices"))
    assert text == f"Your card **** **** **** 1111 is ok.\n\n{DISCLAIMER}"
    assert "4111" not in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")
    assert of(calls, stream_id, "stream_transformer") == list(reversed(
        defining(policies, "stream_transformer")))
    assert of(calls, stream_id, "on_end") == ["compliance-guardrails"]
    assert of(calls, stream_id, "on_request") == inward
    assert of(calls, stream_id, "on_finish") == in_order_finish

    # A client that asked for the usage chunk gets it last, after the compliance text,
    # naming the variant it asked for (never the base that served it).
    with_usage = out["with_usage"]
    usage_id = with_usage.headers["x-request-id"]
    lines = [line[len("data: "):] for line in with_usage.text.splitlines()
             if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert {c["model"] for c in chunks} == {VARIANT}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == (
        f"Your card **** **** **** 1111 is ok.\n\n{DISCLAIMER}")

    # Metered once each (one usage event on the stream), the refusal included; the
    # audit log has them all.
    ids = {rid, refused_id, stream_id, usage_id}
    usage_events = [stream.decode(fields)
                    for _, fields in redis_conn.xrange(stream.STREAM_KEY)]
    assert sorted(e.request_id for e in usage_events) == sorted(ids)

    def recorded() -> bool:
        rollup.roll_up("pipeline-test", 500)
        return UsageRecord.objects.filter(request_id__in=ids).count() >= len(ids)

    wait_for(recorded, 30, "four usage records")
    rows = {r.request_id: r for r in UsageRecord.objects.filter(request_id__in=ids)}
    assert UsageRecord.objects.filter(request_id__in=ids).count() == 4
    assert (rows[stream_id].stream, rows[stream_id].prompt_tokens,
            rows[stream_id].completion_tokens) == (True, 7, 3)
    assert (rows[refused_id].status, rows[refused_id].completion_tokens) == (429, 0)
    audited = {e.data["request_id"]: e.data for e in
               AuditEntry.objects.filter(action="inference.request")}
    assert set(audited) == ids
    assert (audited[refused_id]["status"], audited[refused_id]["outcome"],
            audited[refused_id]["error_code"]) == (429, "refused", "budget_exceeded")
    assert audited[stream_id]["stream"] is True and audited[rid]["status"] == 200
    assert audited[stream_id]["detections"] == {"response:CARD:mask": 1}
    assert len(audited[stream_id]["answer_sha256"]) == 64
