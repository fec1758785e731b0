# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the Files tests: storage in the test's own tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def file_storage(settings, tmp_path) -> Path:
    """The LocalStorage root of this test (nothing is written to the real data dir)."""
    root = tmp_path / "file-storage"
    settings.FILE_STORAGE_ROOT = str(root)
    return root
