# SPDX-License-Identifier: Apache-2.0
"""POTLUCK_WEB_ACCESS_LOG: the web's access log keeps every request, all but the gateway's
(whose usage records already say who called, when, with what status and latency), or none.
The real gunicorn + uvicorn worker with potluck.gunicorn_conf, as deployed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# Django's health check, the gateway's /v1/models (refused without a key: still a gateway
# request), and Django's /v1/files (an OpenAI path that is not the gateway's).
REQUESTS = ["/healthz", "/v1/models", "/v1/files"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def access_log_of(mode: str | None, live_env: dict[str, str], tmp_path: Path) -> str:
    """Start the web with ``mode`` (None: unset), send REQUESTS, stop it; its output."""
    port = free_port()
    env = {k: v for k, v in live_env.items() if k != "POTLUCK_WEB_ACCESS_LOG"}
    env.update({"POTLUCK_BIND": f"127.0.0.1:{port}", "POTLUCK_WEB_WORKERS": "1",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-{mode}")})
    if mode is not None:
        env["POTLUCK_WEB_ACCESS_LOG"] = mode
    log_path = tmp_path / f"web-{mode}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:potluck.gunicorn_conf",
             "potluck.asgi:application"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, \
                    log_path.read_text()[-3000:]
                time.sleep(0.1)
        statuses = [get(url + path) for path in REQUESTS]
        assert statuses == [200, 401, 401]
    finally:
        process.terminate()
        process.wait(30)
    return log_path.read_text()


def logged(text: str) -> list[str]:
    return [path for path in REQUESTS if f'"GET {path} HTTP/1.1"' in text]


@pytest.mark.parametrize(("mode", "expected"), [
    (None, ["/healthz", "/v1/files"]),  # the default: non-inference
    ("all", REQUESTS),
    ("non-inference", ["/healthz", "/v1/files"]),
    ("off", []),
])
def test_the_access_log_keeps_what_its_mode_says(mode, expected, live_env, tmp_path):
    assert logged(access_log_of(mode, live_env, tmp_path)) == expected


def test_an_unknown_mode_stops_the_web_with_a_clear_error(live_env, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:potluck.gunicorn_conf",
         "potluck.asgi:application"], env={**live_env, "POTLUCK_WEB_ACCESS_LOG": "some"},
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "POTLUCK_WEB_ACCESS_LOG must be all, non-inference or off, got 'some'" in (
        done.stdout + done.stderr)
