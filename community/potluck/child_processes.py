# SPDX-License-Identifier: Apache-2.0
"""Processes that Potluck starts on a host (vLLM replicas, fine-tuning trainers): their
process groups. (The environment and the user they run as: ``potluck.nodes.isolation``.)

Each such process leads its own session and process group (``start_new_session=True``),
so it outlives the node agent that started it and one signal to the group reaches every
process it spawned. Ground floor: imports nothing of Potluck.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable

import psutil


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal a process group; False when no process of it is left (or the id now belongs
    to someone else's processes)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Some process of the group is alive (zombies waiting to be reaped do not count)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """A group of only zombies is gone for our purposes (its parent reaps them later)."""
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


def stop_groups(pgids: Iterable[int], grace: float) -> None:
    """SIGTERM each group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    waiting = [pgid for pgid in pgids if signal_group(pgid, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while waiting and time.monotonic() < deadline:
        time.sleep(0.25)
        waiting = [pgid for pgid in waiting if group_alive(pgid)]
    for pgid in waiting:
        signal_group(pgid, signal.SIGKILL)
