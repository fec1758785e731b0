# SPDX-License-Identifier: Apache-2.0
"""The web console in a real headless Chromium against a live `potluck up`.

The frontend is built, `potluck up` serves it with the demo model, a person with a password
is added, and frontend/e2e/console.e2e.mjs (playwright-core driving Debian's chromium) signs
in, creates a key, chats with streamed tokens, uploads a dataset, fine-tunes and watches the
loss chart, tries the result and sees usage appear. Screenshots of every page are kept in
.potluck-test/artifacts/console/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from embedded import potluck_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / ".potluck-test" / "artifacts" / "console"
CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "console-e2e@potluck.test"
PASSWORD = "correct horse battery staple"



def test_the_console_end_to_end_in_a_real_browser(tmp_path: Path, demo_model_dir: Path) -> None:
    assert shutil.which("node") and shutil.which("npm"), "Node.js is needed for the console"
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium)"
    assert (FRONTEND / "node_modules").is_dir(), "run `cd frontend && npm ci` first"
    build = subprocess.run(["npm", "run", "build"], cwd=FRONTEND, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    with potluck_up(tmp_path, demo_model_dir, slot=2,
                    POTLUCK_CONSOLE_DIR=str(FRONTEND / "dist")) as up:
        added = up.cli("users", "add", EMAIL, "--org", "default", "--role", "owner")
        assert added.returncode == 0, added.stderr
        password = up.cli("users", "set-password", EMAIL, "--password-stdin",
                          stdin=PASSWORD + "\n")
        assert password.returncode == 0, password.stderr

        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)
        browser = subprocess.run(
            ["node", "e2e/console.e2e.mjs"], cwd=FRONTEND, capture_output=True, text=True,
            timeout=1200, check=False,
            env={**os.environ, "BASE_URL": up.base, "EMAIL": EMAIL,
                 "PASSWORD": PASSWORD, "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": str(CHROMIUM)})
        print(browser.stdout)
        assert browser.returncode == 0, (browser.stdout[-4000:], browser.stderr[-4000:],
                                         up.output()[-3000:])
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert len(shots) == 12 and "failure.png" not in shots, shots
    assert up.returncode == 0, up.output()[-3000:]
