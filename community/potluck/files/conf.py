# SPDX-License-Identifier: Apache-2.0
"""Limits and the storage backend of the Files API, as Django settings hold them.

The environment is read once, by ``potluck.settings`` (``POTLUCK_FILE_*``,
``POTLUCK_ORG_FILES_QUOTA_BYTES``); these read the settings at each call, so a test's
``settings`` override takes effect. The line limits of each purpose's files belong to the
app that owns the purpose (``potluck.finetune.dataset``, ``potluck.batches.input``).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def file_max_bytes() -> int:
    """The largest file one upload may hold."""
    return int(settings.FILE_MAX_BYTES)


def org_quota_bytes() -> int:
    """Bytes an organization's files may hold in all (uploads and files Potluck wrote)."""
    return int(settings.ORG_FILES_QUOTA_BYTES)


def storage_class() -> str:
    """Dotted path of the storage backend (see ``potluck.files.storage.Storage``)."""
    return str(settings.FILE_STORAGE)


def storage_root() -> Path:
    """Where ``LocalStorage`` keeps the bytes: ``<data dir>/files`` unless configured."""
    root = settings.FILE_STORAGE_ROOT or Path(settings.DATA_DIR) / "files"
    return Path(root).resolve()


def max_line_bytes() -> int:
    """The longest JSONL line (one example or request); as the gateway's body limit."""
    return int(settings.FILE_MAX_LINE_BYTES)
