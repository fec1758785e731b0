# SPDX-License-Identifier: Apache-2.0
"""`potluck up` in a throwaway data dir, for end-to-end tests.

The demo model is copied in from the test cache (no 2-minute rebuild); ports are this
run's own; on the way out `up` gets SIGTERM and anything of its data dir that is still
alive (vLLM servers, trainers) is killed, even when the test failed half-way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningPotluck:
    data: Path
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    family: list[psutil.Process] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck", *args], env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=120,
                              check=False)

    def ours(self) -> list[psutil.Process]:
        """vLLM servers and trainers working in this data dir."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            argv = " ".join(proc.info["cmdline"] or [])
            if (proc.info["status"] != psutil.STATUS_ZOMBIE and str(self.data) in argv
                    and ("vllm.entrypoints" in argv or "potluck.finetune.trainer" in argv)):
                found.append(proc)
        return found


@contextlib.contextmanager
def potluck_up(tmp_path: Path, demo_model_dir: Path, *, slot: int,
               **extra_env: str) -> Iterator[RunningPotluck]:
    """Yields once `up` says it is up; ``slot`` keeps replica ports apart between tests."""
    data = tmp_path / "data"
    shutil.copytree(demo_model_dir, data / "models" / "potluck-demo")
    low_port = 27100 + ((os.getpid() + slot * 37) % 100) * 20
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(POTLUCK_DATA_DIR=str(data), PYTHONUNBUFFERED="1", POTLUCK_DEMO_STEPS="60",
               POTLUCK_REPLICA_PORTS=f"{low_port}-{low_port + 19}", **extra_env)
    running = RunningPotluck(data=data, env=env, port=free_port(), log=tmp_path / "up.log")
    with running.log.open("wb") as out:
        running.process = subprocess.Popen(
            [sys.executable, "-m", "potluck", "up", "--port", str(running.port),
             "--web-workers", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "Potluck is up" not in running.output():
            assert running.process.poll() is None and time.monotonic() < deadline, \
                running.output()
            time.sleep(0.5)
        yield running
    finally:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.returncode = running.process.wait(timeout=180)
        finally:
            for proc in running.ours():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
