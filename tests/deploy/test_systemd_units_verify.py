# SPDX-License-Identifier: Apache-2.0
"""deploy/systemd: the units pass `systemd-analyze verify`, and the node agent's unit
leaves the vLLM replicas running when the agent stops (a new agent adopts them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_files import DEPLOY, unknown_settings
from deploy_files import unit_values as values

UNITS_DIR = DEPLOY / "systemd"
UNITS = sorted(UNITS_DIR.glob("*.service"))
INSTALL_PREFIX = "/opt/potluck/venv"


def test_the_units_are_web_beat_agent_migrations_and_replica_stop():
    assert [u.name for u in UNITS] == [
        "potluck-agent.service", "potluck-beat.service", "potluck-migrate.service",
        "potluck-stop-replicas.service", "potluck-web.service"]


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    """The units as installed, with the virtualenv at /opt/potluck/venv: here that path is
    a folder of links to this machine's Potluck, so verify also checks every ExecStart
    names a program that exists. verify exits 0 on a bad key or value, so its output must
    be empty too."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: install Debian's systemd package"
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    for program in ("potluck", "gunicorn", "python"):
        (venv_bin / program).symlink_to(Path(sys.executable).parent / program)
    units = tmp_path / "units"
    units.mkdir()
    for unit in UNITS:
        (units / unit.name).write_text(
            unit.read_text().replace(INSTALL_PREFIX, str(tmp_path / "venv")))
    done = subprocess.run([analyze, "verify", *sorted(str(p) for p in units.iterdir())],
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_reports_a_misspelt_directive(tmp_path):
    """The check above is not vacuous: a unit with a misspelt key is reported."""
    unit = tmp_path / "potluck-beat.service"
    unit.write_text((UNITS_DIR / "potluck-beat.service").read_text()
                    .replace("RestartSec=", "RestartSecs=")
                    .replace(INSTALL_PREFIX, str(Path(sys.executable).parent.parent)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False)
    assert "Unknown key 'RestartSecs'" in done.stderr


def test_stopping_the_agent_signals_the_agent_alone():
    """Replicas are their own process groups and a restarted agent adopts them: systemd
    must not kill the unit's whole control group (its default) when the agent stops."""
    agent = UNITS_DIR / "potluck-agent.service"
    assert values(agent, "KillMode") == ["process"]
    assert values(agent, "Restart") == ["always"]
    assert values(agent, "ExecStart") == [f"{INSTALL_PREFIX}/bin/potluck agent --control"]


@pytest.mark.parametrize("unit", ["potluck-web.service", "potluck-beat.service",
                                  "potluck-agent.service"])
def test_long_running_units_restart_and_read_the_shared_environment_file(unit):
    path = UNITS_DIR / unit
    assert values(path, "Restart") == ["always"]
    assert values(path, "EnvironmentFile") == ["/etc/potluck/potluck.env"]
    assert values(path, "User") == ["potluck"]


@pytest.mark.parametrize("unit", [u.name for u in UNITS])
def test_secrets_reach_the_units_as_credentials_files(unit):
    path = UNITS_DIR / unit
    credentials = {v.partition(":")[0] for v in values(path, "LoadCredential")}
    assert {"secret_key", "database_url", "redis_url"} <= credentials
    environment = " ".join(values(path, "Environment"))
    for setting, credential in (("SECRET_KEY", "secret_key"), ("DATABASE_URL", "database_url"),
                                ("REDIS_URL", "redis_url")):
        assert f"{setting}_FILE=%d/{credential}" in environment


def test_the_migration_unit_discards_the_first_admin_password():
    path = UNITS_DIR / "potluck-migrate.service"
    assert values(path, "ExecStart") == [f"{INSTALL_PREFIX}/bin/potluck bootstrap"]
    assert values(path, "StandardOutput") == ["null"]  # `bootstrap` prints it on stdout


def test_the_environment_file_holds_settings_potluck_reads_and_no_secret():
    text = (UNITS_DIR / "potluck.env").read_text()
    # Active and commented-out assignments alike.
    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.M))
    for unit in UNITS:
        for assignment in values(unit, "Environment"):
            names.update(re.findall(r"([A-Z][A-Z0-9_]+)=", assignment))
    assert "POTLUCK_NODE_ADDRESS" in names and "POTLUCK_MODEL_ROOTS" in names
    assert unknown_settings(names) == set()
    assert not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} & names
