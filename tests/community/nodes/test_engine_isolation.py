# SPDX-License-Identifier: Apache-2.0
"""vLLM replicas and trainers get only the environment they need, and run as an
unprivileged user when the node agent runs as root (issue 19). The tests run as root, as
CI does: they create the system user ``potluck-engine`` like the embedded PostgreSQL
creates ``potluck-pg``."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from potluck.nodes import isolation
from potluck.registry.models import RegisteredModel, Source
from potluck.serving.models import Deployment, Replica
from potluck.serving.replica_process import server_env

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_SESSION_TOKEN": "aws-session", "GOOGLE_APPLICATION_CREDENTIALS": "/srv/gcp.json",
    "AZURE_CLIENT_SECRET": "azure-secret", "DATABASE_URL": "postgresql://u:pw@db/potluck",
    "REDIS_URL": "redis://:pw@redis", "SECRET_KEY": "django-secret",
    "POTLUCK_S3_BUCKET": "bucket", "STRIPE_API_KEY": "sk_live_x", "HF_TOKEN": "hf_x",
    "VLLM_API_KEY": "vllm-key", "CELERY_BROKER_URL": "redis://x",
    "DJANGO_SETTINGS_MODULE": "potluck.settings", "MY_APP_PASSWORD": "hunter2",
}
ALLOWED = {"VLLM_CPU_OMP_THREADS_BIND": "0-1", "OMP_NUM_THREADS": "2", "LC_ALL": "C.UTF-8",
           "NCCL_DEBUG": "INFO"}
PRIVATE_FILE = "secret_key"


@pytest.fixture
def agent_environment(monkeypatch) -> None:
    for name, value in {**SECRETS, **ALLOWED}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def engine_user() -> isolation.EngineUser:
    """The system user engines run as (created if missing), with a home of its own."""
    assert os.geteuid() == 0, "these tests run as root, as CI runs them"
    if subprocess.run(["id", isolation.ENGINE_SYSTEM_USER], capture_output=True,
                      check=False).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", isolation.ENGINE_SYSTEM_USER], check=True)
    entry = pwd.getpwnam(isolation.ENGINE_SYSTEM_USER)
    return isolation.EngineUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid,
                                home=Path("/nonexistent"))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder other users may traverse (pytest's own tmp dirs are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="potluck-isolation-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _replica(enable_lora: bool = False) -> Replica:
    model = RegisteredModel(name="tiny", source=Source.LOCAL, path="/models/tiny")
    return Replica(deployment=Deployment(model=model, engine_args={"enable_lora": enable_lora}),
                   gpu_ids=[])


@override_settings(ENGINE_USER="off")
def test_replicas_and_trainers_inherit_only_allowlisted_variables(agent_environment):
    for env in (server_env(_replica(enable_lora=True), cpu_only=True),
                isolation.engine_env()):
        assert not set(SECRETS) & set(env), sorted(set(SECRETS) & set(env))
        assert {name: env[name] for name in ALLOWED} == ALLOWED
        assert env["PATH"] == os.environ["PATH"]
        assert env["HF_HUB_OFFLINE"] == "1"
    replica_env = server_env(_replica(enable_lora=True), cpu_only=True)
    assert replica_env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert replica_env["VLLM_CPU_KVCACHE_SPACE"]


@override_settings(ENGINE_USER="off", ENGINE_ENV_ALLOW=["MY_TUNING_*", "EXTRA_ONE"])
def test_the_operator_can_allow_more_variables_but_never_tokens(monkeypatch):
    monkeypatch.setenv("MY_TUNING_THREADS", "4")
    monkeypatch.setenv("EXTRA_ONE", "1")
    monkeypatch.setenv("EXTRA_TWO", "2")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    with override_settings(ENGINE_ENV_ALLOW=["MY_TUNING_*", "EXTRA_ONE", "HF_*"]):
        env = isolation.engine_env()
    assert env["MY_TUNING_THREADS"] == "4" and env["EXTRA_ONE"] == "1"
    assert "EXTRA_TWO" not in env and "HF_TOKEN" not in env


def test_a_started_engine_runs_as_the_engine_user_with_no_secrets(
        agent_environment, engine_user, shared_dir):
    private = shared_dir / PRIVATE_FILE  # like the data dir's secret_key: 0600, root's
    private.write_text("the installation's secret")
    private.chmod(0o600)
    user = isolation.EngineUser(engine_user.name, engine_user.uid, engine_user.gid,
                                home=shared_dir / "home")
    script = f"id -u; id -G; env; cat {private} 2>&1; echo done"
    with (shared_dir / "out.log").open("wb") as output:
        child = isolation.start(["/bin/sh", "-c", script], env=isolation._allowed_env(user),
                                output=output, cwd=shared_dir, user=user)
    assert child.wait(timeout=30) == 0
    lines = (shared_dir / "out.log").read_text().splitlines()
    assert lines[0] == str(engine_user.uid)
    assert lines[1] == str(engine_user.gid)  # no supplementary groups: none of root's
    assert "the installation's secret" not in lines
    assert any("Permission denied" in line for line in lines)
    variables = {line.split("=", 1)[0] for line in lines if "=" in line}
    assert not set(SECRETS) & variables
    assert f"HOME={shared_dir / 'home'}" in lines and f"USER={engine_user.name}" in lines


def test_a_trainer_folder_is_handed_to_the_engine_user(engine_user, shared_dir):
    job = shared_dir / "finetune" / "ftjob-1"
    (job / "data").mkdir(parents=True)
    (job / "data" / "train.jsonl").write_text("{}\n")
    (job / "spec.json").write_text("{}")

    isolation.hand_over(job, user=engine_user)

    for path in (job, job / "data", job / "data" / "train.jsonl", job / "spec.json"):
        assert (path.stat().st_uid, path.stat().st_gid) == (engine_user.uid, engine_user.gid)
    done = subprocess.run(["/bin/sh", "-c", f"echo step > {job}/events.jsonl"],
                          user=engine_user.uid, group=engine_user.gid, extra_groups=[],
                          check=False)
    assert done.returncode == 0


def test_auto_keeps_root_with_a_warning_when_the_engine_user_cannot_run_python(
        engine_user, shared_dir, tmp_path, caplog):
    hidden = tmp_path / "private-python"  # under a root-only folder, like /root/.pyenv
    hidden.mkdir()
    hidden.chmod(0o700)
    (hidden / "python").symlink_to(sys.executable)

    with caplog.at_level(logging.WARNING, logger="potluck.nodes.isolation"):
        chosen = isolation.resolve_engine_user("auto", shared_dir, 0, str(hidden / "python"))
    with pytest.raises(RuntimeError, match=f"POTLUCK_ENGINE_USER={engine_user.name}: it "
                                           "cannot run"):
        isolation.resolve_engine_user(engine_user.name, shared_dir, 0, str(hidden / "python"))

    assert chosen is None
    assert "run as root, not potluck-engine" in caplog.text
    assert "set POTLUCK_ENGINE_USER=off" in caplog.text


def test_auto_switches_to_the_engine_user_when_it_can_run_python(
        engine_user, shared_dir, monkeypatch, python_for_all_users):
    python, python_env = python_for_all_users
    for name, value in python_env.items():
        monkeypatch.setenv(name, value)

    chosen = isolation.resolve_engine_user("auto", shared_dir, 0, python)

    assert chosen is not None and chosen.uid == engine_user.uid
    assert chosen.home == shared_dir / "engine-home"
    assert chosen.home.stat().st_uid == engine_user.uid
    assert oct(chosen.home.stat().st_mode & 0o777) == "0o700"


def test_other_settings_of_the_engine_user(shared_dir):
    assert isolation.resolve_engine_user("off", shared_dir, 0, sys.executable) is None
    assert isolation.resolve_engine_user("auto", shared_dir, 4321, sys.executable) is None
    with pytest.raises(RuntimeError, match="no such user"):
        isolation.resolve_engine_user("no-such-user-here", shared_dir, 0, sys.executable)
    daemon = pwd.getpwnam("daemon").pw_uid  # any user but root and nobody
    with pytest.raises(RuntimeError, match="needs the node agent to run as root"):
        isolation.resolve_engine_user("nobody", shared_dir, daemon, sys.executable)
