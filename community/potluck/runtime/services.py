# SPDX-License-Identifier: Apache-2.0
"""Bring up the state services (PostgreSQL, Redis): configured ones, or embedded ones."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from potluck import env
from potluck.runtime.embedded import EmbeddedPostgres, EmbeddedRedis


@dataclass
class StateServices:
    data_dir: Path
    database_url: str
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "POTLUCK_DATA_DIR": str(self.data_dir)}

    def publish(self) -> None:
        """Let other CLI commands on this data dir find the embedded services while we run.

        Only embedded URLs are written (unix sockets, no passwords); configured ones may
        hold credentials and stay in the environment that set them.
        """
        urls = {}
        for service in self.embedded:
            name = "DATABASE_URL" if isinstance(service, EmbeddedPostgres) else "REDIS_URL"
            urls[name] = service.url
        path = self.data_dir / env.SERVICES_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({**urls, "pid": os.getpid()}, handle)
        tmp.replace(path)

    def unpublish(self) -> None:
        (self.data_dir / env.SERVICES_FILE).unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop what we started, newest first (Redis, then PostgreSQL)."""
        errors = []
        for service in reversed(self.embedded):
            try:
                service.stop()
            except Exception as exc:
                errors.append(f"{type(service).__name__}: {exc}")
        self.embedded.clear()
        if errors:
            raise RuntimeError("; ".join(errors))


def start_state_services(data_dir: Path) -> StateServices:
    """Use DATABASE_URL / REDIS_URL when set; otherwise start embedded servers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        database_url = env.env_str("DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(data_dir)
            started.append(postgres)
            database_url = postgres.start()
        redis_url = env.env_str("REDIS_URL")
        if not redis_url:
            redis_server = EmbeddedRedis(data_dir)
            started.append(redis_server)
            redis_url = redis_server.start()
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    return StateServices(data_dir, database_url, redis_url, started)


@contextmanager
def state_services(data_dir: Path) -> Iterator[StateServices]:
    services = start_state_services(data_dir)
    try:
        yield services
    finally:
        services.stop()
