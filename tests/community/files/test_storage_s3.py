# SPDX-License-Identifier: Apache-2.0
"""S3Storage keeps LocalStorage's contract against an S3 server (moto's, over HTTP):
all-or-nothing saves in one request or in parts, streamed reads, and every caller
(the Files API, the OpenAI SDK, a batch run) working unchanged on a bucket."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from file_samples import chat, content_under_asgi, jsonl, named, stored_files
from openai import OpenAI
from s3_server import REGION, S3Server

from potluck.errors import InvalidInput
from potluck.files import selectors, services
from potluck.files.api import CONTENT_CHUNK_BYTES
from potluck.files.models import StoredFile
from potluck.files.storage import Storage, get_storage
from potluck.files.storage_s3 import S3Storage, s3_client

MiB = 2**20
PREFIX = "potluck/files"
BATCH_TESTS = Path(__file__).resolve().parent.parent / "batches"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@dataclass
class Bucket:
    server: S3Server
    name: str

    def keys(self) -> list[str]:
        return self.server.keys(self.name)

    def read(self, key: str) -> bytes:
        return self.server.read(self.name, key)

    def unfinished_uploads(self) -> list[dict[str, Any]]:
        return self.server.unfinished_uploads(self.name)


@pytest.fixture
def bucket(s3_server, settings, monkeypatch) -> Iterator[Bucket]:
    """A fresh bucket, configured as the Files storage; credentials from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # Nothing from the host's AWS configuration may leak into the test.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 *(f"POTLUCK_S3_{s}" for s in ("BUCKET", "PREFIX", "ENDPOINT_URL", "REGION",
                                                "PART_BYTES", "ADDRESSING_STYLE"))):
        monkeypatch.delenv(name, raising=False)
    name = s3_server.new_bucket()
    settings.FILE_STORAGE = "potluck.files.storage_s3.S3Storage"
    settings.S3_BUCKET = name
    settings.S3_PREFIX = PREFIX + "/"
    settings.S3_ENDPOINT_URL = s3_server.url
    settings.S3_REGION = REGION
    settings.S3_ADDRESSING_STYLE = "path"
    s3_client.cache_clear()
    yield Bucket(s3_server, name)
    s3_client.cache_clear()


class Recorder:
    """The client's calls, by name; ``fail`` makes the n-th call of a name raise."""

    def __init__(self, client: Any, fail: tuple[str, int] | None = None) -> None:
        self.client = client
        self.fail = fail
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.fail == (name, self.calls.count(name)):
                raise ConnectionError(f"injected failure of {name}")
            return method(*args, **kwargs)

        return call


def recorded(fail: tuple[str, int] | None = None) -> tuple[S3Storage, Recorder]:
    storage = S3Storage()
    recorder = Recorder(storage.client, fail)
    storage.client = recorder
    return storage, recorder


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The Storage contract


def test_save_returns_size_and_sha256_and_open_reads_it_back(bucket, file_storage):
    storage = get_storage()
    assert isinstance(storage, S3Storage) and isinstance(storage, Storage)
    size, digest = storage.save("org/file-1", [b"hello ", b"world"])
    assert (size, digest) == (11, sha256(b"hello world"))
    assert bucket.keys() == [f"{PREFIX}/org/file-1"]
    assert storage.exists("org/file-1") and not storage.exists("org/file-2")
    with storage.open("org/file-1") as handle:
        assert handle.read() == b"hello world"
    storage.delete("org/file-1")
    storage.delete("org/file-1")  # a missing key is not an error
    assert not storage.exists("org/file-1") and bucket.keys() == []
    assert stored_files(file_storage) == []  # nothing went to the local disk


def test_an_empty_file(bucket):
    storage = S3Storage()
    assert storage.save("org/empty", []) == (0, sha256(b""))
    with storage.open("org/empty") as handle:
        assert handle.read() == b"" and list(handle) == []


def test_without_a_prefix_keys_are_the_storage_keys(bucket, settings):
    settings.S3_PREFIX = ""
    S3Storage().save("org/file-1", [b"x"])
    assert bucket.keys() == ["org/file-1"]


def test_a_file_up_to_one_part_goes_in_one_request_a_bigger_one_in_parts(bucket, settings):
    settings.S3_PART_BYTES = 5 * MiB
    storage, recorder = recorded()
    one_part = blob(5 * MiB)
    assert storage.save("org/one", pieces(one_part)) == (len(one_part), sha256(one_part))
    assert recorder.calls == ["put_object"]

    recorder.calls.clear()
    big = blob(3 * 5 * MiB + 1, seed=1)
    assert storage.save("org/big", pieces(big, 3 * MiB)) == (len(big), sha256(big))
    assert recorder.calls == ["create_multipart_upload", *["upload_part"] * 4,
                              "complete_multipart_upload"]
    assert bucket.read(f"{PREFIX}/org/big") == big
    assert bucket.read(f"{PREFIX}/org/one") == one_part
    assert bucket.unfinished_uploads() == []


@pytest.mark.parametrize("size,calls", [
    (MiB, []),  # the iterator fails before a single request is made
    (16 * MiB, ["create_multipart_upload", *["upload_part"] * 3, "abort_multipart_upload"]),
], ids=["one request", "multipart"])
def test_a_failed_save_leaves_nothing_and_keeps_what_was_there(bucket, settings, size, calls):
    settings.S3_PART_BYTES = 5 * MiB
    storage, recorder = recorded()
    storage.save("org/file-1", [b"old"])
    recorder.calls.clear()

    def chunks() -> Iterator[bytes]:
        yield from pieces(blob(size))
        raise InvalidInput("too big")

    with pytest.raises(InvalidInput):
        storage.save("org/file-1", chunks())
    assert recorder.calls == calls
    with pytest.raises(InvalidInput):
        storage.save("org/file-2", chunks())
    assert bucket.keys() == [f"{PREFIX}/org/file-1"]
    assert bucket.read(f"{PREFIX}/org/file-1") == b"old"
    assert bucket.unfinished_uploads() == []


