# SPDX-License-Identifier: Apache-2.0
"""How a node's engine processes (vLLM replicas) and trainers share its CPUs with the rest.

On a CPU node a vLLM replica keeps every core busy: its OpenMP worker computes on one,
its engine core spins waiting for the worker (``sched_yield`` in a loop) on another. The
processes that carry each request to it (the gateway's workers, Redis, PostgreSQL) then
wait for a CPU at every hop, while the engine itself gains little from running before
them. The node agent therefore starts replicas and trainers at a lower CPU priority, so
that a request-path process that wakes up gets a CPU at once and the engine takes the
rest. Measured in ``bench/gateway`` (phase "vLLM tokens/s by CPU-sharing design").

The default for both is ``SCHED_IDLE``: a normal-class task that wakes up preempts an
idle-class one at once, and the kernel places it on a CPU that runs only idle-class
work as if that CPU were free. Measured: the gateway worker's time runnable but waiting
for a CPU during vLLM rounds fell by 45% (median of five runs, 10-55%) against a replica
at the normal class; nice 19 cut it by 12% (7-23%). The price: an idle-class replica
gets only what normal-class work leaves, so on a node that also runs CPU-heavy work at
the normal class (another service, a test suite) it slows down or stalls; set
``POTLUCK_REPLICA_CPU_CLASS=other`` there. Trainers must not sit above replicas: a
trainer at the normal class would starve idle-class replicas.

A :class:`CpuShare` is a Linux scheduling class (``sched(7)``: ``other``, ``batch`` or
``idle``), a nice value (``setpriority(2)``, 0-19; ignored by ``idle``) and optionally a
CPU set (``sched_setaffinity(2)``). :func:`apply` sets it on every thread of a process
and of its descendants, right after the agent started it: threads and processes the
engine creates later inherit it. Lowering one's own priority needs no privilege.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.conf import settings

log = logging.getLogger(__name__)

# sched(7) policy names, as chrt(1) spells them.
POLICIES: dict[str, int] = {"other": os.SCHED_OTHER, "batch": os.SCHED_BATCH,
                            "idle": os.SCHED_IDLE}


@dataclass(frozen=True)
class CpuShare:
    """A scheduling class, a nice value (0-19) and a CPU set (None: every allowed CPU)."""

    policy: str = "other"
    nice: int = 0
    cpus: frozenset[int] | None = None

    @classmethod
    def parse(cls, policy: str, nice: int, cpus: str = "") -> CpuShare:
        """From settings. ``cpus`` is a list like ``"0-3,6"`` (empty: no affinity).

        Raises ValueError, naming what is wrong, for an unknown class, a nice value
        outside 0-19 (raising priority is not this module's business) or a bad CPU list.
        """
        policy = (policy or "other").strip().lower()
        if policy not in POLICIES:
            raise ValueError(f"unknown CPU scheduling class {policy!r}; "
                             f"use one of {', '.join(POLICIES)}")
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be between 0 and 19, got {nice}")
        return cls(policy, nice, parse_cpu_list(cpus) if cpus and cpus.strip() else None)

    @property
    def is_default(self) -> bool:
        return self.policy == "other" and self.nice == 0 and self.cpus is None

    def describe(self) -> str:
        parts = [f"class {self.policy}"]
        if self.policy != "idle":
            parts.append(f"nice {self.nice}")
        if self.cpus is not None:
            parts.append(f"cpus {format_cpu_list(self.cpus)}")
        return ", ".join(parts)


def parse_cpu_list(text: str) -> frozenset[int]:
    """``"0-3,6"`` -> {0, 1, 2, 3, 6} (the kernel's cpulist format, ``cpuset(7)``)."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"bad CPU list {text!r} (expected e.g. '0-3,6')")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"bad CPU range {part!r} in {text!r}")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def replica_share() -> CpuShare:
    """What the node agent applies to the vLLM replicas it launches (settings
    ``SERVING_REPLICA_CPU_*``, env ``POTLUCK_REPLICA_CPU_CLASS`` / ``_NICE`` / ``_CPUS``)."""
    return CpuShare.parse(settings.SERVING_REPLICA_CPU_CLASS, settings.SERVING_REPLICA_CPU_NICE,
                          settings.SERVING_REPLICA_CPUS)


def trainer_share() -> CpuShare:
    """What the node agent applies to fine-tuning trainers (settings ``FINETUNE_TRAINER_CPU_*``,
    env ``POTLUCK_TRAINER_CPU_CLASS`` / ``_NICE`` / ``_CPUS``)."""
    return CpuShare.parse(settings.FINETUNE_TRAINER_CPU_CLASS,
                          settings.FINETUNE_TRAINER_CPU_NICE, settings.FINETUNE_TRAINER_CPUS)


def thread_ids(pid: int) -> list[int]:
    """Every thread of ``pid`` and of its live descendants (empty when it is gone)."""
    pids = [pid]
    with contextlib.suppress(psutil.Error):
        pids += [child.pid for child in psutil.Process(pid).children(recursive=True)]
    tids: list[int] = []
    for one in pids:
        try:
            tids += [int(t.name) for t in Path(f"/proc/{one}/task").iterdir()]
        except OSError:  # exited meanwhile
            continue
    return tids


def apply(pid: int, share: CpuShare) -> int:
    """Set ``share`` on every thread of ``pid`` and its descendants; returns how many.

    Never raises: CPU sharing makes the node faster, it must never stop an engine from
    starting. A thread that exits meanwhile is skipped; a refusal (EPERM, a CPU not in
    the node's cpuset) is logged once as a warning and the rest is still applied.
    """
    policy = POLICIES[share.policy]
    done = 0
    problems: set[str] = set()
    for tid in thread_ids(pid):
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(0))
            if share.policy != "idle":
                os.setpriority(os.PRIO_PROCESS, tid, share.nice)
            if share.cpus is not None:
                os.sched_setaffinity(tid, share.cpus)
        except ProcessLookupError:
            continue
        except OSError as exc:
            problems.add(f"{type(exc).__name__}: {exc.strerror or exc}")
            continue
        done += 1
    if problems:
        log.warning("CPU share (%s) not fully applied to pid %s: %s", share.describe(), pid,
                    "; ".join(sorted(problems)))
    return done


def apply_configured(pid: int, share: CpuShare) -> None:
    """What the node agent calls right after starting an engine or a trainer: nothing for
    the default share (the child keeps what it inherited from the agent), else
    :func:`apply`, logged."""
    if share.is_default:
        return
    threads = apply(pid, share)
    log.info("pid %s runs at CPU share %s (%d threads)", pid, share.describe(), threads)
