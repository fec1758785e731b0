# SPDX-License-Identifier: Apache-2.0
"""Property-based bodies against a real gateway process (the fake replica behind it, so any
5xx is Potluck's own): wrong types, missing and extra fields, huge and negative numbers,
odd unicode. Whatever comes, the answer is never a 5xx, an error is always OpenAI's
shape, and every request that reached the inference core leaves exactly one usage record
(none for a request refused before its organization was known)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.slow

EXAMPLES = 150  # per endpoint; the whole file stays well under a minute

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "robot"])
     | json_values},
    optional={"content": odd_text | json_values, "name": json_values})

FIELDS = {
    "/v1/chat/completions": {"messages": st.lists(message, max_size=3) | json_values},
    "/v1/completions": {"prompt": odd_text | st.lists(st.integers(-5, 50_000), max_size=5)
                        | json_values},
    "/v1/embeddings": {"input": odd_text | st.lists(odd_text, max_size=3) | json_values},
}
COMMON = {"stream": st.booleans() | json_values, "stream_options": json_values,
          "max_tokens": st.integers(-5, 10**9) | json_values, "n": json_values,
          "temperature": st.floats(-5, 5) | json_values, "top_p": json_values,
          "stop": json_values, "logprobs": json_values, "seed": json_values,
          "user": json_values, "tools": json_values, "top_k": json_values}


def bodies(path: str) -> st.SearchStrategy[Any]:
    known = st.fixed_dictionaries(
        {"model": st.sampled_from(["demo", "demo", "nope", ""]) | json_values},
        optional={**FIELDS[path], **COMMON})
    extra = st.dictionaries(st.text(max_size=10), json_values, max_size=3)
    objects = st.builds(lambda a, b: {**b, **a}, known, extra)
    return objects | json_values  # sometimes not even an object


def check_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str) and error["message"]
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert "choices" in response.json()


@pytest.fixture
def fuzz_target(serving, upstream, gateway):
    serving.model("demo", replica_ports=(upstream.port,))
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {serving.key}"}) as client:
        yield gateway, client


@pytest.mark.parametrize("path", list(FIELDS))
def test_no_body_makes_the_gateway_fail_or_lose_usage(fuzz_target, redis_conn, path):
    gateway, client = fuzz_target
    sent: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(body=bodies(path))
    def one(body: Any) -> None:
        response = client.post(gateway.url + path, content=json.dumps(body),
                               headers={"content-type": "application/json"})
        check_answer(response)
        sent.append(response.headers["x-request-id"])

    one()
    # Every request past authentication is one usage record, and nothing else is.
    deadline = time.monotonic() + 20
    while True:
        recorded = [decode(fields).request_id for _, fields in redis_conn.xrange(STREAM_KEY)]
        if len(recorded) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(recorded) == sorted(sent)
    print(f"{path}: {len(sent)} bodies, no 5xx, {len(recorded)} usage records")
