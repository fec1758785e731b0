# SPDX-License-Identifier: Apache-2.0
"""`potluck up` restarts a dead child after a doubling back-off, and gives up on one that
keeps dying (the 5th death within 5 minutes)."""

from __future__ import annotations

from potluck.runtime.restarts import RestartPolicy


def test_the_back_off_doubles_and_the_fifth_death_in_the_window_gives_up():
    policy = RestartPolicy()
    assert [policy.died(t) for t in (0, 10, 20, 30)] == [1, 2, 4, 8]
    assert policy.died(40) is None
    assert "5 deaths within 300s" in policy.describe()


def test_deaths_older_than_the_window_are_forgotten():
    policy = RestartPolicy(limit=3, window_seconds=60)
    assert policy.died(0) == 1 and policy.died(30) == 2
    assert policy.died(100) == 1  # the first two are more than 60 s old
    assert policy.died(120) == 2
    assert policy.died(130) is None


def test_the_delay_is_capped():
    policy = RestartPolicy(limit=100, max_delay=30)
    delays = [policy.died(t) for t in range(10)]
    assert delays[-1] == 30 and max(delays) == 30
