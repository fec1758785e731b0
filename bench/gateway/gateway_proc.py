# SPDX-License-Identifier: Apache-2.0
"""Servers run as Potluck's web is deployed: gunicorn + uvicorn worker, potluck.gunicorn_conf,
ONE worker. Potluck's gateway (and its lever variants), and the raw forwarder."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import procs


@dataclass
class GatewayProcess:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The gunicorn worker(s): children of the master."""
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]


BENCH_DIR = Path(__file__).resolve().parent


def start(run_dir: Path, name: str = "gateway", *, app: str = "potluck.asgi:application",
          args: tuple[str, ...] = (), env: dict[str, str] | None = None,
          plugins: str = "noop_policies") -> GatewayProcess:
    """``gunicorn -c python:potluck.gunicorn_conf APP`` with one worker, as deployed.

    ``plugins``: POTLUCK_PLUGINS (the bench's no-op policies by default; importable from
    this folder, which goes on PYTHONPATH). ``args``: extra gunicorn arguments (they
    override the config file's), ``env``: extra environment.
    """
    port = procs.free_port()
    path = os.pathsep.join(p for p in (str(BENCH_DIR), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "POTLUCK_BIND": f"127.0.0.1:{port}", "POTLUCK_WEB_WORKERS": "1",
                "PROMETHEUS_MULTIPROC_DIR": str(run_dir / f"prometheus-{name}"),
                "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, "POTLUCK_PLUGINS": plugins,
                **(env or {})}
    log = run_dir / f"{name}.log"
    process = procs.spawn([sys.executable, "-m", "gunicorn", "-c", "python:potluck.gunicorn_conf",
                           *args, app], log, full_env)
    gateway = GatewayProcess(port, process, log)
    try:
        procs.wait_until(lambda: _healthy(gateway.url), 90, f"{name} (gunicorn)", process, log)
    except BaseException:
        procs.stop(process)
        raise
    return gateway


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
        return response.status == 200
