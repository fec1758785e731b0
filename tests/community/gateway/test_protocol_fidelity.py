# SPDX-License-Identifier: Apache-2.0
"""Inputs real clients send that OpenAI-compatible servers get wrong (issue 13), each the
example of a kind: wrong types are 400s naming their param, never a 500; every error a
client gets is an OpenAI error object; a model states the endpoints it serves; a stream
the client cut off still records the prompt tokens the replica processed."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.slow

CHAT = [{"role": "user", "content": "hi"}]


def post(client: httpx.Client, gateway, key: str, path: str, body: object) -> httpx.Response:
    return client.post(gateway.v1 + path, content=json.dumps(body),
                       headers={"authorization": f"Bearer {key}",
                                "content-type": "application/json"})


def assert_openai_error(response: httpx.Response, status: int, *, param=None, code=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.mark.parametrize("value", [True, "yes", [1], 1])
def test_a_wrong_stream_options_is_a_400_and_the_connection_lives_on(
        serving, upstream, gateway, value):
    serving.model("demo", replica_ports=(upstream.port,))
    with httpx.Client(timeout=20) as client:  # one keep-alive connection for all
        for path, body in (("/chat/completions", {"messages": CHAT}),
                           ("/completions", {"prompt": "hi"})):
            response = post(client, gateway, serving.key, path,
                            {"model": "demo", "stream": True, "stream_options": value, **body})
            assert_openai_error(response, 400, param="stream_options", code="invalid_type")
        assert post(client, gateway, serving.key, "/completions",
                    {"model": "demo", "prompt": "hi"}).status_code == 200
    assert upstream.bodies and all(b.get("stream_options") in (None, {"include_usage": True})
                                   for b in upstream.bodies)


@pytest.mark.parametrize("body,param,code", [
    ({"messages": []}, "messages", "empty_array"),
    ({"messages": "hi"}, "messages", "invalid_type"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.[0].content", "invalid_type"),
    ({"messages": [{"content": "hi"}]}, "messages.[0].role", "missing_required_parameter"),
    ({"messages": CHAT, "stream": "yes"}, "stream", "invalid_type"),
    ({"messages": CHAT, "temperature": 9}, "temperature", "decimal_above_max_value"),
    ({"messages": CHAT, "n": 0}, "n", "integer_below_min_value"),
    ({"messages": CHAT, "stop": [1]}, "stop.[0]", "invalid_type"),
    ({"messages": CHAT, "max_tokens": True}, "max_tokens", "invalid_type"),
])
def test_every_400_names_the_parameter_at_fault(serving, upstream, gateway, body, param,
                                                code):
    serving.model("demo", replica_ports=(upstream.port,))
    response = httpx.post(gateway.v1 + "/chat/completions", timeout=20,
                          headers={"authorization": f"Bearer {serving.key}"},
                          json={"model": "demo", **body})
    assert_openai_error(response, 400, param=param, code=code)
    assert upstream.bodies == []


def test_an_endpoint_the_model_does_not_serve_is_refused_up_front(serving, upstream, gateway):
    serving.model("demo", replica_ports=(upstream.port,))
    with pytest.raises(openai.BadRequestError) as refused:
        openai.OpenAI(base_url=gateway.v1, api_key=serving.key, max_retries=0
                      ).embeddings.create(model="demo", input="hello")
    assert refused.value.body["code"] == "unsupported_endpoint"
    assert "/v1/chat/completions" in refused.value.body["message"]
    assert upstream.bodies == []


def test_replica_errors_reach_clients_in_openai_shape(serving, upstream, gateway,
                                                      misbehaving_upstream):
    """A replica that lacks a route answers FastAPI's {"detail": "Not Found"} (the
    OpenAI SDK reads that as an unknown model); vLLM's own errors carry its own types."""
    serving.model("embedder", replica_ports=(upstream.port,), capabilities=("embeddings",))
    response = httpx.post(gateway.v1 + "/embeddings", timeout=20,
                          headers={"authorization": f"Bearer {serving.key}"},
                          json={"model": "embedder", "input": "hello"})
    error = assert_openai_error(response, 404)
    assert error["type"] == "invalid_request_error" and error["code"] != "model_not_found"

    vllm = misbehaving_upstream("vllm_error400")
    serving.model("strict", replica_ports=(vllm.port,))
    response = httpx.post(gateway.v1 + "/completions", timeout=20,
                          headers={"authorization": f"Bearer {serving.key}"},
                          json={"model": "strict", "prompt": "x"})
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error" and "maximum context" in error["message"]


def test_a_registered_model_that_is_not_deployed_says_so(serving, gateway, org):
    from potluck.registry.models import RegisteredModel, Source

    RegisteredModel.objects.create(name="shelved", organization=org, source=Source.HUGGINGFACE,
                                   repo_id="test/shelved")
    serving.model("demo")  # something listed, so the catalogue has been refreshed since
    deadline = time.monotonic() + 10
    while True:
        response = httpx.post(gateway.v1 + "/completions", timeout=20,
                              headers={"authorization": f"Bearer {serving.key}"},
                              json={"model": "shelved", "prompt": "x"})
        error = assert_openai_error(response, 404, param="model")
        if error["code"] == "model_not_deployed" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert error["code"] == "model_not_deployed" and "not deployed" in error["message"]
    theirs = httpx.post(gateway.v1 + "/completions", timeout=20,
                        headers={"authorization": f"Bearer {serving.other_key}"},
                        json={"model": "shelved", "prompt": "x"})
    assert assert_openai_error(theirs, 404)["code"] == "model_not_found"  # not theirs


def test_a_stream_the_client_cut_off_records_its_prompt_tokens(
        serving, upstream, gateway, redis_conn):
    serving.model("demo", replica_ports=(upstream.port,))
    upstream.behaviour.mode = "slow_stream"
    messages = [{"role": "user", "content": "one two three four five"}]
    with httpx.stream("POST", gateway.v1 + "/chat/completions", timeout=20,
                      json={"model": "demo", "stream": True, "messages": messages},
                      headers={"authorization": f"Bearer {serving.key}"}) as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    assert upstream.cancelled.wait(5)
    deadline = time.monotonic() + 10
    while not redis_conn.xlen(STREAM_KEY):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [(_, fields)] = redis_conn.xrange(STREAM_KEY)
    event = decode(fields)
    assert event.status == 499
    assert event.prompt_tokens == 5  # the fake replica's tokenizer: one per word
    assert event.completion_tokens >= 1
    assert upstream.tokenized and upstream.tokenized[0]["messages"] == messages


def test_a_replica_dying_between_headers_and_first_chunk_is_retried(
        serving, upstream, gateway, misbehaving_upstream):
    dying = misbehaving_upstream("headers_then_die")
    serving.model("demo", replica_ports=(dying.port, upstream.port))
    sdk = openai.OpenAI(base_url=gateway.v1, api_key=serving.key, max_retries=0, timeout=20)
    for _ in range(4):
        text = "".join(c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
            model="demo", stream=True, messages=CHAT) if c.choices)
        assert text == "w0 w1 w2 "
    assert dying.bodies  # it was tried, and the client never saw it
