# SPDX-License-Identifier: Apache-2.0
"""The embedded state services: credentials never published, leftovers adopted not doubled."""

from __future__ import annotations

import json
import stat

import psutil

from potluck.runtime.embedded import EmbeddedRedis
from potluck.runtime.services import StateServices


def test_configured_urls_with_credentials_are_not_written_to_disk(tmp_path):
    services = StateServices(tmp_path, "postgresql://app:s3cret@db.internal/potluck",
                             "redis://:hunter2@cache.internal:6379/0")
    services.publish()
    published = tmp_path / "run" / "services.json"
    text = published.read_text()
    assert "s3cret" not in text and "hunter2" not in text
    assert set(json.loads(text)) == {"pid"}
    assert stat.S_IMODE(published.stat().st_mode) == 0o600
    services.unpublish()
    assert not published.exists()


def test_a_redis_left_running_by_a_crash_is_adopted_then_stopped(tmp_path):
    first = EmbeddedRedis(tmp_path)
    url = first.start()
    pid = first.process.pid
    try:
        # A new supervisor (the old one crashed without stopping Redis) finds it running.
        second = EmbeddedRedis(tmp_path)
        assert second.start() == url
        assert second.process is None  # adopted, not started again
        redis_servers = [p for p in psutil.process_iter(["cmdline"])
                         if str(first.socket) in " ".join(p.info["cmdline"] or [])]
        assert [p.pid for p in redis_servers] == [pid]
        second.stop()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    finally:
        first.stop()
