# SPDX-License-Identifier: Apache-2.0
"""/v1/batches: OpenAI's shapes, refusals at create, cancellation, and tenancy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_lines import request_line
from django.utils import timezone

from potluck.batches.models import Batch, BatchStatus

pytestmark = pytest.mark.django_db

BATCH_KEYS = {
    "id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window",
    "status", "output_file_id", "error_file_id", "created_at", "in_progress_at",
    "expires_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
    "cancelling_at", "cancelled_at", "request_counts", "usage", "metadata",
}


@pytest.fixture
def input_file(org, batch_file):
    return batch_file(org, [request_line(i) for i in range(1, 4)])


def create(client, file_id: str, **extra):
    body = {"input_file_id": file_id, "endpoint": "/v1/completions",
            "completion_window": "24h", **extra}
    return client.post("/v1/batches", body, format="json")


def test_create_answers_an_openai_batch_object(org, client_for, input_file):
    response = create(client_for(org), input_file.id, metadata={"job": "nightly"})
    assert response.status_code == 200, response.content
    batch = response.json()
    assert set(batch) == BATCH_KEYS
    assert batch["id"].startswith("batch_") and batch["object"] == "batch"
    assert (batch["status"], batch["input_file_id"], batch["endpoint"]) == (
        "validating", input_file.id, "/v1/completions")
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert batch["expires_at"] - batch["created_at"] == 24 * 3600
    assert batch["metadata"] == {"job": "nightly"}
    assert batch["errors"] is None and batch["output_file_id"] is None
    assert all(batch[k] is None for k in ("in_progress_at", "completed_at", "cancelled_at"))
    row = Batch.objects.get(pk=batch["id"])
    assert row.organization_id == org.pk and row.api_key_id is not None


@pytest.mark.parametrize(("extra", "param", "words"), [
    ({"input_file_id": None}, "input_file_id", "Missing required parameter"),
    ({"endpoint": "/v1/responses"}, "endpoint", "Supported endpoints"),
    ({"endpoint": None}, "endpoint", "Missing required parameter"),
    ({"completion_window": "1h"}, "completion_window", "Only '24h'"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16 pairs"),
    ({"metadata": {"k": 1}}, "metadata.k", "values must be strings"),
    ({"metadata": {"k" * 65: "v"}}, "metadata", "longer than 64"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k", "longer than 512"),
    ({"metadata": ["k", "v"]}, "metadata", "must be an object"),
    ({"output_expires_after": {"anchor": "created_at", "seconds": 60}},
     "output_expires_after", "3600"),
    ({"priority": "high"}, "priority", "Unknown parameter"),
])
def test_create_refuses_bad_parameters_and_leaves_nothing(org, client_for, input_file,
                                                          extra, param, words):
    body = {"input_file_id": input_file.id, "endpoint": "/v1/completions",
            "completion_window": "24h", **extra}
    response = client_for(org).post("/v1/batches", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"], error["message"]
    assert not Batch.objects.exists()


def test_create_refuses_files_it_may_not_or_cannot_use(org, other_org, client_for,
                                                       batch_file):
    client = client_for(org)
    theirs = batch_file(other_org, [request_line(1)])
    unknown = create(client, "file-doesnotexist")
    foreign = create(client, theirs.id)
    for response, file_id in ((unknown, "file-doesnotexist"), (foreign, theirs.id)):
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("input_file_id", "file_not_found")
        assert error["message"] == (f"Invalid 'input_file_id': no file {file_id!r} in this "
                                    "organization.")
    training = batch_file(org, [{"messages": [{"role": "user", "content": "hi"},
                                              {"role": "assistant", "content": "hello"}]}],
                          purpose="fine-tune")
    wrong = create(client, training.id)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "invalid_file_purpose"
    assert "purpose 'fine-tune'" in wrong.json()["error"]["message"]
    assert not Batch.objects.exists()


def test_another_org_never_sees_nor_cancels_a_batch(org, other_org, client_for, input_file):
    mine, theirs = client_for(org), client_for(other_org)
    batch_id = create(mine, input_file.id).json()["id"]
    for response in (theirs.get(f"/v1/batches/{batch_id}"),
                     theirs.post(f"/v1/batches/{batch_id}/cancel")):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["message"] == f"No batch found with id '{batch_id}'."
    assert theirs.get("/v1/batches").json()["data"] == []
    assert theirs.get(f"/v1/batches?after={batch_id}").status_code == 404
    assert Batch.objects.get(pk=batch_id).status == BatchStatus.VALIDATING
    assert [b["id"] for b in mine.get("/v1/batches").json()["data"]] == [batch_id]
    assert mine.get(f"/v1/batches/{batch_id}").json()["id"] == batch_id


def test_list_pages_newest_first_with_after_and_limit(org, client_for, input_file):
    client = client_for(org)
    ids = [create(client, input_file.id).json()["id"] for _ in range(3)]
    first = client.get("/v1/batches?limit=2").json()
    assert first["object"] == "list" and first["has_more"] is True
    assert [b["id"] for b in first["data"]] == ids[::-1][:2]
    rest = client.get(f"/v1/batches?limit=2&after={first['last_id']}").json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False
    assert client.get("/v1/batches?limit=0").status_code == 400


def test_cancel_moves_through_cancelling_and_refuses_finished_batches(org, client_for,
                                                                      input_file):
    client = client_for(org)
    # Not picked up by any runner yet: cancelled at once.
    waiting = create(client, input_file.id).json()["id"]
    response = client.post(f"/v1/batches/{waiting}/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    assert client.post(f"/v1/batches/{waiting}/cancel").json()["status"] == "cancelled"

    # Held by a live runner: cancelling, which the runner turns into cancelled.
    running = create(client, input_file.id).json()["id"]
    Batch.objects.filter(pk=running).update(
        status=BatchStatus.IN_PROGRESS, lease_owner="worker:1:abc",
        lease_expires_at=timezone.now() + timedelta(minutes=1))
    body = client.post(f"/v1/batches/{running}/cancel").json()
    assert body["status"] == "cancelling" and body["cancelling_at"] is not None
    assert client.post(f"/v1/batches/{running}/cancel").json()["status"] == "cancelling"

    done = create(client, input_file.id).json()["id"]
    Batch.objects.filter(pk=done).update(status=BatchStatus.COMPLETED,
                                         completed_at=timezone.now())
    refused = client.post(f"/v1/batches/{done}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == f"Cannot cancel batch {done}: it is completed."
    assert Batch.objects.get(pk=done).status == BatchStatus.COMPLETED


def test_keys_and_roles_need_the_right_capability(org, client_for, user_client, input_file):
    reader = client_for(org, ["read"])
    assert reader.get("/v1/batches").status_code == 200
    assert create(reader, input_file.id).status_code == 403
    assert create(user_client(org, "viewer"), input_file.id).status_code == 403
    member = user_client(org, "member")
    created = create(member, input_file.id)
    assert created.status_code == 200, created.content
    assert Batch.objects.get(pk=created.json()["id"]).created_by == member.user
    unauthenticated = create(type(member)(), input_file.id)
    assert unauthenticated.status_code == 401
