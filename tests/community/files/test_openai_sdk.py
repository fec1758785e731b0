# SPDX-License-Identifier: Apache-2.0
"""The official OpenAI Python SDK drives /v1/files against a live server."""

from __future__ import annotations

import openai
import pytest
from file_samples import chat, jsonl, request, stored_files
from openai import OpenAI

from potluck.files.models import StoredFile


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_uploads_lists_reads_and_deletes(live_server, org, key_for, tmp_path,
                                                        file_storage):
    # Closed at the end: a kept-alive HTTP connection would keep the server's DB session.
    with OpenAI(base_url=live_server.url + "/v1", api_key=key_for(org), max_retries=0) as client:
        upload_list_read_and_delete(client, tmp_path, file_storage)


def upload_list_read_and_delete(client: OpenAI, tmp_path, file_storage) -> None:
    dataset = jsonl(chat(), chat(user="3+3", assistant="6", system="Add."))
    path = tmp_path / "train.jsonl"
    path.write_bytes(dataset)

    with path.open("rb") as handle:
        created = client.files.create(file=handle, purpose="fine-tune")
    assert (created.object, created.filename, created.purpose, created.status) == (
        "file", "train.jsonl", "fine-tune", "processed")
    assert created.bytes == len(dataset) and created.id.startswith("file-")

    listed = client.files.list(purpose="fine-tune")
    assert [f.id for f in listed] == [created.id]
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == dataset

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(chat()) + b"\n" + b'{"messages": [{"role": "user"}]}\n')
    with pytest.raises(openai.BadRequestError) as refused, bad.open("rb") as handle:
        client.files.create(file=handle, purpose="fine-tune")
    assert "line 3: messages[0].content is missing" in refused.value.message
    assert refused.value.param == "file"

    # The SDK walks the cursor pages (``after``) by itself.
    batch_ids = [client.files.create(file=("requests.jsonl", jsonl(request(str(i)))),
                                     purpose="batch").id for i in range(3)]
    assert [f.id for f in client.files.list(limit=2)] == [*reversed(batch_ids), created.id]
    assert [f.id for f in client.files.list(purpose="batch", order="asc", limit=1)] == batch_ids
    for file_id in batch_ids:
        client.files.delete(file_id)

    expiring = client.files.create(file=("e.jsonl", dataset), purpose="fine-tune",
                                   expires_after={"anchor": "created_at", "seconds": 3600})
    assert expiring.expires_at == expiring.created_at + 3600
    client.files.delete(expiring.id)

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    assert not StoredFile.objects.exists()
    assert stored_files(file_storage) == []
