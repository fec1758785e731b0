# SPDX-License-Identifier: Apache-2.0
"""What the Files app does: store, validate, list, read and delete an org's files.

Fine-tuning and batches build on these functions; the /v1/files views are a thin shell
around them. An upload is all or nothing: a refused one leaves no row and no bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from django.db import transaction
from django.utils import timezone

from potluck.errors import InvalidInput, NotFound
from potluck.files import conf, selectors
from potluck.files.jsonl import JsonlValidator, ValidationReport
from potluck.files.models import (
    UPLOAD_PURPOSES,
    FileStatus,
    Purpose,
    StoredFile,
    new_file_id,
)
from potluck.files.purposes import validator_for
from potluck.files.storage import get_storage, storage_key

if TYPE_CHECKING:
    from potluck.accounts.models import ApiKey, Organization, User

CHUNK_BYTES = 2**20
MAX_FILENAME_CHARS = 255
# OpenAI's bounds for ``expires_after.seconds``: one hour to thirty days.
MIN_EXPIRES_SECONDS = 3600
MAX_EXPIRES_SECONDS = 30 * 24 * 3600


def create_file(organization: Organization, *, upload: Any, filename: str, purpose: str,
                created_by_key: ApiKey | None = None, created_by: User | None = None,
                expires_after_seconds: int | None = None) -> StoredFile:
    """Store and validate an uploaded file; ``upload`` is a Django UploadedFile or any
    binary file object. Raises InvalidInput (naming the first bad lines) on any refusal.
    """
    if purpose not in UPLOAD_PURPOSES:
        allowed = ", ".join(f'"{p}"' for p in UPLOAD_PURPOSES)
        raise InvalidInput(f"purpose must be one of {allowed}, got {json.dumps(purpose)}",
                           field="purpose")
    name = clean_filename(filename)
    lifetime = _lifetime(expires_after_seconds)
    max_bytes = conf.file_max_bytes()
    declared = getattr(upload, "size", None)
    if isinstance(declared, int):
        # Refuse early what is sure to be refused; the stream is checked again below.
        _check_size(declared, max_bytes)
        _check_quota(organization, declared)

    file_id = new_file_id()
    key = storage_key(organization.pk, file_id)
    storage = get_storage()
    validator = validator_for(purpose)
    size, sha256 = storage.save(key, _checked_chunks(upload, validator, max_bytes))
    try:
        report = validator.finish()
        if not report.ok:
            raise InvalidInput(report.message(), field="file")
        with transaction.atomic():
            _lock_org(organization)
            _check_quota(organization, size)
            now = timezone.now()
            return StoredFile.objects.create(
                id=file_id, organization=organization, purpose=purpose, filename=name,
                bytes=size, sha256=sha256, line_count=report.records,
                summary=report.summary(), status=FileStatus.PROCESSED,
                storage_key=key, created_by_key=created_by_key, created_by=created_by,
                created_at=now, expires_at=now + lifetime if lifetime else None)
    except BaseException:
        storage.delete(key)
        raise


def write_file(organization: Organization, *, purpose: str, filename: str,
               chunks: Iterable[bytes], line_count: int = 0) -> StoredFile:
    """Store a file Potluck produced (batch output, fine-tune results): no validation,
    counted in the org's usage but never refused for its quota."""
    if purpose not in Purpose.values:
        raise InvalidInput(f"unknown file purpose {purpose!r}", field="purpose")
    name = clean_filename(filename)
    file_id = new_file_id()
    key = storage_key(organization.pk, file_id)
    storage = get_storage()
    size, sha256 = storage.save(key, chunks)
    try:
        return StoredFile.objects.create(
            id=file_id, organization=organization, purpose=purpose, filename=name,
            bytes=size, sha256=sha256,
            line_count=line_count, status=FileStatus.PROCESSED, storage_key=key)
    except BaseException:
        storage.delete(key)
        raise


def delete_file(organization: Organization, file_id: str) -> StoredFile:
    """Delete the row, then (once that commits) the bytes."""
    with transaction.atomic():
        stored = selectors.get_file(organization, file_id)
        deleted, _ = StoredFile.objects.for_org(organization).filter(pk=stored.pk).delete()
        if not deleted:  # a concurrent delete got there first
            raise NotFound(f"No such File object: {file_id}", field="file_id")
        key = stored.storage_key
        transaction.on_commit(lambda: get_storage().delete(key))
    return stored


