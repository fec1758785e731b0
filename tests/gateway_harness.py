# SPDX-License-Identifier: Apache-2.0
"""A real web process (gunicorn + uvicorn worker, the /v1 gateway beside Django) for tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def running_gateway(env: dict[str, str], tmp_path: Path, *, workers: int = 1
                    ) -> Iterator[GatewayProcess]:
    """Start ``workers`` web workers with ``env`` (plus a port, a 1 s key cache and the
    metrics token), wait for /healthz, and stop it afterwards. Its log is
    ``tmp_path/gateway.log``."""
    port = free_port()
    env = {**env, "POTLUCK_BIND": f"127.0.0.1:{port}", "POTLUCK_WEB_WORKERS": str(workers),
           "POTLUCK_KEY_CACHE_SECONDS": "1", "POTLUCK_METRICS_TOKEN": METRICS_TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    log_path = tmp_path / "gateway.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:potluck.gunicorn_conf",
         "potluck.asgi:application"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                process.kill()
                raise AssertionError(log_path.read_text()[-3000:]) from None
            time.sleep(0.1)
    try:
        yield GatewayProcess(url, process, log_path)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def scrape(gateway: GatewayProcess, token: str | None = METRICS_TOKEN) -> tuple[int, str]:
    """``GET /metrics`` with the scrape token (or ``token``): (status, text)."""
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(gateway.url + "/metrics", headers=headers, timeout=10)
    return response.status_code, response.text
