# SPDX-License-Identifier: Apache-2.0
"""`potluck doctor` shows each usage consumer's lag, and a failing one as a problem."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

from usage_probe import plugin_env

from potluck import extensions
from potluck.accounts import services as accounts
from potluck.extensions import CommittedUsageRecord
from potluck.usage import services
from potluck.usage.consumers import feed
from potluck.usage.stream import UsageEvent, new_request_id


class Stub:
    def __init__(self, name: str, fail: bool) -> None:
        self.name, self.fail = name, fail

    def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
        if self.fail:
            raise ConnectionError("the ledger is down")


def test_doctor_shows_each_consumers_lag_and_a_failing_one_as_a_problem(live_env, tmp_path):
    org = accounts.create_organization("Acme")
    services.record_events([UsageEvent(
        request_id=new_request_id(), organization_id=str(org.pk), api_key_id=None,
        model="potluck-demo", endpoint="completions", status=200, stream=False,
        prompt_tokens=1, completion_tokens=1, latency_ms=5.0, ttft_ms=None, replica_id=None,
        created_at=time.time()) for _ in range(1234)])
    for consumer in (Stub("probe-ok", fail=False), Stub("probe-failing", fail=True)):
        feed(consumer)  # as the worker would: the cursors are what doctor reads

    env = plugin_env(live_env, tmp_path, consumers="probe-ok,probe-failing,probe-new")
    done = subprocess.run([sys.executable, "-m", "potluck", "doctor", "--skip-engine-import"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)

    lines = {line.split(":")[0].split()[-1]: line for line in done.stdout.splitlines()
             if " consumer " in line}
    assert lines["probe-ok"].startswith("ok ") and lines["probe-ok"].endswith(": caught up")
    assert lines["probe-new"].startswith("ok ")
    assert "probe-new: 1,234 records behind, the oldest " in lines["probe-new"]
    failing = lines["probe-failing"]
    assert failing.startswith("!! ")
    assert "1,234 records behind" in failing
    assert "failing: 1 failed try in a row" in failing
    assert "raised builtins.ConnectionError, next try at " in failing
    assert "the ledger is down" not in done.stdout  # the class only, never the message
    assert done.returncode == 1 and "problem(s) found" in done.stdout
    assert not extensions.usage_consumers.get("probe-new")  # registered only in doctor
