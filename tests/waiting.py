# SPDX-License-Identifier: Apache-2.0
"""Polling for tests that watch other processes (agents, workers, vLLM replicas)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str | None = None,
             interval: float = 0.25) -> Any:
    """The first truthy value of ``predicate()``, or AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
