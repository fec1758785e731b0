# SPDX-License-Identifier: Apache-2.0
"""Every caller of the Files storage works unchanged on a bucket: the Files API, its
streamed content under ASGI, the OpenAI SDK, and a batch run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from file_samples import chat, content_under_asgi, jsonl, named, stored_files
from openai import OpenAI
from s3_buckets import BATCH_TESTS, PREFIX, MiB, sha256

from potluck.files import selectors, services
from potluck.files.api import CONTENT_CHUNK_BYTES
from potluck.files.models import StoredFile

# Every caller, on the bucket

DATASET = jsonl(chat(), chat(system="Be brief."))


def post_file(client, content: bytes, name: str = "train.jsonl"):
    return client.post("/v1/files", {"file": SimpleUploadedFile(name, content),
                                     "purpose": "fine-tune"}, format="multipart")


@pytest.mark.django_db
def test_the_files_api_keeps_uploads_in_the_bucket(org, client_for, bucket, file_storage,
                                                   django_capture_on_commit_callbacks):
    client = client_for(org)
    response = post_file(client, DATASET)
    assert response.status_code == 200, response.content
    file_id = response.json()["id"]
    stored = StoredFile.objects.get(pk=file_id)
    assert stored.storage_key == f"{org.pk}/{file_id}"
    assert (stored.bytes, stored.sha256) == (len(DATASET), sha256(DATASET))
    assert bucket.keys() == [f"{PREFIX}/{org.pk}/{file_id}"]
    assert bucket.read(f"{PREFIX}/{org.pk}/{file_id}") == DATASET

    content = client.get(f"/v1/files/{file_id}/content")
    assert content.status_code == 200
    assert content["Content-Length"] == str(len(DATASET))
    assert b"".join(content.streaming_content) == DATASET

    refused = post_file(client, jsonl(chat()) + b'{"messages": [{"role": "user"}]}\n')
    assert refused.status_code == 400
    assert "line 2: messages[0].content is missing" in refused.json()["error"]["message"]
    assert bucket.keys() == [f"{PREFIX}/{org.pk}/{file_id}"]

    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/v1/files/{file_id}").status_code == 200
    assert bucket.keys() == [] and bucket.unfinished_uploads() == []
    assert stored_files(file_storage) == []


@pytest.mark.django_db
def test_a_multipart_upload_through_the_api_streams_back_under_asgi(org, client_for, key_for,
                                                                     bucket, settings):
    settings.S3_PART_BYTES = 5 * MiB
    big = jsonl(*(chat(user=f"question {i}", assistant="x" * 200) for i in range(25_000)))
    assert len(big) > 5 * MiB
    response = post_file(client_for(org), big, "big.jsonl")
    assert response.status_code == 200, response.content
    file_id = response.json()["id"]
    assert bucket.read(f"{PREFIX}/{org.pk}/{file_id}") == big
    assert bucket.unfinished_uploads() == []
    content, chunks = content_under_asgi(file_id, key_for(org, ["read"]))
    assert content.status_code == 200 and content["Content-Length"] == str(len(big))
    assert len(chunks) == math.ceil(len(big) / CONTENT_CHUNK_BYTES)
    assert b"".join(chunks) == big


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_against_a_bucket(live_server, org, key_for, bucket, tmp_path):
    dataset = jsonl(chat(), chat(user="3+3", assistant="6", system="Add."))
    # Closed at the end: a kept-alive HTTP connection would keep the server's DB session.
    with OpenAI(base_url=live_server.url + "/v1", api_key=key_for(org), max_retries=0) as client:
        created = client.files.create(file=("train.jsonl", dataset), purpose="fine-tune")
        assert created.bytes == len(dataset)
        assert bucket.keys() == [f"{PREFIX}/{org.pk}/{created.id}"]
        assert client.files.content(created.id).content == dataset
        with pytest.raises(openai.BadRequestError):
            client.files.create(file=("bad.jsonl", b"{}\n"), purpose="fine-tune")
        assert bucket.keys() == [f"{PREFIX}/{org.pk}/{created.id}"]
        assert client.files.delete(created.id).deleted
    assert bucket.keys() == [] and not StoredFile.objects.exists()


@pytest.fixture
def fake_replica(monkeypatch) -> Iterator[Any]:
    """One fake vLLM replica of the batch tests (tests/community/batches/fake_replica.py)."""
    monkeypatch.syspath_prepend(str(BATCH_TESTS))
    from fake_replica import FakeReplica, ReplicaThread

    thread = ReplicaThread(FakeReplica())
    yield thread.start()
    thread.stop()


def serve(name: str, port: int) -> None:
    """A public model with one READY replica at ``port`` (as the batch tests' ``served``)."""
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    model = RegisteredModel.objects.create(name=name, source=Source.HUGGINGFACE,
                                           repo_id=f"test/{name}", context_length=512)
    deployment = Deployment.objects.create(model=model, replicas=1)
    node = Node.objects.create(name=f"node-{name}", queue=f"node.{name}", hostname="localhost")
    Replica.objects.create(deployment=deployment, node=node, port=port,
                           state=ReplicaState.READY)


@pytest.mark.django_db(transaction=True)
def test_a_batch_reads_its_input_from_the_bucket_and_writes_its_results_there(
        org, bucket, fake_replica):
    from batch_lines import request_line

    from potluck.batches import runner
    from potluck.batches import services as batches
    from potluck.batches.models import BatchStatus

    serve("fake-model", fake_replica.port)
    lines = [request_line(n) for n in range(1, 6)]
    lines.append(request_line(6, model="no-such-model"))
    source = services.create_file(org, upload=named(jsonl(*lines)), filename="input.jsonl",
                                  purpose="batch")
    batch = batches.create_batch(org, {"input_file_id": source.id, "endpoint": "/v1/completions",
                                       "completion_window": "24h"})

    assert runner.run_batch(batch.pk) == BatchStatus.COMPLETED
    batch.refresh_from_db()
    assert (batch.request_completed, batch.request_failed) == (5, 1)
    written = [selectors.get_file(org, batch.output_file_id),
               selectors.get_file(org, batch.error_file_id)]
    assert bucket.keys() == sorted(f"{PREFIX}/{f.storage_key}" for f in [source, *written])
    output, errors = ([json.loads(line) for line in bucket.read(f"{PREFIX}/{f.storage_key}")
                       .splitlines()] for f in written)
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, 6)]
    assert [line["response"]["body"]["choices"][0]["text"] for line in output] == [
        f"echo line {n}" for n in range(1, 6)]
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("req-6", "model_not_found")]
    assert len(fake_replica.request_ids) == 5
