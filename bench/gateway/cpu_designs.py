# SPDX-License-Identifier: Apache-2.0
"""CPU-sharing designs for the vLLM phase, switched on the live replica between rounds.

Each design is a ``potluck.serving.cpu_share.CpuShare`` (the code the node agent runs
when it launches a replica), applied to every thread of the vLLM process tree before
the design's rounds. Switching a running replica instead of restarting it lets the
designs be interleaved round by round, so machine noise falls on all of them alike.

Affinity is the one setting vLLM also makes itself (it binds its OpenMP thread at start),
so the tree's affinities are recorded first and restored for designs without a CPU set.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from potluck.serving import cpu_share
from potluck.serving.cpu_share import CpuShare


@dataclass(frozen=True)
class Design:
    name: str
    share: CpuShare
    what: str


def available() -> dict[str, Design]:
    cpus = sorted(os.sched_getaffinity(0))
    all_but_last = frozenset(cpus[:-1]) if len(cpus) > 1 else frozenset(cpus)
    return {d.name: d for d in (
        Design("none", CpuShare(), "as vLLM starts: class other, nice 0, its own binding"),
        Design("nice10", CpuShare("other", 10), "class other, nice 10"),
        Design("nice19", CpuShare("other", 19), "class other, nice 19"),
        Design("batch", CpuShare("batch", 0), "SCHED_BATCH, nice 0"),
        Design("batch19", CpuShare("batch", 19), "SCHED_BATCH, nice 19"),
        Design("idle", CpuShare("idle", 0), "SCHED_IDLE"),
        Design("pin", CpuShare(cpus=all_but_last),
               f"affinity: CPUs {cpu_share.format_cpu_list(all_but_last)} only "
               "(the last CPU left to the request path)"),
    )}


class Switcher:
    """Applies designs to one process tree, restoring vLLM's own affinities when needed."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.every_cpu = os.sched_getaffinity(0)
        self.original: dict[int, set[int]] = {}
        for tid in cpu_share.thread_ids(pid):
            with contextlib.suppress(OSError):
                self.original[tid] = os.sched_getaffinity(tid)

    def use(self, design: Design) -> int:
        threads = cpu_share.apply(self.pid, design.share)
        if design.share.cpus is None:
            for tid in cpu_share.thread_ids(self.pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, self.original.get(tid, self.every_cpu))
        return threads


def configured() -> Design:
    """What the node agent applies to replicas with this machine's settings; named as the
    design with the same settings when there is one."""
    share = cpu_share.replica_share()
    for design in available().values():
        if design.share == share:
            return design
    return Design("configured", share, "the node agent's settings (POTLUCK_REPLICA_CPU_*)")
