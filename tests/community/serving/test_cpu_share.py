# SPDX-License-Identifier: Apache-2.0
"""Replicas start at the node's CPU share for engines: the scheduling class, nice value and
CPU set reach every thread of the server and of the processes it spawns later (as vLLM
spawns its engine core and worker), so the request path gets a CPU first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from potluck import child_processes
from potluck.serving import cpu_share, replica_process
from potluck.serving.cpu_share import CpuShare

# A stand-in for a vLLM server: after start-up it starts a thread and a child process,
# prints the child's pid, and waits.
FAKE_SERVER = """
import subprocess, sys, threading, time
threading.Thread(target=time.sleep, args=(120,), daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("child", child.pid, flush=True)
time.sleep(120)
"""


def wait_for_child(log: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("child "):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError(f"the fake server did not start its child:\n{log.read_text()}")


def scheduling_of(tid: int) -> tuple[int, int, frozenset[int]]:
    return (os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid),
            frozenset(os.sched_getaffinity(tid)))


@pytest.fixture
def fake_server(tmp_path):
    """Launch FAKE_SERVER as the node agent launches a replica; stop its group after."""
    started: list[subprocess.Popen[bytes]] = []

    def launch() -> tuple[subprocess.Popen[bytes], int]:
        spec = replica_process.LaunchSpec(argv=[sys.executable, "-c", FAKE_SERVER],
                                             env=dict(os.environ), log_path=tmp_path / "r.log")
        process = replica_process.launch(spec, "replica-under-test")
        started.append(process)
        return process, wait_for_child(spec.log_path)

    yield launch
    for process in started:
        child_processes.stop_groups([process.pid], grace=2)
        process.wait(10)


def test_a_launched_replica_its_threads_and_its_children_get_the_configured_share(
        settings, fake_server):
    settings.SERVING_REPLICA_CPU_CLASS = "batch"
    settings.SERVING_REPLICA_CPU_NICE = 7
    first_cpu = min(os.sched_getaffinity(0))
    settings.SERVING_REPLICA_CPUS = str(first_cpu)
    process, child = fake_server()
    tids = cpu_share.thread_ids(process.pid)
    # The server's main thread and the thread it started, and its child's main thread:
    # all created after launch() returned, so they inherited the share.
    assert len(tids) >= 3 and child in tids
    assert {tid: scheduling_of(tid) for tid in tids} == {
        tid: (os.SCHED_BATCH, 7, {first_cpu}) for tid in tids}


def test_by_default_a_replica_keeps_what_it_inherits_from_the_agent(settings, fake_server):
    """An operator who runs the agent itself at nice 3 gets replicas at nice 3."""
    settings.SERVING_REPLICA_CPU_CLASS = "other"
    settings.SERVING_REPLICA_CPU_NICE = 0
    settings.SERVING_REPLICA_CPUS = ""
    launched: list[tuple[subprocess.Popen[bytes], int]] = []

    def agent_at_nice_3() -> None:  # nice is per thread: only this one is lowered
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 3)
        launched.append(fake_server())

    agent = threading.Thread(target=agent_at_nice_3)
    agent.start()
    agent.join(60)
    process, _ = launched[0]
    affinity = frozenset(os.sched_getaffinity(0))
    assert {scheduling_of(tid) for tid in cpu_share.thread_ids(process.pid)} == {
        (os.SCHED_OTHER, 3, affinity)}


def test_apply_reaches_threads_and_children_that_already_run(tmp_path):
    log = tmp_path / "out.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-c", FAKE_SERVER], stdout=handle,
                                   start_new_session=True)
    try:
        child = wait_for_child(log)
        time.sleep(0.2)  # the thread is started before the child
        assert cpu_share.apply(process.pid, CpuShare("idle")) >= 3
        tids = cpu_share.thread_ids(process.pid)
        assert child in tids
        assert {os.sched_getscheduler(tid) for tid in tids} == {os.SCHED_IDLE}
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_a_process_that_is_gone_is_skipped_without_an_error():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(10)
    assert cpu_share.apply(process.pid, CpuShare("other", 19)) == 0


@pytest.mark.parametrize(("policy", "nice", "cpus", "message"), [
    ("fifo", 0, "", "unknown CPU scheduling class 'fifo'; use one of other, batch, idle"),
    ("other", 20, "", "nice must be between 0 and 19, got 20"),
    ("other", -5, "", "nice must be between 0 and 19, got -5"),
    ("other", 0, "0-x", "bad CPU list '0-x' (expected e.g. '0-3,6')"),
    ("other", 0, "3-1", "bad CPU range '3-1' in '3-1'"),
])
def test_bad_settings_are_refused_with_what_is_wrong(policy, nice, cpus, message):
    with pytest.raises(ValueError) as refused:
        CpuShare.parse(policy, nice, cpus)
    assert str(refused.value) == message


def test_settings_are_read_in_the_kernels_terms(settings):
    settings.SERVING_REPLICA_CPU_CLASS = "Idle"
    settings.SERVING_REPLICA_CPU_NICE = 0
    settings.SERVING_REPLICA_CPUS = "0-2, 5"
    share = cpu_share.replica_share()
    assert share == CpuShare("idle", 0, frozenset({0, 1, 2, 5}))
    assert share.describe() == "class idle, cpus 0,1,2,5"


def test_a_bad_setting_stops_the_launch_before_any_process_starts(settings, tmp_path):
    settings.SERVING_REPLICA_CPU_CLASS = "realtime"
    spec = replica_process.LaunchSpec(argv=[sys.executable, "-c", FAKE_SERVER],
                                         env=dict(os.environ), log_path=tmp_path / "r.log")
    with pytest.raises(ValueError, match="unknown CPU scheduling class 'realtime'"):
        replica_process.launch(spec, "replica-under-test")
    assert not spec.log_path.exists()  # nothing was started, so nothing is left running
