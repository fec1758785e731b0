# SPDX-License-Identifier: Apache-2.0
"""Deeply nested JSON bodies are refused with a 400 in the protocol's own shape (DRF on
/api, OpenAI's error object on /v1), never a RecursionError and an HTML 500."""

from __future__ import annotations

import pytest

from potluck import jsonbody

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000  # the example: 1,000 nested arrays


def _nest(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_a_thousand_deep_body_on_api_keys_is_a_drf_400(org, client_for):
    client = client_for(org, ["read", "write"])

    response = client.post("/api/keys", DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "JSON parse error - JSON nested more than 64 levels deep"}


def test_a_thousand_deep_field_value_on_api_keys_is_refused_too(org, client_for):
    body = '{"name": "k", "scopes": ' + DEEP + "}"

    response = client_for(org, ["read", "write"]).post("/api/keys", body,
                                                       content_type="application/json")

    assert response.status_code == 400
    assert "nested more than 64 levels" in response.json()["detail"]


def test_a_thousand_deep_body_on_v1_batches_is_an_openai_400(org, client_for):
    body = '{"input_file_id": "file-x", "endpoint": "/v1/chat/completions", ' \
           '"completion_window": "24h", "metadata": ' + DEEP + "}"

    response = client_for(org).post("/v1/batches", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": {
        "message": "JSON parse error - JSON nested more than 64 levels deep",
        "type": "invalid_request_error", "param": None, "code": None}}


def test_deeper_than_orjson_itself_allows_is_refused_the_same_way(org, client_for):
    response = client_for(org).post("/v1/batches", _nest(5000),
                                    content_type="application/json")

    assert response.status_code == 400
    assert "nested more than 64 levels" in response.json()["error"]["message"]


def test_sign_in_with_a_deep_body_is_a_400_before_anything_else(db):
    from rest_framework.test import APIClient

    client = APIClient()
    response = client.post("/api/session", '{"email": ' + DEEP + "}",
                           content_type="application/json")

    assert response.status_code == 400


def test_bodies_at_the_limit_still_parse_and_bad_json_is_a_400(org, client_for):
    client = client_for(org)
    at_limit = '{"name": "deep-but-fine", "expires_at": null, "x": ' + _nest(63) + "}"

    ok = client.post("/api/keys", at_limit, content_type="application/json")
    broken = client.post("/api/keys", '{"name": ', content_type="application/json")

    assert ok.status_code == 201, ok.content
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error - ")


@pytest.mark.parametrize(("text", "deep"), [
    ("1", False), ("[]", False), (_nest(64), False), (_nest(65), True),
    ('{"a": ' * 64 + "1" + "}" * 64, False), ('{"a": ' * 65 + "1" + "}" * 65, True),
    ('["[[[[[[", {"b": [[]]}]', False),  # brackets inside strings are not depth
    (_nest(1000), True), (_nest(100_000), True),
])
def test_the_loader_counts_levels_of_arrays_and_objects(text, deep):
    if deep:
        with pytest.raises(jsonbody.TooDeeplyNested) as refused:
            jsonbody.loads(text)
        assert refused.value.max_depth == 64
    else:
        assert jsonbody.loads(text.encode()) == jsonbody.loads(text)


@pytest.mark.parametrize("text", ["NaN", "[1,", '{"a": 1} x', '"\\ud800"', ""])
def test_the_loader_refuses_what_is_not_json(text):
    with pytest.raises(jsonbody.InvalidJSON) as refused:
        jsonbody.loads(text)
    assert not isinstance(refused.value, jsonbody.TooDeeplyNested)


def test_the_loader_takes_a_custom_limit_and_the_walk_needs_no_recursion():
    assert jsonbody.loads("[[1]]", max_depth=2) == [[1]]
    with pytest.raises(jsonbody.TooDeeplyNested):
        jsonbody.loads("[[[1]]]", max_depth=2)
    value: list = []
    for _ in range(50_000):  # far past Python's recursion limit
        value = [value]
    assert jsonbody.depth_exceeds(value, 64)
    assert not jsonbody.depth_exceeds(value, 50_001)
