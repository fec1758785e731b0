# SPDX-License-Identifier: Apache-2.0
"""The commands that deploy/ runs (the same in the systemd units, the chart and the Compose
file) start a working Potluck: migrations, then web, beat and a node agent, reading their
secrets from files and their settings from deploy/systemd/potluck.env."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from deploy_files import DEPLOY, find
from deploy_files import render_chart as render
from deploy_files import unit_values as values
from waiting import wait_for

pytestmark = pytest.mark.slow
UNITS = DEPLOY / "systemd"
INSTALL_PREFIX = "/opt/potluck/venv"
PROCESSES = {"migrate": "potluck-migrate.service", "web": "potluck-web.service",
             "beat": "potluck-beat.service", "agent": "potluck-agent.service"}


def unit_command(process: str) -> list[str]:
    [command] = values(UNITS / PROCESSES[process], "ExecStart")
    return shlex.split(command)


def without_prefix(argv: list[str]) -> list[str]:
    """A command as the image runs it: programs by name, from the PATH."""
    return [Path(arg).name if arg.startswith(INSTALL_PREFIX) else arg for arg in argv]


def test_systemd_the_chart_and_compose_run_the_same_commands():
    pods = render({})
    chart = {
        "web": find(pods, "Deployment", "potluck-web"),
        "beat": find(pods, "Deployment", "potluck-beat"),
        "agent": find(pods, "DaemonSet", "potluck-agent"),
    }
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]
    for process, manifest in chart.items():
        command = manifest["spec"]["template"]["spec"]["containers"][0]["command"]
        expected = without_prefix(unit_command(process))
        # The chart adds the agent's concurrency; the command is otherwise the same.
        assert command[:len(expected)] == expected, process
        assert compose[process]["command"] == expected, process
    # Migrations: `potluck bootstrap` with its standard output (a password) discarded.
    job = find(pods, "Job", "potluck-migrations")["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == compose["migrate"]["command"] == [
        "sh", "-c", "exec potluck bootstrap > /dev/null"]
    assert without_prefix(unit_command("migrate")) == ["potluck", "bootstrap"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readyz(port: int) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/readyz",
                                     headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError:
        return 0, {}


def unit_environment(credentials: Path) -> dict[str, str]:
    """potluck.env's settings plus the units' Environment= lines (%d: the credentials)."""
    env = {}
    for line in (UNITS / "potluck.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    for unit in PROCESSES.values():
        for assignment in values(UNITS / unit, "Environment"):
            for pair in shlex.split(assignment):
                key, _, value = pair.partition("=")
                env[key] = value.replace("%d", str(credentials))
    return env


def test_the_units_commands_start_web_beat_and_an_agent_that_serve(live_env, reaper,
                                                                   tmp_path):
    from live_agent import port_range

    from potluck.nodes.models import Node

    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "secret_key").write_text("deploy-test-" + "k" * 40)
    (credentials / "database_url").write_text(live_env["DATABASE_URL"])
    (credentials / "redis_url").write_text(live_env["REDIS_URL"])
    (credentials / "metrics_token").write_text("deploy-test-token")
    data_dir, shared = tmp_path / "var-lib-potluck", tmp_path / "shared"
    port, node = free_port(), f"deploy-test-{os.getpid()}"
    env = {key: value for key, value in live_env.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}  # only the _FILE ways
    env.update(unit_environment(credentials))
    # This host's own paths, port and name in place of the example's.
    env.update(POTLUCK_DATA_DIR=str(data_dir), POTLUCK_MODEL_ROOTS=str(shared / "models"),
               POTLUCK_FILE_STORAGE_ROOT=str(shared / "files"),
               POTLUCK_BIND=f"127.0.0.1:{port}", POTLUCK_WEB_WORKERS="1",
               POTLUCK_NODE_NAME=node, POTLUCK_NODE_ADDRESS="127.0.0.1",
               POTLUCK_REPLICA_PORTS=port_range(), POTLUCK_NODE_HEARTBEAT_SECONDS="1")
    data_dir.mkdir()

    def command(process: str) -> list[str]:
        return [arg.replace(INSTALL_PREFIX, str(Path(sys.executable).parent.parent))
                   .replace("/var/lib/potluck", str(data_dir)) for arg in unit_command(process)]

    migrated = subprocess.run(command("migrate"), env=env, cwd=data_dir, capture_output=True,
                              text=True, timeout=300, check=False)
    assert migrated.returncode == 0, migrated.stderr

    logs = {}
    for process in ("agent", "beat", "web"):
        logs[process] = tmp_path / f"{process}.log"
        with logs[process].open("wb") as log:
            child = subprocess.Popen(command(process), env=env, cwd=data_dir, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        reaper.add(child.pid)

    def ready() -> bool:
        status, body = readyz(port)
        return status == 200 and node in body.get("nodes", [])

    try:
        wait_for(ready, 180, "/readyz to list the node agent")
    except AssertionError as exc:
        raise AssertionError("\n".join(f"== {p}\n{path.read_text()[-3000:]}"
                                       for p, path in logs.items())) from exc
    assert Node.objects.get(name=node).address == "127.0.0.1"
    wait_for(lambda: "Sending due task" in logs["beat"].read_text(), 60,
             "beat to send its periodic tasks")
