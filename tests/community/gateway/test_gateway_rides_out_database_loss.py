# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL unreachable from a web process (issues 18 and 21): /v1 keeps serving the keys
the worker knows, a key it never saw gets an OpenAI-shaped 503, /api answers 503 in DRF's
shape (never an HTML 500), usage keeps flowing, and everything works again once the
database answers, without restarting anything. The database is cut for the web process
only (a TCP forwarder between them), so the test itself keeps its own connection."""

from __future__ import annotations

import time

import httpx
import pytest
from gateway_harness import running_gateway, wait_until_listed
from tcp_proxy import CuttableProxy

from potluck.usage.stream import STREAM_KEY, decode

pytestmark = pytest.mark.slow


def recorded(url: str) -> list[str]:
    import redis

    conn = redis.Redis.from_url(url, socket_timeout=2)
    return [decode(fields).request_id for _, fields in conn.xrange(STREAM_KEY)]


def completion(gateway, key: str) -> httpx.Response:
    return httpx.post(gateway.v1 + "/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": "demo", "prompt": "x", "max_tokens": 2})


def get(gateway, path: str, key: str) -> httpx.Response:
    return httpx.get(gateway.url + path, timeout=30, headers={"authorization": f"Bearer {key}"})


def test_database_loss_serves_known_keys_and_answers_503_in_each_shape(
        serving, upstream, live_env, tmp_path, org, key_for):
    from django.db import connection

    settings = connection.settings_dict
    assert settings["HOST"].startswith("/"), "the test database is on a unix socket"
    proxy = CuttableProxy.to_unix_socket(
        f"{settings['HOST']}/.s.PGSQL.{settings['PORT'] or 5432}").start()
    env = {**live_env, "DATABASE_URL": f"postgresql://{settings['USER'] or 'postgres'}"
                                       f"@127.0.0.1:{proxy.port}/{settings['NAME']}"}
    known = key_for(org, name="known")
    unseen = key_for(org, name="unseen")
    serving.model("demo", replica_ports=(upstream.port,))
    with running_gateway(env, tmp_path) as gateway:
        wait_until_listed(gateway, known, "demo")
        assert completion(gateway, known).status_code == 200
        assert get(gateway, "/api/me", known).status_code == 200

        proxy.cut()
        served = []
        for _ in range(6):  # for longer than the key cache's 1 s
            answer = completion(gateway, known)
            assert answer.status_code == 200, answer.text
            served.append(answer.headers["x-request-id"])
            time.sleep(0.5)

        refused = completion(gateway, unseen)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "database_unavailable"
        assert refused.json()["error"]["type"] == "server_error"
        assert int(refused.headers["retry-after"]) > 0 and refused.headers["x-request-id"]

        api = get(gateway, "/api/me", known)
        assert api.status_code == 503 and api.headers["content-type"] == "application/json"
        assert api.json()["detail"].startswith("The service cannot reach its database")
        assert int(api.headers["retry-after"]) > 0
        files = get(gateway, "/v1/files", known)  # an OpenAI endpoint that Django serves
        assert files.status_code == 503
        assert files.json()["error"]["code"] == "database_unavailable"
        assert get(gateway, "/readyz", known).status_code == 503

        proxy.restore()
        deadline = time.monotonic() + 30
        while get(gateway, "/api/me", known).status_code != 200:
            assert time.monotonic() < deadline, gateway.log_path.read_text()[-3000:]
            time.sleep(0.2)
        assert completion(gateway, unseen).status_code == 200
        assert gateway.process.poll() is None  # nothing was restarted

        deadline = time.monotonic() + 15
        while not set(served) <= set(recorded(live_env["REDIS_URL"])):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        log = gateway.log_path.read_text()
        assert log.count("API keys: the database is unreachable") == 1
        assert "the database answers again" in log
        assert "Internal Server Error" not in log and "Traceback" not in log
    proxy.cut()
