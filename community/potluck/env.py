# SPDX-License-Identifier: Apache-2.0
"""Typed access to the environment, and the data dir's runtime files.

Everything configurable is read here, once, so settings and the CLI agree. A
secret may also be given as ``NAME_FILE`` (a path whose content is the value).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

SERVICES_FILE = "run/services.json"


def env_str(name: str, default: str | None = None) -> str | None:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def data_dir() -> Path:
    return Path(env_str("POTLUCK_DATA_DIR", "./.potluck") or "./.potluck").resolve()


def secret_key(directory: Path) -> str:
    """SECRET_KEY from the environment, else one generated into the data dir on first use."""
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    path = directory / "secret_key"
    if path.exists():
        return path.read_text().strip()
    directory.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    # O_EXCL: two processes racing on first start must agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def running_services(directory: Path) -> dict[str, str]:
    """URLs of the embedded services that a running ``potluck up`` published, if any."""
    path = directory / SERVICES_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def database_url(directory: Path) -> str | None:
    return env_str("DATABASE_URL") or running_services(directory).get("DATABASE_URL")


def redis_url(directory: Path) -> str | None:
    return env_str("REDIS_URL") or running_services(directory).get("REDIS_URL")


def celery_broker_url(url: str) -> str:
    """Celery spells a unix-socket Redis URL differently from redis-py."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url
