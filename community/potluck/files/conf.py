# SPDX-License-Identifier: Apache-2.0
"""Limits and the storage backend of the Files API.

Each value is read when it is used: a Django setting named like the variable without
its ``POTLUCK_`` prefix wins (``settings.FILE_MAX_BYTES``), else the environment
variable, else the default here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from potluck import env

MiB = 2**20
GiB = 2**30


def _setting(env_name: str) -> Any:
    return getattr(settings, env_name.removeprefix("POTLUCK_"), None)


def _int(env_name: str, default: int) -> int:
    value = _setting(env_name)
    return int(value) if value is not None else env.env_int(env_name, default)


def _str(env_name: str, default: str) -> str:
    value = _setting(env_name)
    return str(value) if value is not None else (env.env_str(env_name, default) or default)


def file_max_bytes() -> int:
    """The largest file one upload may hold."""
    return _int("POTLUCK_FILE_MAX_BYTES", 512 * MiB)


def org_quota_bytes() -> int:
    """Bytes an organization's files may hold in all (uploads and files Potluck wrote)."""
    return _int("POTLUCK_ORG_FILES_QUOTA_BYTES", 10 * GiB)


def storage_class() -> str:
    """Dotted path of the storage backend (see ``potluck.files.storage.Storage``)."""
    return _str("POTLUCK_FILE_STORAGE", "potluck.files.storage.LocalStorage")


def storage_root() -> Path:
    """Where ``LocalStorage`` keeps the bytes: ``<data dir>/files`` unless configured."""
    return Path(_str("POTLUCK_FILE_STORAGE_ROOT", str(env.data_dir() / "files"))).resolve()


def batch_max_lines() -> int:
    """Requests one batch input file may hold (OpenAI's limit is 50,000)."""
    return _int("POTLUCK_BATCH_FILE_MAX_LINES", 50_000)


def fine_tune_max_lines() -> int:
    """Examples one fine-tuning file may hold."""
    return _int("POTLUCK_FINE_TUNE_FILE_MAX_LINES", 1_000_000)


def max_line_bytes() -> int:
    """The longest JSONL line (one example or request); as the gateway's body limit."""
    return _int("POTLUCK_FILE_MAX_LINE_BYTES", 4 * MiB)