@pytest.mark.parametrize("fail", [("upload_part", 2), ("complete_multipart_upload", 1)])
def test_a_failed_request_aborts_the_upload(bucket, settings, fail):
    settings.S3_PART_BYTES = 5 * MiB
    storage, recorder = recorded(fail)
    with pytest.raises(ConnectionError, match="injected"):
        storage.save("org/file-1", pieces(blob(12 * MiB)))
    assert recorder.calls[-1] == "abort_multipart_upload"
    assert bucket.keys() == [] and bucket.unfinished_uploads() == []


def test_a_failed_abort_is_logged_and_the_first_error_raised(bucket, settings, caplog):
    settings.S3_PART_BYTES = 5 * MiB
    storage, _ = recorded(("abort_multipart_upload", 1))

    def chunks() -> Iterator[bytes]:
        yield from pieces(blob(6 * MiB))
        raise InvalidInput("bad")

    with pytest.raises(InvalidInput):
        storage.save("org/file-1", chunks())
    assert "could not abort multipart upload" in caplog.text
    assert "testing" not in caplog.text  # never the credentials
    for upload in bucket.unfinished_uploads():  # tidy the bucket
        bucket.server.client.abort_multipart_upload(
            Bucket=bucket.name, Key=upload["Key"], UploadId=upload["UploadId"])


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "org/../../x", "org/./x", "org//x",
                                 "org\\x"])
def test_keys_are_checked_as_local_storage_checks_them(bucket, key):
    storage = S3Storage()
    for call in (lambda: storage.save(key, [b"x"]), lambda: storage.open(key),
                 lambda: storage.exists(key), lambda: storage.delete(key)):
        with pytest.raises(ValueError, match="invalid storage key"):
            call()
    assert bucket.keys() == []


# Reading


LINES = b"".join(f"line {i} {'x' * (i % 997)}\n".encode() for i in range(12_000))


def test_reading_a_multi_mib_object_by_lines_and_by_size(bucket, settings):
    settings.S3_PART_BYTES = 5 * MiB
    assert len(LINES) > 5 * MiB
    storage = S3Storage()
    storage.save("org/lines", pieces(LINES))

    with storage.open("org/lines") as handle:
        assert handle.readable() and not handle.seekable()
        assert list(handle) == LINES.splitlines(keepends=True)
    assert handle.closed

    with storage.open("org/lines") as handle:
        read = list(iter(lambda: handle.read(100_000), b""))
    assert [len(piece) for piece in read[:-1]] == [100_000] * (len(read) - 1)
    assert b"".join(read) == LINES

    with storage.open("org/lines") as handle:
        assert handle.readline() == LINES[:LINES.index(b"\n") + 1]
        assert handle.read(10) == LINES[LINES.index(b"\n") + 1:][:10]
        assert handle.read() == LINES[LINES.index(b"\n") + 11:]
        assert handle.read() == b""

    handle = storage.open("org/lines")
    assert handle.read(5) == b"line "
    handle.close()  # before the end: the connection is dropped, not drained
    assert handle.closed


def test_a_missing_key_is_file_not_found(bucket):
    with pytest.raises(FileNotFoundError) as missing:
        S3Storage().open("org/missing")
    assert missing.value.filename == f"s3://{bucket.name}/{PREFIX}/org/missing"


# Configuration


def test_the_bucket_is_required(bucket, settings):
    del settings.S3_BUCKET
    with pytest.raises(ImproperlyConfigured, match="POTLUCK_S3_BUCKET is not set"):
        get_storage()


def test_the_environment_configures_it_through_settings(bucket):
    """``potluck.settings`` reads POTLUCK_FILE_STORAGE and POTLUCK_S3_* once, in a process
    that starts with them; nothing reads the environment afterwards."""
    code = ("import django; django.setup(); "
            "from potluck.files.storage import get_storage; s = get_storage(); "
            "print(type(s).__name__, s.bucket, repr(s.prefix), s.part_bytes)")
    env = {**os.environ, "POTLUCK_FILE_STORAGE": "potluck.files.storage_s3.S3Storage",
           "POTLUCK_S3_BUCKET": bucket.name, "POTLUCK_S3_PART_BYTES": str(6 * MiB),
           "DJANGO_SETTINGS_MODULE": "potluck.settings"}
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split() == ["S3Storage", bucket.name, "''", str(6 * MiB)]


@pytest.mark.parametrize("name,value,message", [
    ("S3_PART_BYTES", 5 * MiB - 1, "POTLUCK_S3_PART_BYTES must be between 5242880"),
    ("S3_PART_BYTES", "8M", "POTLUCK_S3_PART_BYTES must be an integer, got '8M'"),
    ("S3_ADDRESSING_STYLE", "sideways", "POTLUCK_S3_ADDRESSING_STYLE must be one of auto, "
                                        "path, virtual, got 'sideways'"),
])
def test_bad_settings_are_named(bucket, settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        S3Storage()


def test_one_client_per_configuration(bucket, settings):
    first = S3Storage().client
    assert S3Storage().client is first
    settings.S3_REGION = "eu-west-1"
    other = S3Storage().client
    assert other is not first and other.meta.region_name == "eu-west-1"


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
