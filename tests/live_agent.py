# SPDX-License-Identifier: Apache-2.0
"""Real node agents and the processes they start, for tests that need live vLLM or jobs.

The fixtures that use these live in ``tests/conftest.py``: ``demo_model_dir`` (the demo
model, built once and cached under .potluck-test/), ``reaper`` (kills every process
group a test started, even when it fails half-way) and ``start_agent``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / ".potluck-test" / "models" / "potluck-demo"
DEMO_STEPS = 60


def port_range(slot: int = 0) -> str:
    """A port range of this run's own: a server binds its port only ~40 s after the bind
    test that chose it, so two runs sharing a range could pick the same one."""
    low = 20000 + ((os.getpid() + slot * 7) % 120) * 50  # below the ephemeral ports
    return f"{low}-{low + 49}"


def vllm_servers(marker: str) -> dict[int, psutil.Process]:
    """vLLM API servers on the host whose command line holds ``marker``, by pid."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        argv = proc.info["cmdline"] or []
        if (proc.info["status"] != psutil.STATUS_ZOMBIE
                and "vllm.entrypoints.openai.api_server" in argv
                and any(marker in arg for arg in argv)):
            found[proc.pid] = proc
    return found


def group_members(pgids: set[int]) -> list[int]:
    """Live (non-zombie) processes in these process groups."""
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) in pgids:
                members.append(proc.pid)
    return members


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Agent:
    """``potluck agent --control`` in its own process group, logging to ``log``."""

    def __init__(self, env: dict[str, str], log: Path, groups: set[int], node: str,
                 python: str = sys.executable) -> None:
        self.log = log
        self.node = node
        handle = log.open("ab")
        self.process = subprocess.Popen(
            [python, "-m", "potluck", "agent", "--name", node, "--control"],
            env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        groups.add(self.process.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        kill_group(self.process.pid)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)
