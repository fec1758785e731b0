# SPDX-License-Identifier: Apache-2.0
"""Rate limits hold across several gateway workers that lease request budgets from Redis:
a key limited to R requests a minute is never admitted more than R times in a window, and
is refused early by at most (workers - 1) x lease_size (the bound potluck.inference.limits
states). Admitted answers carry OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gateway_harness import running_gateway, wait_until_listed

from potluck.inference.limits import lease_size

pytestmark = pytest.mark.slow

WORKERS = 3
LIMIT = 40


def test_three_workers_never_admit_more_than_the_limit_in_a_window(
        serving, upstream, live_env, tmp_path, org, key_for):
    from potluck.accounts.models import ApiKey

    key = key_for(org, ["inference"], name="limited")
    ApiKey.objects.filter(name="limited").update(rpm_limit=LIMIT)
    serving.model("demo", replica_ports=(upstream.port,))
    with running_gateway(live_env, tmp_path, workers=WORKERS) as gateway:
        wait_until_listed(gateway, key, "demo")

        def call(_: int) -> tuple[int, int, dict]:
            response = httpx.post(gateway.v1 + "/completions", timeout=30,
                                  headers={"authorization": f"Bearer {key}"},
                                  json={"model": "demo", "prompt": "x", "max_tokens": 1})
            return int(time.time() // 60), response.status_code, dict(response.headers)

        # The limiter's windows are clock minutes: start where the run fits in one, so the
        # client's grouping by minute is the limiter's (a run across a minute boundary
        # splits the requests between two windows at a point the client cannot see).
        if time.time() % 60 > 40:
            time.sleep(60.5 - time.time() % 60)
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(call, range(3 * LIMIT)))
    by_window: dict[int, list[int]] = defaultdict(list)
    for window, status, _ in answers:
        by_window[window].append(status)
    assert {s for _, s, _ in answers} <= {200, 429}
    for statuses in by_window.values():
        admitted = statuses.count(200)
        assert admitted <= LIMIT  # never more than the limit, whatever the workers do
        if 429 in statuses:  # the window ran out: refused early by at most the bound
            assert admitted >= LIMIT - (WORKERS - 1) * lease_size(LIMIT), statuses
    admitted_headers = [h for _, s, h in answers if s == 200]
    assert all(h["x-ratelimit-limit-requests"] == str(LIMIT) for h in admitted_headers)
    assert all(0 <= int(h["x-ratelimit-remaining-requests"]) < LIMIT for h in admitted_headers)
    assert all(h["x-ratelimit-reset-requests"].endswith("s") for h in admitted_headers)
    refused = [h for _, s, h in answers if s == 429]
    assert refused and all(1 <= int(h["retry-after"]) <= 61 for h in refused)
