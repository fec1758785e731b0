# SPDX-License-Identifier: Apache-2.0
"""create_file: an accepted upload is stored and recorded; a refused one leaves nothing."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from file_samples import chat, jsonl, named, request, stored_files

from potluck.errors import InvalidInput
from potluck.files import selectors, services
from potluck.files.models import FileStatus, StoredFile

pytestmark = pytest.mark.django_db

DATASET = jsonl(chat(), chat(system="Add.")) + b"\n" + jsonl(chat(user="1+1", assistant="2"))


def test_an_upload_is_stored_validated_and_recorded(org, file_storage):
    stored = services.create_file(org, upload=named(DATASET), filename="train.jsonl",
                                  purpose="fine-tune")
    row = StoredFile.objects.get(pk=stored.pk)
    assert row.id.startswith("file-") and row.organization_id == org.pk
    assert (row.purpose, row.filename, row.status) == ("fine-tune", "train.jsonl",
                                                       FileStatus.PROCESSED)
    assert (row.bytes, row.line_count) == (len(DATASET), 3)
    assert row.sha256 == hashlib.sha256(DATASET).hexdigest()
    assert row.summary == {"examples": 3, "trainable_messages": 3}
    assert stored_files(file_storage) == [file_storage / str(org.pk) / row.id]
    assert (file_storage / row.storage_key).read_bytes() == DATASET
    with services.open_file(row) as handle:
        assert handle.read() == DATASET
    assert [number for number, _ in services.iter_jsonl(row)] == [1, 2, 4]
    assert list(services.iter_jsonl(row))[2][1] == chat(user="1+1", assistant="2")


def test_a_django_upload_and_a_batch_file(org):
    content = jsonl(request("a"), request("b", url="/v1/embeddings", model="emb"))
    upload = SimpleUploadedFile("dir/requests.jsonl", content)
    stored = services.create_file(org, upload=upload, filename=upload.name, purpose="batch")
    assert stored.filename == "requests.jsonl"
    assert stored.line_count == 2
    assert stored.summary == {"requests": 2, "models": ["demo", "emb"],
                              "urls": ["/v1/chat/completions", "/v1/embeddings"]}


class TextFile(io.StringIO):
    name = "text.jsonl"


@pytest.mark.parametrize("upload,kwargs,message", [
    (named(DATASET), {"purpose": "assistants"},
     'purpose must be one of "fine-tune", "batch", got "assistants"'),
    (named(DATASET), {"purpose": "batch_output"},
     'purpose must be one of "fine-tune", "batch", got "batch_output"'),
    (named(DATASET), {"filename": ""}, "the file needs a filename"),
    (named(DATASET), {"filename": "a/b/"}, "the file needs a filename"),
    (named(DATASET), {"filename": "bad\nname.jsonl"},
     "the filename must not contain control characters"),
    (named(DATASET), {"filename": "x" * 256}, "the filename is longer than 255 characters"),
    (named(DATASET), {"expires_after_seconds": 60},
     "expires_after.seconds must be an integer between 3600 and 2592000"),
    (named(jsonl(chat(), {"messages": [{"role": "user", "content": "a"},
                                       {"role": "user", "content": "b"}]})), {},
     'invalid fine-tune file: line 2: messages[1].role must be "assistant" after a "user" '
     "message"),
    (named(jsonl(request("a"))), {},
     'invalid fine-tune file: line 1: unknown key "custom_id": a fine-tuning example holds '
     'only "messages", "tools" and "parallel_tool_calls"'),
    (named(b""), {}, "invalid fine-tune file: the file is empty: it holds no examples"),
    (TextFile(DATASET.decode()), {}, "the file must be read as bytes (open it in binary mode)"),
    (object(), {}, "the upload must be a file"),
])
def test_a_refused_upload_leaves_no_row_and_no_bytes(org, file_storage, upload, kwargs,
                                                     message):
    args = {"filename": "train.jsonl", "purpose": "fine-tune", **kwargs}
    with pytest.raises(InvalidInput) as refused:
        services.create_file(org, upload=upload, **args)
    assert refused.value.message == message
    assert not StoredFile.objects.exists()
    assert stored_files(file_storage) == []


def test_a_file_with_many_errors_is_refused_as_soon_as_validation_stops(org, file_storage):
    content = b"{bad}\n" * 600_000  # several read chunks
    handle = named(content)
    with pytest.raises(InvalidInput) as refused:
        services.create_file(org, upload=handle, filename="x.jsonl", purpose="batch")
    assert "validation stopped after 20 errors" in refused.value.message
    assert handle.tell() < len(content)  # the rest was never read
    assert stored_files(file_storage) == [] and not StoredFile.objects.exists()


@pytest.mark.parametrize("make_upload", [
    lambda content: SimpleUploadedFile("a.jsonl", content),  # declares its size
    lambda content: named(content),  # does not: refused while streaming
], ids=["declared", "streamed"])
def test_the_per_file_size_limit(org, settings, file_storage, make_upload):
    settings.FILE_MAX_BYTES = len(DATASET)
    accepted = services.create_file(org, upload=make_upload(DATASET), filename="a.jsonl",
                                    purpose="fine-tune")
    assert accepted.bytes == len(DATASET)
    bigger = DATASET + jsonl(chat())
    with pytest.raises(InvalidInput) as refused:
        services.create_file(org, upload=make_upload(bigger), filename="b.jsonl",
                             purpose="fine-tune")
    assert refused.value.message == f"the file is larger than the limit of {len(DATASET)} bytes"
    assert refused.value.field == "file"
    assert list(StoredFile.objects.values_list("pk", flat=True)) == [accepted.pk]
    assert stored_files(file_storage) == [file_storage / accepted.storage_key]


@pytest.mark.parametrize("make_upload", [
    lambda content: SimpleUploadedFile("a.jsonl", content),
    lambda content: named(content),  # stored first, refused at the locked check, then removed
], ids=["declared", "streamed"])
def test_the_org_quota_counts_every_file_of_the_org_only(org, other_org, settings, file_storage,
                                                         make_upload):
    settings.ORG_FILES_QUOTA_BYTES = 2 * len(DATASET) + 10
    output = services.write_file(org, purpose="batch_output", filename="out.jsonl",
                                 chunks=[b"x" * 10])
    services.create_file(other_org, upload=make_upload(DATASET), filename="o.jsonl",
                         purpose="fine-tune")
    first = services.create_file(org, upload=make_upload(DATASET), filename="a.jsonl",
                                 purpose="fine-tune")
    assert selectors.org_usage_bytes(org) == len(DATASET) + 10
    with pytest.raises(InvalidInput) as refused:
        services.create_file(org, upload=make_upload(DATASET + b"\n"), filename="b.jsonl",
                             purpose="fine-tune")
    assert refused.value.message.startswith("the organization's files would exceed its quota")
    assert StoredFile.objects.for_org(org).count() == 2
    assert len(stored_files(file_storage)) == 3
    # Exactly at the quota is fine.
    services.create_file(org, upload=make_upload(DATASET), filename="c.jsonl",
                         purpose="fine-tune")
    assert selectors.org_usage_bytes(org) == settings.ORG_FILES_QUOTA_BYTES
    # Files Potluck writes are never refused for the quota.
    services.write_file(org, purpose="fine-tune-results", filename="r.csv", chunks=[b"y" * 99])
    assert selectors.org_usage_bytes(org) > settings.ORG_FILES_QUOTA_BYTES
    assert {first.pk, output.pk} <= set(StoredFile.objects.for_org(org).values_list("pk",
                                                                                     flat=True))


def test_the_quota_message_is_readable(org, settings):
    settings.ORG_FILES_QUOTA_BYTES = 3 * 2**20
    services.write_file(org, purpose="batch_output", filename="o", chunks=[b"x" * (3 * 2**20)])
    with pytest.raises(InvalidInput) as refused:
        services.create_file(org, upload=named(DATASET), filename="a.jsonl", purpose="fine-tune")
    assert refused.value.message == (
        f"the organization's files would exceed its quota of 3 MiB (3 MiB used, this file is "
        f"{len(DATASET)} bytes); delete files to make room")
