# SPDX-License-Identifier: Apache-2.0
"""`potluck up` serves a deployed model with real vLLM, and leaves no server behind on stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_DIR = REPO_ROOT / ".potluck-test" / "models" / "potluck-demo"
SERVED_NAME = f"up-demo-{os.getpid()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def servers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        argv = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and SERVED_NAME in argv:
            found.append(proc)
    return found


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    from potluck.demo_model import build_demo_model

    return build_demo_model(DEMO_DIR, steps=60, progress=False)


def test_stopping_up_drains_and_stops_its_replicas(tmp_path, demo_model_dir):
    low_port = 26100 + (os.getpid() % 120) * 50  # its own range: see test_replica_lifecycle
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(POTLUCK_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1",
               POTLUCK_REPLICA_PORTS=f"{low_port}-{low_port + 49}")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "potluck", "up", "--port", str(free_port()),
                               "--web-workers", "1"], env=env, stdout=out,
                              stderr=subprocess.STDOUT, start_new_session=True)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    try:
        deadline = time.monotonic() + 240
        while "Potluck is up" not in log.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        added = cli("models", "add", SERVED_NAME, "--path", str(demo_model_dir), "--public")
        assert added.returncode == 0, added.stderr
        deployed = cli("deploy", SERVED_NAME, "--replicas", "1")
        assert deployed.returncode == 0, deployed.stderr
        deadline = time.monotonic() + 240
        while " ready " not in cli("ps").stdout:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(2)
        [server] = servers()
        family = [server, *server.children(recursive=True)]
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=120)
        finally:
            for proc in servers():  # never leave a server behind, even when the test fails
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text()
    assert up.returncode == 0, output
    assert "stopping: web, beat, agent, redis, postgres" in output
    assert "stopped 1 replica(s) on node" in output
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [] and servers() == []
