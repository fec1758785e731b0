# SPDX-License-Identifier: Apache-2.0
"""An S3 server (moto's, over HTTP) and a fresh bucket per test configured as the Files
storage, with helpers, for the test_s3_*.py tests. The fixtures (``s3_server``,
``bucket``) are in conftest.py."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3_server import S3Server

from potluck.files.storage_s3 import S3Storage

MiB = 2**20
PREFIX = "potluck/files"
BATCH_TESTS = Path(__file__).resolve().parent.parent / "batches"


@dataclass
class Bucket:
    server: S3Server
    name: str

    def keys(self) -> list[str]:
        return self.server.keys(self.name)

    def read(self, key: str) -> bytes:
        return self.server.read(self.name, key)

    def unfinished_uploads(self) -> list[dict[str, Any]]:
        return self.server.unfinished_uploads(self.name)


class Recorder:
    """The client's calls, by name; ``fail`` makes the n-th call of a name raise."""

    def __init__(self, client: Any, fail: tuple[str, int] | None = None) -> None:
        self.client = client
        self.fail = fail
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.fail == (name, self.calls.count(name)):
                raise ConnectionError(f"injected failure of {name}")
            return method(*args, **kwargs)

        return call


def recorded(fail: tuple[str, int] | None = None) -> tuple[S3Storage, Recorder]:
    storage = S3Storage()
    recorder = Recorder(storage.client, fail)
    storage.client = recorder
    return storage, recorder


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
