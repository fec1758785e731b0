# SPDX-License-Identifier: Apache-2.0
"""SIGTERM (and SIGINT) ask the run to stop: the current step finishes, then it exits 3.

The handler only sets a flag; the training loop looks at it between steps, and the
slower phases before training between their parts.
"""

from __future__ import annotations

import signal
from types import FrameType


class Cancelled(Exception):
    """Raised where the run notices a cancellation request."""


class CancellationFlag:
    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise Cancelled()
