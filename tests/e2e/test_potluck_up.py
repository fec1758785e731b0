# SPDX-License-Identifier: Apache-2.0
"""`potluck up` from an empty data dir: everything starts, serves, and stops completely."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Up:
    def __init__(self, data_dir: Path, port: int, demo: str = "off") -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(POTLUCK_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1",
                        POTLUCK_DEMO_MODEL=demo)
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "potluck", "up", "--port", str(port), "--web-workers", "1"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def wait_for_line(self, text: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError("potluck up exited:\n" + "".join(self.lines))
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(self.lines))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck", *args], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)

    def family(self, data_dir: Path) -> list[psutil.Process]:
        """Every process this `up` is responsible for, daemonized PostgreSQL included."""
        procs = [psutil.Process(self.process.pid),
                 *psutil.Process(self.process.pid).children(recursive=True)]
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        procs += [psutil.Process(postmaster), *psutil.Process(postmaster).children()]
        return procs

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=120)
        self.lines.append(out)
        return self.process.returncode


def test_up_serves_keys_refuses_a_twin_and_stops_without_leftovers(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    first = Up(data_dir, port)
    try:
        banner = first.wait_for_line("Potluck is up")
        assert f"http://127.0.0.1:{port}/" in banner
        password_line = first.wait_for_line("first admin login")
        assert "admin / " in password_line
        status, ready = http_json(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, ready
        created = first.cli("keys", "create", "--org", "default", "--name", "e2e")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        status, me = http_json(f"http://127.0.0.1:{port}/api/me", key)
        assert status == 200 and me["organization"]["slug"] == "default"
        twin = first.cli("up", "--port", str(free_port()))
        assert twin.returncode == 1 and "already running" in twin.stderr
        family = first.family(data_dir)
        assert len(family) >= 6  # up, agent, beat, web master + worker, redis, postgres...
    finally:
        code = first.stop()
    output = "".join(first.lines)
    assert code == 0, output
    assert "stopping: web, beat, agent, redis, postgres" in output
    _gone, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [], [p.info if hasattr(p, "info") else p.pid for p in alive]
    assert not (data_dir / "run" / "services.json").exists()

    # A second start on the same data dir reuses the data: the key still works, and
    # no new admin password is minted.
    second = Up(data_dir, port)
    try:
        second.wait_for_line("Potluck is up")
        status, me = http_json(f"http://127.0.0.1:{port}/api/me", key)
        assert status == 200 and me["api_key"] == key[:16]
    finally:
        assert second.stop() == 0
    assert "first admin login" not in "".join(second.lines)
