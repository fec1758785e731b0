# SPDX-License-Identifier: Apache-2.0
"""Signals that ask the run to stop: the current step finishes, then it exits.

SIGTERM (and SIGINT) cancel: exit 3. SIGUSR1 pauses: the run checkpoints the step it
has finished and exits 4, to be resumed from that checkpoint. The handlers only set
flags; the training loop reads one boolean between steps (``requested``, set by either
signal), and the slower phases before training look between their parts. A cancel wins
over a pause.
"""

from __future__ import annotations

import signal
from types import FrameType


class Cancelled(Exception):
    """Raised where the run notices a cancellation request."""


class Paused(Exception):
    """Raised where the run notices a pause request (and no cancellation request)."""


class CancellationFlag:
    def __init__(self) -> None:
        self.requested = False  # stop at the next step boundary, for either reason
        self.cancelling = False
        self.pausing = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._cancel)
        signal.signal(signal.SIGINT, self._cancel)
        signal.signal(signal.SIGUSR1, self._pause)

    def _cancel(self, signum: int, frame: FrameType | None) -> None:
        self.cancelling = True
        self.requested = True

    def _pause(self, signum: int, frame: FrameType | None) -> None:
        self.pausing = True
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise Cancelled() if self.cancelling else Paused()
