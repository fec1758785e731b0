# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A gateway worker that has only ever served /v1 follows the licence: a licence installed
by another process switches its features on within 5 s, and one that lapses switches them
off within 5 s (real processes; no Django request reaches the worker in between)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from gateway_harness import running_gateway, scrape

from potluck_enterprise.licensing.licence import format_time

pytestmark = pytest.mark.slow

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins"
FEATURE = re.compile(r'^potluck_features_enabled\{feature="sso",pid="\d+"\} (\S+)$', re.M)


def sso_state(gateway) -> float | None:
    status, text = scrape(gateway)
    assert status == 200
    found = FEATURE.search(text)
    return float(found.group(1)) if found else None


def wait_for_state(gateway, key: str, wanted: float, since: float, limit: float) -> float:
    """Seconds from ``since`` until the worker reports ``wanted``; meanwhile it keeps
    serving /v1 (and only /v1)."""
    while time.monotonic() - since < limit + 10:
        assert httpx.get(gateway.v1 + "/models", timeout=5,
                         headers={"authorization": f"Bearer {key}"}).status_code == 200
        if sso_state(gateway) == wanted:
            return time.monotonic() - since
        time.sleep(0.1)
    raise AssertionError(f"sso never became {wanted}")


def test_a_v1_only_worker_applies_an_install_and_a_lapse_within_5_seconds(
        issuer, live_env, tmp_path, org, key_for):
    public = tmp_path / "issuer.pem"
    public.write_bytes(issuer.public_pem)
    env = {**live_env, "POTLUCK_PLUGINS": "potluck_test_issuer_key",
           "POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE": str(public),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN_DIR),
                                                       live_env.get("PYTHONPATH")]))}
    key = key_for(org, ["inference"])
    with running_gateway(env, tmp_path) as gateway:
        assert sso_state(gateway) in (None, 0.0)  # no licence: nothing on

        now = timezone.now()
        lapses = now + timedelta(seconds=20)
        licence = tmp_path / "acme.license"
        licence.write_text(issuer.licence(
            features=["sso"], issued_at=now - timedelta(minutes=1), grace_days=0,
            expires_at=format_time(lapses)))
        installed = subprocess.run(
            [sys.executable, "-m", "potluck", "license", "install", str(licence)], env=env,
            capture_output=True, text=True, timeout=120)
        assert installed.returncode == 0, installed.stderr
        took_on = wait_for_state(gateway, key, 1.0, time.monotonic(), 5)
        assert took_on <= 5, f"the install took {took_on:.1f} s to reach the worker"

        wait = (lapses - timezone.now()).total_seconds()
        assert wait > 0, "the licence lapsed before the test could watch it"
        time.sleep(wait)
        took_off = wait_for_state(gateway, key, 0.0, time.monotonic(), 5)
        assert took_off <= 5, f"the lapse took {took_off:.1f} s to reach the worker"
        print(f"licence install reached the /v1 worker in {took_on:.2f} s, "
              f"its lapse in {took_off:.2f} s")
        assert "GET /api" not in gateway.log_path.read_text()
