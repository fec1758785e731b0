# SPDX-License-Identifier: Apache-2.0
"""The built console works under its Content-Security-Policy in a real Chromium: sign in
over plain http (as `make run` serves it) and every page loads with no CSP violation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import override_settings

from potluck.accounts import services
from potluck.web_security import CONSOLE_CSP

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "csp@acme.test"
PASSWORD = "correct horse battery staple"


def test_the_built_console_runs_under_its_csp_with_no_violation(live_server, org):
    assert shutil.which("node") and CHROMIUM.exists(), "Node.js and chromium are needed"
    assert (FRONTEND / "node_modules").is_dir(), "run `cd frontend && npm ci` first"
    build = subprocess.run(["npx", "vite", "build"], cwd=FRONTEND, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    services.set_password(services.get_or_create_user(EMAIL), PASSWORD)
    services.add_member(org, EMAIL, "owner")

    dist = FRONTEND / "dist"
    with override_settings(CONSOLE_DIST_DIR=dist, STATICFILES_DIRS=[("console", dist)]):
        browser = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "console_csp.mjs")], capture_output=True,
            text=True, timeout=600, check=False,
            env={**os.environ, "FRONTEND": str(FRONTEND), "BASE_URL": live_server.url,
                 "EMAIL": EMAIL, "PASSWORD": PASSWORD, "CHROMIUM": str(CHROMIUM)})
    assert browser.returncode == 0, browser.stdout[-3000:] + browser.stderr[-3000:]
    report = json.loads(browser.stdout.strip().splitlines()[-1])
    assert report["csp"] == CONSOLE_CSP
    assert report["pages"] == ["Models", "Playground", "Fine-tuning", "Batches", "Usage",
                               "API keys", "Members", "Enterprise", "Overview", "Invitations",
                               "Invitation link"]
    assert report["violations"] == []
