# SPDX-License-Identifier: Apache-2.0
"""Processes the bench starts: each in its own process group, always stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_TOOLS = {"nginx": "nginx-light", "wrk": "wrk"}


def ensure_tools() -> dict[str, str]:
    """nginx and wrk from Debian, installed once when missing (a fresh machine)."""
    missing = [pkg for tool, pkg in _TOOLS.items() if _find(tool) is None]
    if missing:
        if shutil.which("apt-get") is None:
            sys.exit(f"bench needs {', '.join(missing)} and there is no apt-get to install them")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        say(f"installing {' '.join(missing)} with apt-get")
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    found = {tool: _find(tool) for tool in _TOOLS}
    absent = [tool for tool, path in found.items() if path is None]
    if absent:
        sys.exit(f"bench needs {', '.join(absent)}; installing them failed")
    return {tool: str(path) for tool, path in found.items()}


def _find(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def stop(process: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers; never raises."""
    if process is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children that outlived it still get the KILL.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               process: subprocess.Popen | None = None, log: Path | None = None,
               interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}"
                               + (f"\n{tail(log)}" if log else ""))
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s"
                               + (f"\n{tail(log)}" if log else ""))
        time.sleep(interval)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting) of a process's main thread."""
    try:
        run_ns, wait_ns, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return (0.0, 0.0)
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def say(line: str = "") -> None:
    print(line, flush=True)


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine spent busy since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its live descendants."""
    import psutil

    total = 0.0
    try:
        members = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in members:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
