# SPDX-License-Identifier: Apache-2.0
"""Getting, listing, writing, deleting and expiring files through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from file_samples import chat, jsonl, named, stored_files

from potluck.errors import InvalidInput, NotFound
from potluck.files import selectors, services, tasks
from potluck.files.models import FileStatus, StoredFile

pytestmark = pytest.mark.django_db

DATASET = jsonl(chat())


def upload(org, purpose: str = "fine-tune", name: str = "a.jsonl", **kwargs) -> StoredFile:
    content = DATASET if purpose == "fine-tune" else jsonl(
        {"custom_id": "1", "method": "POST", "url": "/v1/completions", "body": {"model": "m"}})
    return services.create_file(org, upload=named(content), filename=name, purpose=purpose,
                                **kwargs)


def test_get_file_sees_only_the_callers_org(org, other_org):
    mine, theirs = upload(org), upload(other_org)
    assert selectors.get_file(org, mine.id) == mine
    for unknown in (theirs.id, "file-nope", ""):
        with pytest.raises(NotFound) as missing:
            selectors.get_file(org, unknown)
        assert missing.value.message == f"No such File object: {unknown}"


def test_list_files_filters_by_purpose_and_never_shows_other_orgs(org, other_org):
    tune, batch = upload(org), upload(org, purpose="batch")
    output = services.write_file(org, purpose="batch_output", filename="o.jsonl", chunks=[b"{}"])
    upload(other_org)
    assert list(selectors.list_files(org)) == [output, batch, tune]
    assert list(selectors.list_files(org, purpose="batch")) == [batch]
    assert list(selectors.list_files(org, purpose="batch_output")) == [output]
    with pytest.raises(InvalidInput) as refused:
        selectors.list_files(org, purpose="vision")
    assert refused.value.field == "purpose"


def test_delete_file_removes_the_row_and_then_the_bytes(org, other_org, file_storage,
                                                        django_capture_on_commit_callbacks):
    mine, theirs = upload(org), upload(other_org)
    with pytest.raises(NotFound):
        services.delete_file(org, theirs.id)
    with django_capture_on_commit_callbacks(execute=True):
        deleted = services.delete_file(org, mine.id)
    assert deleted.id == mine.id
    assert not StoredFile.objects.filter(pk=mine.id).exists()
    assert stored_files(file_storage) == [file_storage / theirs.storage_key]
    with pytest.raises(NotFound):
        services.delete_file(org, mine.id)


def test_write_file_stores_anything_potluck_produces(org, file_storage):
    stored = services.write_file(org, purpose="fine-tune-results", filename="results.csv",
                                 chunks=iter([b"step,loss\n", b"1,0.5\n"]), line_count=1)
    assert (stored.status, stored.bytes, stored.line_count) == (FileStatus.PROCESSED, 16, 1)
    with services.open_file(stored) as handle:
        assert handle.read() == b"step,loss\n1,0.5\n"
    with pytest.raises(InvalidInput):
        services.write_file(org, purpose="nonsense", filename="x", chunks=[b"x"])
    assert StoredFile.objects.count() == 1 and len(stored_files(file_storage)) == 1


def test_write_file_leaves_nothing_when_its_chunks_fail(org, file_storage):
    def chunks():
        yield b'{"a": 1}\n'
        raise RuntimeError("the batch worker died")

    with pytest.raises(RuntimeError):
        services.write_file(org, purpose="batch_output", filename="o.jsonl", chunks=chunks())
    assert not StoredFile.objects.exists() and stored_files(file_storage) == []


def test_an_expiring_file_disappears_and_is_swept(org, file_storage,
                                                  django_capture_on_commit_callbacks):
    expiring = upload(org, expires_after_seconds=3600)
    kept = upload(org, name="kept.jsonl")
    assert expiring.expires_at is not None
    assert expiring.expires_at - expiring.created_at == timedelta(seconds=3600)
    assert selectors.get_file(org, expiring.id) == expiring
    StoredFile.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    with pytest.raises(NotFound):
        selectors.get_file(org, expiring.id)
    assert list(selectors.list_files(org)) == [kept]
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.delete_expired() == 1  # what beat runs
    assert services.delete_expired_files() == 0
    assert list(StoredFile.objects.all()) == [kept]
    assert stored_files(file_storage) == [file_storage / kept.storage_key]
