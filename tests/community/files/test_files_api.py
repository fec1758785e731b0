# SPDX-License-Identifier: Apache-2.0
"""/v1/files over HTTP: OpenAI's shapes, errors, scopes, tenancy and pagination."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from file_samples import chat, jsonl, named, request, stored_files

from potluck.files import services
from potluck.files.models import StoredFile

pytestmark = pytest.mark.django_db

DATASET = jsonl(chat(), chat(system="Be brief."))
FILE_KEYS = {"id", "object", "bytes", "created_at", "expires_at", "filename", "purpose",
             "status", "status_details"}


def post_file(client, content: bytes = DATASET, purpose: str | None = "fine-tune",
              name: str = "train.jsonl", **extra):
    data = {"file": SimpleUploadedFile(name, content, "application/jsonl"), **extra}
    if purpose is not None:
        data["purpose"] = purpose
    return client.post("/v1/files", data, format="multipart")


def test_upload_returns_openais_file_object(org, client_for, file_storage):
    response = post_file(client_for(org))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == FILE_KEYS
    stored = StoredFile.objects.get(pk=body["id"])
    assert body == {"id": stored.id, "object": "file", "bytes": len(DATASET),
                    "created_at": int(stored.created_at.timestamp()), "expires_at": None,
                    "filename": "train.jsonl", "purpose": "fine-tune", "status": "processed",
                    "status_details": None}
    assert stored.created_by_key is not None and stored.created_by_key.organization_id == org.pk
    assert (file_storage / stored.storage_key).read_bytes() == DATASET


def test_upload_with_expires_after(org, client_for):
    body = post_file(client_for(org), **{"expires_after[anchor]": "created_at",
                                         "expires_after[seconds]": "7200"}).json()
    assert body["expires_at"] - body["created_at"] == 7200
    refused = post_file(client_for(org), **{"expires_after[anchor]": "last_active_at",
                                            "expires_after[seconds]": "7200"})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "expires_after.anchor"


def test_a_member_signed_in_uploads_as_themselves(org, user_client):
    client = user_client(org, "member")
    response = post_file(client)
    assert response.status_code == 200, response.content
    assert StoredFile.objects.get(pk=response.json()["id"]).created_by == client.user


@pytest.mark.parametrize("content,purpose,extra,status,param,message", [
    (jsonl(chat(), {"messages": [{"role": "user", "content": "a"},
                                 {"role": "user", "content": "b"}]}), "fine-tune", {}, 400,
     "file", 'invalid fine-tune file: line 2: messages[1].role must be "assistant" after a '
             '"user" message'),
    (jsonl(request("a"), request("a")), "batch", {}, 400, "file",
     'invalid batch file: line 2: custom_id "a" is already used on line 1; each request '
     "needs its own"),
    (DATASET, "assistants", {}, 400, "purpose",
     'purpose must be one of "fine-tune", "batch", got "assistants"'),
    (DATASET, None, {}, 400, "purpose", "purpose is required"),
    (DATASET, "fine-tune", {"expires_after[anchor]": "created_at",
                            "expires_after[seconds]": "soon"}, 400, "expires_after.seconds",
     "expires_after.seconds must be an integer"),
])
def test_a_refused_upload_answers_in_openais_error_shape_and_stores_nothing(
        org, client_for, file_storage, content, purpose, extra, status, param, message):
    response = post_file(client_for(org), content, purpose, **extra)
    assert response.status_code == status
    assert response.json() == {"error": {"message": message, "type": "invalid_request_error",
                                         "param": param, "code": None}}
    assert not StoredFile.objects.exists() and stored_files(file_storage) == []


def test_an_upload_without_a_file_part(org, client_for):
    response = client_for(org).post("/v1/files", {"purpose": "batch"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    assert response.json()["error"]["message"] == (
        'a file is required: send it as the multipart field "file"')


def test_a_file_over_the_size_limit(org, client_for, settings, file_storage):
    settings.FILE_MAX_BYTES = len(DATASET) - 1
    response = post_file(client_for(org))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"the file is larger than the limit of {len(DATASET) - 1} bytes")
    assert not StoredFile.objects.exists() and stored_files(file_storage) == []


def test_retrieve_content_and_delete(org, client_for, file_storage):
    client = client_for(org)
    file_id = post_file(client).json()["id"]
    retrieved = client.get(f"/v1/files/{file_id}")
    assert retrieved.status_code == 200 and retrieved.json()["id"] == file_id
    content = client.get(f"/v1/files/{file_id}/content")
    assert content.status_code == 200
    assert b"".join(content.streaming_content) == DATASET
    assert content["Content-Length"] == str(len(DATASET))
    assert content["Content-Type"] == "application/octet-stream"
    assert content["Content-Disposition"] == 'attachment; filename="train.jsonl"'
    deleted = client.delete(f"/v1/files/{file_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert not StoredFile.objects.filter(pk=file_id).exists()
    for method, path in (("get", ""), ("get", "/content"), ("delete", "")):
        gone = getattr(client, method)(f"/v1/files/{file_id}{path}")
        assert gone.status_code == 404
        assert gone.json()["error"]["message"] == f"No such File object: {file_id}"


def test_another_orgs_file_is_a_404_and_never_listed(org, other_org, client_for, file_storage):
    theirs = services.create_file(other_org, upload=named(DATASET), filename="secret.jsonl",
                                  purpose="fine-tune")
    client = client_for(org)
    post_file(client, name="mine.jsonl")
    for method, path in (("get", ""), ("get", "/content"), ("delete", "")):
        response = getattr(client, method)(f"/v1/files/{theirs.id}{path}")
        assert response.status_code == 404, (method, path)
        assert "secret" not in response.content.decode()
    assert StoredFile.objects.filter(pk=theirs.id).exists()
    assert (file_storage / theirs.storage_key).read_bytes() == DATASET
    listed = client.get("/v1/files").json()
    assert [f["filename"] for f in listed["data"]] == ["mine.jsonl"]
    assert client.get("/v1/files", {"after": theirs.id}).status_code == 404


def test_capabilities(org, client_for, user_client, file_storage):
    existing = services.create_file(org, upload=named(DATASET), filename="a.jsonl",
                                    purpose="fine-tune")
    reader = client_for(org, ["read"])
    assert reader.get("/v1/files").status_code == 200
    assert reader.get(f"/v1/files/{existing.id}/content").status_code == 200
    refused = post_file(reader)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "message": "this key or role lacks the 'write' capability", "type": "permission_error",
        "param": None, "code": None}
    assert reader.delete(f"/v1/files/{existing.id}").status_code == 403
    inference_only = client_for(org, ["inference"])
    assert inference_only.get("/v1/files").status_code == 403
    assert inference_only.get(f"/v1/files/{existing.id}").status_code == 403
    viewer = user_client(org, "viewer")
    assert post_file(viewer).status_code == 403
    assert viewer.get(f"/v1/files/{existing.id}").status_code == 200
    assert list(StoredFile.objects.values_list("pk", flat=True)) == [existing.pk]
    assert stored_files(file_storage) == [file_storage / existing.storage_key]


def test_unauthenticated_requests_are_refused(client):
    response = client.get("/v1/files")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_pagination_after_limit_order_and_has_more(org, client_for):
    client = client_for(org)
    ids = [post_file(client, name=f"{i}.jsonl").json()["id"] for i in range(5)]
    base = timezone.now() - timedelta(hours=1)
    for minute, file_id in enumerate(ids):  # distinct, known creation times
        StoredFile.objects.filter(pk=file_id).update(created_at=base + timedelta(minutes=minute))
    newest_first = list(reversed(ids))

    page = client.get("/v1/files", {"limit": 2}).json()
    assert [f["id"] for f in page["data"]] == newest_first[:2]
    assert (page["object"], page["first_id"], page["last_id"], page["has_more"]) == (
        "list", newest_first[0], newest_first[1], True)
    page = client.get("/v1/files", {"limit": 2, "after": page["last_id"]}).json()
    assert [f["id"] for f in page["data"]] == newest_first[2:4] and page["has_more"]
    page = client.get("/v1/files", {"limit": 2, "after": page["last_id"]}).json()
    assert [f["id"] for f in page["data"]] == newest_first[4:] and not page["has_more"]

    ascending = client.get("/v1/files", {"order": "asc", "limit": 3}).json()
    assert [f["id"] for f in ascending["data"]] == ids[:3] and ascending["has_more"]
    rest = client.get("/v1/files", {"order": "asc", "after": ids[2]}).json()
    assert [f["id"] for f in rest["data"]] == ids[3:] and not rest["has_more"]
    everything = client.get("/v1/files").json()
    assert [f["id"] for f in everything["data"]] == newest_first
    assert everything["has_more"] is False

    for params, param in (({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
                          ({"order": "up"}, "order"), ({"purpose": "vision"}, "purpose")):
        response = client.get("/v1/files", params)
        assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_list_filters_by_purpose(org, client_for):
    client = client_for(org)
    tune = post_file(client).json()["id"]
    batch = post_file(client, jsonl(request("a")), "batch").json()["id"]
    output = services.write_file(org, purpose="batch_output", filename="out.jsonl",
                                 chunks=[b"{}\n"]).id
    assert [f["id"] for f in client.get("/v1/files", {"purpose": "batch"}).json()["data"]] == [
        batch]
    listed = client.get("/v1/files", {"purpose": "batch_output"}).json()["data"]
    assert [(f["id"], f["purpose"]) for f in listed] == [(output, "batch_output")]
    assert {f["id"] for f in client.get("/v1/files").json()["data"]} == {tune, batch, output}
