# SPDX-License-Identifier: Apache-2.0
"""When ``potluck up`` starts a dead child again, and when it gives up.

A child that dies is started again after a back-off that doubles with each death in the
window (1 s, 2 s, 4 s, 8 s, capped at ``max_delay``). The ``limit``-th death within
``window_seconds`` (by default the 5th within 5 minutes) stops everything: a child that
keeps dying needs a person (a full disk, a broken configuration), not a loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 300.0
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0


@dataclass
class RestartPolicy:
    """The deaths of one child (monotonic seconds) and what each one leads to."""

    limit: int = RESTART_LIMIT
    window_seconds: float = RESTART_WINDOW_SECONDS
    first_delay: float = FIRST_RESTART_DELAY
    max_delay: float = MAX_RESTART_DELAY
    deaths: deque[float] = field(default_factory=deque)

    def died(self, now: float) -> float | None:
        """Note a death at ``now``: the seconds to wait before the restart, or None when
        this is the ``limit``-th death within the window (give up)."""
        while self.deaths and now - self.deaths[0] > self.window_seconds:
            self.deaths.popleft()
        self.deaths.append(now)
        if len(self.deaths) >= self.limit:
            return None
        return min(self.max_delay, self.first_delay * 2 ** (len(self.deaths) - 1))

    def describe(self) -> str:
        """The rule in words, for log lines and the README."""
        return (f"{self.limit} deaths within {self.window_seconds:.0f}s stop everything")
