# SPDX-License-Identifier: Apache-2.0
"""Where file bytes live. Callers only see ``Storage``; ``get_storage()`` picks the backend.

A key is ``<org id>/<file id>``. ``potluck.files.storage_s3.S3Storage`` implements the
same four methods on an S3-compatible bucket (multipart upload for ``save``, a streaming
body for ``open``) and is selected with ``POTLUCK_FILE_STORAGE``; no caller changes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from django.utils.module_loading import import_string

from potluck.errors import InsufficientStorage
from potluck.files import conf


@runtime_checkable
class Storage(Protocol):
    def save(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Store the chunks under ``key`` all or nothing; returns (bytes, sha256 hex).

        If iterating ``chunks`` raises, nothing is left under ``key`` and the
        exception propagates.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """The stored bytes, for reading; the caller closes it."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    def exists(self, key: str) -> bool: ...


def storage_key(organization_id: object, file_id: str) -> str:
    return f"{organization_id}/{file_id}"


class LocalStorage:
    """Files on a local (or mounted) filesystem, written atomically and fsynced."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else conf.storage_root()

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root.joinpath(*parts)

    def save(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """See ``Storage.save``; a full disk raises ``InsufficientStorage`` (and leaves
        nothing behind, like any other failure)."""
        try:
            return self._save(key, chunks)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage(
                    "The server's file storage is full (no space left on its disk); the "
                    "file was not stored. Retry once space has been freed.") from exc
            raise

    def _save(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        # The temp file sits beside the target so that the rename is atomic.
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return size, digest.hexdigest()

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        target = self.path(key)
        target.unlink(missing_ok=True)
        _fsync_dir(target.parent)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def get_storage() -> Storage:
    """The configured backend (read at each call, so a changed setting takes effect)."""
    return import_string(conf.storage_class())()
