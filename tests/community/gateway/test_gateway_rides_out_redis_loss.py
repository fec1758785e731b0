# SPDX-License-Identifier: Apache-2.0
"""Redis dies under traffic (issue 21.1 and 21.2): the gateway keeps answering in OpenAI's
shape (limits from each worker's own counts, usage kept in its journal), a worker killed
meanwhile loses no usage, and once Redis is back every record reaches the usage stream
with no further traffic, each exactly once."""

from __future__ import annotations

import signal
import time

import httpx
import psutil
import pytest
from gateway_harness import running_gateway, wait_until_listed

from potluck.runtime.embedded import EmbeddedRedis
from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.slow


def ask(gateway, key: str) -> str:
    response = httpx.post(gateway.v1 + "/completions", timeout=30,
                          headers={"authorization": f"Bearer {key}"},
                          json={"model": "demo", "prompt": "x", "max_tokens": 2})
    assert response.status_code == 200, response.text
    assert response.json()["choices"]
    return response.headers["x-request-id"]


def recorded(url: str) -> list[str]:
    import redis

    try:
        conn = redis.Redis.from_url(url, socket_timeout=2)
        return [decode(fields).request_id for _, fields in conn.xrange(STREAM_KEY)]
    except (redis.RedisError, OSError):
        return []


def test_redis_killed_under_traffic_costs_no_answer_and_no_usage(
        serving, upstream, live_env, tmp_path, org, key_for):
    from potluck.accounts.models import ApiKey

    private = EmbeddedRedis(tmp_path / "private-redis")
    url = private.start()
    try:
        key = key_for(org, ["inference"], name="limited")
        ApiKey.objects.filter(name="limited").update(rpm_limit=1000)  # the limiter is on
        serving.model("demo", replica_ports=(upstream.port,))
        with running_gateway({**live_env, "REDIS_URL": url}, tmp_path) as gateway:
            wait_until_listed(gateway, key, "demo")
            before = [ask(gateway, key) for _ in range(3)]
            deadline = time.monotonic() + 10
            while not set(before) <= set(recorded(url)):
                assert time.monotonic() < deadline
                time.sleep(0.05)

            private.process.send_signal(signal.SIGKILL)
            private.process.wait(10)
            during = [ask(gateway, key) for _ in range(10)]
            [worker] = psutil.Process(gateway.process.pid).children()
            worker.kill()  # its journal is all it leaves of those ten
            worker.wait(10)
            deadline = time.monotonic() + 60
            while True:  # gunicorn starts a new worker
                try:
                    after = [ask(gateway, key) for _ in range(3)]
                    break
                except (httpx.HTTPError, AssertionError):
                    assert time.monotonic() < deadline
                    time.sleep(0.2)

            private.start()  # Redis is back (the same socket), and no request comes
            deadline = time.monotonic() + 30
            while not set(during + after) <= set(recorded(url)):
                assert time.monotonic() < deadline, (len(recorded(url)), gateway.log_path
                                                     .read_text()[-2000:])
                time.sleep(0.1)
            ids = recorded(url)
            assert all(ids.count(rid) == 1 for rid in during + after)
            log = gateway.log_path.read_text()
            assert "Redis unreachable" in log and "Internal Server Error" not in log
    finally:
        private.stop()
