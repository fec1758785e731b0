# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the Files tests: storage in the test's own tmp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def file_storage(settings, tmp_path) -> Path:
    """The LocalStorage root of this test (nothing is written to the real data dir)."""
    root = tmp_path / "file-storage"
    settings.FILE_STORAGE_ROOT = str(root)
    return root


# -- S3 (test_s3_*.py) --------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    from s3_server import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server, settings, monkeypatch) -> Iterator[Any]:
    """A fresh bucket, configured as the Files storage; credentials from the environment."""
    from s3_buckets import PREFIX, Bucket
    from s3_server import REGION

    from potluck.files.storage_s3 import s3_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # Nothing from the host's AWS configuration may leak into the test.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 *(f"POTLUCK_S3_{s}" for s in ("BUCKET", "PREFIX", "ENDPOINT_URL", "REGION",
                                                "PART_BYTES", "ADDRESSING_STYLE"))):
        monkeypatch.delenv(name, raising=False)
    name = s3_server.new_bucket()
    settings.FILE_STORAGE = "potluck.files.storage_s3.S3Storage"
    settings.S3_BUCKET = name
    settings.S3_PREFIX = PREFIX + "/"
    settings.S3_ENDPOINT_URL = s3_server.url
    settings.S3_REGION = REGION
    settings.S3_ADDRESSING_STYLE = "path"
    s3_client.cache_clear()
    yield Bucket(s3_server, name)
    s3_client.cache_clear()
