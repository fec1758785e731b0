# SPDX-License-Identifier: Apache-2.0
"""The storage's disk is full (a small tmpfs, so this test needs root, as CI has): an upload
gets a clear 507 in OpenAI's shape on /v1 and leaves no bytes and no row behind; files
already stored stay whole, and uploads work again once space is freed."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
from file_samples import chat, jsonl, stored_files
from test_files_api import post_file

from potluck.files.models import StoredFile

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_disk(file_storage):
    """A 256 KiB tmpfs mounted as the storage root."""
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    file_storage.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(file_storage)],
                   check=True, capture_output=True)
    try:
        yield file_storage
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", str(file_storage)], check=True, capture_output=True)


def test_a_full_disk_refuses_an_upload_and_leaves_nothing_half_written(
        org, client_for, small_disk, django_capture_on_commit_callbacks):
    client = client_for(org)
    first = jsonl(*[chat(user=f"question {i}", assistant="x" * 200) for i in range(500)])
    assert 140_000 < len(first) < 200_000
    kept = post_file(client, first)
    assert kept.status_code == 200, kept.content
    on_disk = stored_files(small_disk)

    refused = post_file(client, first, name="second.jsonl")  # does not fit in what is left

    assert refused.status_code == 507, refused.content
    error = refused.json()["error"]
    assert error["code"] == "storage_full" and error["type"] == "server_error"
    assert error["message"].startswith("The server's file storage is full")
    assert stored_files(small_disk) == on_disk  # no partial file
    assert list(StoredFile.objects.values_list("pk", flat=True)) == [kept.json()["id"]]
    assert client.get(f"/v1/files/{kept.json()['id']}/content").getvalue() == first

    with django_capture_on_commit_callbacks(execute=True):  # the bytes go after the commit
        assert client.delete(f"/v1/files/{kept.json()['id']}").status_code == 200
    assert post_file(client, first, name="third.jsonl").status_code == 200
