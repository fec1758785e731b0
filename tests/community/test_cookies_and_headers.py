# SPDX-License-Identifier: Apache-2.0
"""Cookies and headers of the Django side (issue 19): Secure cookies, HSTS and an https
redirect behind TLS, security headers on every answer, a Content-Security-Policy on the
console, and plain http on 127.0.0.1 (`make run`) still signing in."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from potluck.accounts import services
from potluck.accounts.signin import DEVICE_COOKIE
from potluck.web_security import CONSOLE_CSP

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9137"
SIGNED_IN_COOKIES = ("sessionid", "csrftoken", DEVICE_COOKIE)


@pytest.fixture
def alice(org):
    user = services.get_or_create_user("alice@acme.test")
    services.set_password(user, PASSWORD)
    services.add_member(org, "alice@acme.test", "member")
    return user


def _sign_in(client: APIClient, **extra: str):
    token = client.get("/api/session", **extra).cookies["csrftoken"].value
    return client.post("/api/session", {"email": "alice@acme.test", "password": PASSWORD},
                       format="json", HTTP_X_CSRFTOKEN=token, **extra)


def test_plain_http_on_localhost_signs_in_with_ordinary_cookies(alice):
    client = APIClient(enforce_csrf_checks=True)
    response = _sign_in(client)

    assert response.status_code == 200
    for name in SIGNED_IN_COOKIES:
        assert not response.cookies[name]["secure"], name
    assert response.cookies["sessionid"]["httponly"]
    assert "Strict-Transport-Security" not in response  # never over plain http
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_over_https_cookies_are_secure_and_hsts_is_sent(alice):
    client = APIClient(enforce_csrf_checks=True)
    response = _sign_in(client, secure=True, HTTP_REFERER="https://testserver/")

    assert response.status_code == 200, response.content
    for name in SIGNED_IN_COOKIES:
        assert response.cookies[name]["secure"], name
    assert response["Strict-Transport-Security"] == "max-age=31536000"


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
                   SECURE_SSL_REDIRECT=True)
def test_behind_a_tls_proxy_its_forwarded_proto_counts_and_http_is_redirected(alice):
    client = APIClient(enforce_csrf_checks=True)
    proxied = _sign_in(client, HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver",
                       HTTP_REFERER="https://testserver/")
    plain = APIClient().get("/api/session")
    probe = APIClient().get("/healthz")

    assert proxied.status_code == 200, proxied.content
    assert proxied.cookies["sessionid"]["secure"]
    assert proxied["Strict-Transport-Security"] == "max-age=31536000"
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/api/session"
    assert probe.status_code == 200  # health probes come over plain http


def test_the_console_page_carries_a_strict_content_security_policy(tmp_path: Path):
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    with override_settings(CONSOLE_DIST_DIR=tmp_path):
        response = APIClient().get("/")
    assert response["Content-Security-Policy"] == CONSOLE_CSP
    directives = dict(part.split(" ", 1) for part in CONSOLE_CSP.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONSOLE_CSP


def test_the_tls_proxy_setting_passes_djangos_deployment_checks(live_env):
    """`check --deploy` with POTLUCK_BEHIND_TLS_PROXY=true raises none of the warnings about
    HSTS, the https redirect or insecure cookies; without it, it does."""

    def warnings(**env: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-m", "potluck", "manage", "check", "--deploy", "--tag",
             "security"], env={**live_env, **env}, capture_output=True, text=True,
            timeout=180, check=False)
        return set(re.findall(r"\(security\.(W\d+)\)", done.stdout + done.stderr))

    behind_proxy = warnings(POTLUCK_BEHIND_TLS_PROXY="true")
    plain = warnings()

    tls_warnings = {"W004", "W008", "W012", "W016"}  # HSTS, redirect, session/CSRF cookie
    assert not behind_proxy & tls_warnings, behind_proxy
    assert tls_warnings - {"W004"} <= plain  # HSTS is on by default, sent only over HTTPS