def open_file(stored: StoredFile) -> BinaryIO:
    """The file's bytes (a file object; use it as a context manager)."""
    return get_storage().open(stored.storage_key)


def iter_jsonl(stored: StoredFile) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, parsed object) for each non-blank line."""
    with open_file(stored) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if raw.strip():
                yield number, json.loads(raw)


def delete_expired_files(now: datetime | None = None, limit: int = 1000) -> int:
    """Delete up to ``limit`` files past their ``expires_at``, of every org (a system
    sweep, so not scoped by ``for_org``); returns how many went."""
    now = now or timezone.now()
    deleted = 0
    expired = list(StoredFile.objects.filter(expires_at__lte=now).values_list(
        "organization_id", "pk", "storage_key")[:limit])
    storage = get_storage()
    for org_id, file_id, key in expired:
        with transaction.atomic():
            gone, _ = StoredFile.objects.filter(organization_id=org_id, pk=file_id).delete()
            transaction.on_commit(lambda key=key: storage.delete(key))
        deleted += gone
    return deleted


def clean_filename(filename: Any) -> str:
    """The base name a client sent (no directories), checked for length and controls."""
    if not isinstance(filename, str):
        raise InvalidInput("the file needs a filename", field="file")
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", ".."):
        raise InvalidInput("the file needs a filename", field="file")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput("the filename must not contain control characters", field="file")
    if len(name) > MAX_FILENAME_CHARS:
        raise InvalidInput(f"the filename is longer than {MAX_FILENAME_CHARS} characters",
                           field="file")
    return name


def _lifetime(seconds: int | None) -> timedelta | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int) \
            or not MIN_EXPIRES_SECONDS <= seconds <= MAX_EXPIRES_SECONDS:
        raise InvalidInput(f"expires_after.seconds must be an integer between "
                           f"{MIN_EXPIRES_SECONDS} and {MAX_EXPIRES_SECONDS}",
                           field="expires_after.seconds")
    return timedelta(seconds=seconds)


def _read_chunks(upload: Any) -> Iterator[bytes]:
    if hasattr(upload, "chunks"):  # a Django UploadedFile: on disk or in memory
        yield from upload.chunks(CHUNK_BYTES)
        return
    if not hasattr(upload, "read"):
        raise InvalidInput("the upload must be a file", field="file")
    while chunk := upload.read(CHUNK_BYTES):
        yield chunk


def _checked_chunks(upload: Any, validator: JsonlValidator, max_bytes: int) -> Iterator[bytes]:
    """The upload's chunks, validated and size-checked as they pass into storage."""
    total = 0
    for chunk in _read_chunks(upload):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidInput("the file must be read as bytes (open it in binary mode)",
                               field="file")
        chunk = bytes(chunk)
        total += len(chunk)
        _check_size(total, max_bytes)
        validator.feed(chunk)
        if validator.stopped:
            _refuse(validator.report)
        yield chunk


def _refuse(report: ValidationReport) -> None:
    raise InvalidInput(report.message(), field="file")


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise InvalidInput(f"the file is larger than the limit of {_human(max_bytes)}",
                           field="file")


def _check_quota(organization: Organization, size: int) -> None:
    quota = conf.org_quota_bytes()
    used = selectors.org_usage_bytes(organization)
    if used + size > quota:
        raise InvalidInput(
            f"the organization's files would exceed its quota of {_human(quota)} "
            f"({_human(used)} used, this file is {_human(size)}); delete files to make room",
            field="file")


def _lock_org(organization: Organization) -> None:
    """Serializes the quota check and insert of concurrent uploads of one org."""
    from potluck.accounts.models import Organization

    Organization.objects.select_for_update().filter(pk=organization.pk).values_list(
        "pk", flat=True).get()


def _human(size: int) -> str:
    value, unit = float(size), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} bytes" if unit == "bytes" else f"{round(value, 1):g} {unit}"
