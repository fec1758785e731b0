# SPDX-License-Identifier: Apache-2.0
"""Property-based bodies for the durable OpenAI endpoints (files, fine-tuning jobs,
batches), served by Django in the same web process: never a 5xx, always OpenAI's error
shape, and a refused request leaves no row behind."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

EXAMPLES = 100

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)

JOBS = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["demo", "nope"]) | json_values,
    "training_file": st.sampled_from(["file-missing"]) | json_values,
    "validation_file": json_values, "suffix": json_values, "seed": json_values,
    "metadata": json_values, "adapter": json_values,
    "hyperparameters": st.fixed_dictionaries({}, optional={
        "n_epochs": json_values, "batch_size": json_values,
        "learning_rate_multiplier": json_values}) | json_values})
BATCHES = st.fixed_dictionaries({}, optional={
    "input_file_id": st.sampled_from(["file-missing"]) | json_values,
    "endpoint": st.sampled_from(["/v1/completions", "/v1/responses"]) | json_values,
    "completion_window": st.sampled_from(["24h", "1h"]) | json_values,
    "metadata": json_values})


def check_error_or_success(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error


@pytest.fixture
def client(serving, gateway):
    serving.model("demo")
    with httpx.Client(base_url=gateway.url, timeout=30,
                      headers={"authorization": f"Bearer {serving.key}"}) as http:
        yield http


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def test_fine_tuning_job_bodies(client):
    from potluck.finetune.models import FineTuningJob

    @FUZZ
    @given(body=JOBS | json_values)
    def one(body: Any) -> None:
        check_error_or_success(client.post("/v1/fine_tuning/jobs", content=json.dumps(body),
                                           headers={"content-type": "application/json"}))

    one()
    assert not FineTuningJob.objects.exists()  # no file: every one refused, nothing written


def test_batch_bodies(client):
    from potluck.batches.models import Batch

    @FUZZ
    @given(body=BATCHES | json_values)
    # Found by this fuzzer: an endpoint that is not a string was a 500 (unhashable list).
    @example(body={"input_file_id": "file-x", "endpoint": ["/v1/completions"],
                   "completion_window": "24h"})
    def one(body: Any) -> None:
        check_error_or_success(client.post("/v1/batches", content=json.dumps(body),
                                           headers={"content-type": "application/json"}))

    one()
    assert not Batch.objects.exists()


def test_file_uploads(client):
    from potluck.files.models import StoredFile

    @FUZZ
    @given(purpose=st.sampled_from(["fine-tune", "batch", "assistants"]) | st.text(max_size=10),
           name=st.text(max_size=30), data=st.binary(max_size=300))
    def one(purpose: str, name: str, data: bytes) -> None:
        response = client.post("/v1/files", data={"purpose": purpose},
                               files={"file": (name or "f", data)})
        check_error_or_success(response)
        if response.status_code < 400:  # an upload that passed is whole and listed
            stored = StoredFile.objects.get(pk=response.json()["id"])
            assert stored.bytes == len(data)

    one()
