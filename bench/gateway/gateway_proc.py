# SPDX-License-Identifier: Apache-2.0
"""The gateway as deployed: gunicorn + uvicorn worker, potluck.gunicorn_conf, ONE worker."""

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


def start(run_dir: Path) -> GatewayProcess:
    port = procs.free_port()
    env = {**os.environ, "POTLUCK_BIND": f"127.0.0.1:{port}", "POTLUCK_WEB_WORKERS": "1",
           "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"), "PYTHONUNBUFFERED": "1"}
    log = run_dir / "gateway.log"
    process = procs.spawn([sys.executable, "-m", "gunicorn", "-c", "python:potluck.gunicorn_conf",
                           "potluck.asgi:application"], log, env)
    gateway = GatewayProcess(port, process, log)
    try:
        procs.wait_until(lambda: _healthy(gateway.url), 90, "gateway (gunicorn)", process, log)
    except BaseException:
        procs.stop(process)
        raise
    return gateway


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
        return response.status == 200
