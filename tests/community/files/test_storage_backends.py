# SPDX-License-Identifier: Apache-2.0
"""LocalStorage writes atomically; another backend replaces it without touching callers."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import BinaryIO

import pytest
from file_samples import chat, jsonl, named, stored_files

from potluck.errors import InvalidInput
from potluck.files import services
from potluck.files.storage import LocalStorage, Storage, get_storage


def test_save_returns_size_and_sha256_and_open_reads_it_back(file_storage):
    storage = LocalStorage()
    assert storage.root == file_storage.resolve()
    size, digest = storage.save("org/file-1", [b"hello ", b"world"])
    assert (size, digest) == (11, hashlib.sha256(b"hello world").hexdigest())
    assert storage.exists("org/file-1")
    with storage.open("org/file-1") as handle:
        assert handle.read() == b"hello world"
    assert (file_storage / "org" / "file-1").stat().st_mode & 0o077 == 0
    storage.delete("org/file-1")
    storage.delete("org/file-1")  # a missing key is not an error
    assert not storage.exists("org/file-1")


def test_a_failed_save_leaves_neither_the_file_nor_a_temp_file(file_storage):
    storage = LocalStorage()
    storage.save("org/file-1", [b"old"])

    def chunks():
        yield b"new, partial"
        raise InvalidInput("too big")

    with pytest.raises(InvalidInput):
        storage.save("org/file-1", chunks())
    with pytest.raises(InvalidInput):
        storage.save("org/file-2", chunks())
    assert stored_files(file_storage) == [file_storage / "org" / "file-1"]
    assert (file_storage / "org" / "file-1").read_bytes() == b"old"


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "org/../../x", "org/./x", "org//x"])
def test_keys_cannot_leave_the_root(key):
    with pytest.raises(ValueError):
        LocalStorage().path(key)


class MemoryStorage:
    """A second backend, as an S3 one would be: only the Storage protocol."""

    blobs: dict[str, bytes] = {}

    def save(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        data = b"".join(chunks)
        self.blobs[key] = data
        return len(data), hashlib.sha256(data).hexdigest()

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.blobs[key])

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.blobs


@pytest.mark.django_db
def test_the_configured_backend_serves_every_caller(org, settings, file_storage,
                                                    django_capture_on_commit_callbacks):
    settings.FILE_STORAGE = f"{__name__}.MemoryStorage"
    assert isinstance(get_storage(), MemoryStorage) and isinstance(get_storage(), Storage)
    content = jsonl(chat(), chat())
    stored = services.create_file(org, upload=named(content), filename="a.jsonl",
                                  purpose="fine-tune")
    assert MemoryStorage.blobs[stored.storage_key] == content
    assert [n for n, _ in services.iter_jsonl(stored)] == [1, 2]
    with pytest.raises(InvalidInput):
        services.create_file(org, upload=named(b"{}\n"), filename="b.jsonl",
                             purpose="fine-tune")
    assert list(MemoryStorage.blobs) == [stored.storage_key]
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_file(org, stored.id)
    assert MemoryStorage.blobs == {}
    assert stored_files(file_storage) == []
