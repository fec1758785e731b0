# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests that drive a real gateway process (see conftest.py's fixtures)."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


METRICS_TOKEN = "scrape-token-for-tests"


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"


def wait_until_listed(gateway: GatewayProcess, key: str, name: str) -> None:
    """The gateway refreshes its catalogue about once a second: wait until it lists
    ``name`` for ``key``'s organization."""
    import httpx

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        answer = httpx.get(gateway.v1 + "/models", headers={"authorization": f"Bearer {key}"},
                           timeout=5)
        if answer.status_code == 200 and name in {m["id"] for m in answer.json()["data"]}:
            return
        time.sleep(0.1)
    raise AssertionError(f"the gateway never listed {name!r}")
