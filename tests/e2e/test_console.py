# SPDX-License-Identifier: Apache-2.0
"""The web console in a real headless Chromium against a live `potluck up`.

The frontend is built, `potluck up` serves it with the demo model, a person with a password
is added, and frontend/e2e/console.e2e.mjs (playwright-core driving Debian's chromium) signs
in, creates a key, chats with streamed tokens, uploads a dataset, fine-tunes and watches the
loss chart, tries the result and sees usage appear. Screenshots of every page are kept in
.potluck-test/artifacts/console/.
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
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / ".potluck-test" / "artifacts" / "console"
CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "console-e2e@potluck.test"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_console_end_to_end_in_a_real_browser(tmp_path: Path, demo_model_dir: Path) -> None:
    assert shutil.which("node") and shutil.which("npm"), "Node.js is needed for the console"
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium)"
    assert (FRONTEND / "node_modules").is_dir(), "run `cd frontend && npm ci` first"
    build = subprocess.run(["npm", "run", "build"], cwd=FRONTEND, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    data = tmp_path / "data"
    shutil.copytree(demo_model_dir, data / "models" / "potluck-demo")
    low_port = 28100 + ((os.getpid() + 53) % 100) * 20
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(POTLUCK_DATA_DIR=str(data), PYTHONUNBUFFERED="1", POTLUCK_DEMO_STEPS="60",
               POTLUCK_REPLICA_PORTS=f"{low_port}-{low_port + 19}",
               POTLUCK_CONSOLE_DIR=str(FRONTEND / "dist"))
    log = tmp_path / "up.log"

    def ours() -> list[psutil.Process]:
        """vLLM servers and trainers of this data dir."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            argv = " ".join(proc.info["cmdline"] or [])
            if (proc.info["status"] != psutil.STATUS_ZOMBIE and str(data) in argv
                    and ("vllm.entrypoints" in argv or "potluck.finetune.trainer" in argv)):
                found.append(proc)
        return found

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)

    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "potluck", "up", "--port", str(port),
                               "--web-workers", "1"], env=env, stdout=out,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "Potluck is up" not in log.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        added = cli("users", "add", EMAIL, "--org", "default", "--role", "owner")
        assert added.returncode == 0, added.stderr
        password = cli("users", "set-password", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
        assert password.returncode == 0, password.stderr

        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)
        browser = subprocess.run(
            ["node", "e2e/console.e2e.mjs"], cwd=FRONTEND, capture_output=True, text=True,
            timeout=1200, check=False,
            env={**os.environ, "BASE_URL": f"http://127.0.0.1:{port}", "EMAIL": EMAIL,
                 "PASSWORD": PASSWORD, "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": str(CHROMIUM)})
        print(browser.stdout)
        assert browser.returncode == 0, (browser.stdout[-4000:], browser.stderr[-4000:],
                                         log.read_text()[-3000:])
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert len(shots) == 12 and "failure.png" not in shots, shots
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=180)
        finally:
            for proc in ours():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
    assert up.returncode == 0, log.read_text()[-3000:]
