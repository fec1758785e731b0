# SPDX-License-Identifier: Apache-2.0
"""Settings of the S3-compatible storage backend (``potluck.files.storage_s3``), checked.

``potluck.settings`` reads them from the environment (``POTLUCK_S3_*``) once, as raw
values; they are checked here when the storage is built, so a bad one fails the processes
that use S3 with a message naming the variable. Credentials are not settings of ours:
boto3 finds them in its usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a
profile, an instance role).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MiB = 2**20
GiB = 2**30
# S3 refuses a multipart upload whose parts (all but the last) are smaller than 5 MiB,
# or any part over 5 GiB.
MIN_PART_BYTES = 5 * MiB
MAX_PART_BYTES = 5 * GiB
ADDRESSING_STYLES = ("auto", "path", "virtual")


def _str(env_name: str) -> str | None:
    """The setting of ``POTLUCK_<NAME>`` (``settings.<NAME>``) as text; None when unset."""
    value = getattr(settings, env_name.removeprefix("POTLUCK_"), None)
    return str(value) if value not in (None, "") else None


def bucket() -> str:
    """The bucket that holds the files; required."""
    value = _str("POTLUCK_S3_BUCKET")
    if not value:
        raise ImproperlyConfigured(
            "POTLUCK_S3_BUCKET is not set: name the bucket that S3Storage keeps files in "
            "(or set POTLUCK_FILE_STORAGE back to potluck.files.storage.LocalStorage)")
    return value


def prefix() -> str:
    """Folder of the bucket under which keys go (``<prefix>/<org id>/<file id>``)."""
    return (_str("POTLUCK_S3_PREFIX") or "").strip("/")


def endpoint_url() -> str | None:
    """The S3 API's URL for another S3-compatible store (MinIO, Ceph, R2); None for AWS."""
    return _str("POTLUCK_S3_ENDPOINT_URL")


def region() -> str | None:
    """The bucket's region; None leaves it to boto3 (``AWS_DEFAULT_REGION``, the profile)."""
    return _str("POTLUCK_S3_REGION")


def part_bytes() -> int:
    """Size of each part of a multipart upload, and the largest file sent in one request."""
    raw = _str("POTLUCK_S3_PART_BYTES")
    if raw is None:
        return 8 * MiB
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"POTLUCK_S3_PART_BYTES must be an integer, got {raw!r}") from exc
    if not MIN_PART_BYTES <= value <= MAX_PART_BYTES:
        raise ImproperlyConfigured(
            f"POTLUCK_S3_PART_BYTES must be between {MIN_PART_BYTES} (5 MiB, S3's smallest "
            f"part) and {MAX_PART_BYTES} (5 GiB), got {value}")
    return value


def addressing_style() -> str:
    """``path`` (``host/bucket/key``, what most self-hosted stores want), ``virtual``
    (``bucket.host/key``) or ``auto`` (boto3 picks)."""
    value = (_str("POTLUCK_S3_ADDRESSING_STYLE") or "auto").lower()
    if value not in ADDRESSING_STYLES:
        raise ImproperlyConfigured(
            f"POTLUCK_S3_ADDRESSING_STYLE must be one of {', '.join(ADDRESSING_STYLES)}, "
            f"got {value!r}")
    return value
