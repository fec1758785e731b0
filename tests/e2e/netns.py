# SPDX-License-Identifier: Apache-2.0
"""Hosts on one machine: network namespaces on a private bridge, for multi-host tests.

``private_network(["a", "b"])`` makes a bridge with an address in the root namespace
(the "switch", where a test's PostgreSQL and Redis listen) and one namespace per host,
each with its own address on the bridge and its own loopback; everything is torn down on
the way out, even when the test failed half-way. It needs root (``ip netns``): where that
is missing it raises ``NamespacesUnavailable``, which a test turns into a failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


class NamespacesUnavailable(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass
class Host:
    """One namespace: ``address`` on the bridge; ``run`` starts a process inside it."""

    name: str
    namespace: str
    address: str

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def pids(self) -> list[int]:
        """Every process in the namespace (what dies when the host dies)."""
        done = _ip("netns", "pids", self.namespace, check=False)
        return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []

    def kill_everything(self) -> list[int]:
        """SIGKILL every process of the host at once, as a power cut would."""
        killed = self.pids()
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return killed


@dataclass
class PrivateNetwork:
    bridge: str
    gateway: str  # the root namespace's address on the bridge
    hosts: dict[str, Host] = field(default_factory=dict)


def _free_subnet() -> int:
    used = _ip("-4", "-o", "addr").stdout
    for _ in range(50):
        third = random.randint(1, 254)
        if f"10.231.{third}." not in used:
            return third
    raise RuntimeError("no free 10.231.X.0/24 subnet")


def check_available() -> None:
    """Raise ``NamespacesUnavailable`` saying why, unless namespaces can be made here."""
    if os.geteuid() != 0:
        raise NamespacesUnavailable("network namespaces need root (CI runs tests as root)")
    probe = f"plprobe{os.getpid() % 100000}"
    try:
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError as exc:
        raise NamespacesUnavailable("the `ip` command (iproute2) is missing") from exc
    if made.returncode != 0:
        raise NamespacesUnavailable(f"`ip netns add` failed: {made.stderr.strip()}")
    _ip("netns", "del", probe, check=False)


@contextlib.contextmanager
def private_network(names: list[str]) -> Iterator[PrivateNetwork]:
    check_available()
    tag = f"{os.getpid() % 10000:04d}{random.randint(0, 99):02d}"
    third = _free_subnet()
    network = PrivateNetwork(bridge=f"plbr{tag}", gateway=f"10.231.{third}.1")
    namespaces: list[str] = []
    try:
        _ip("link", "add", network.bridge, "type", "bridge")
        _ip("addr", "add", f"{network.gateway}/24", "dev", network.bridge)
        _ip("link", "set", network.bridge, "up")
        for index, name in enumerate(names):
            namespace = f"pl{tag}{name}"
            outer, inner = f"pl{tag}{index}o", f"pl{tag}{index}i"
            _ip("netns", "add", namespace)
            namespaces.append(namespace)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns",
                namespace)
            _ip("link", "set", outer, "master", network.bridge, "up")
            address = f"10.231.{third}.{index + 2}"
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inner)
            _ip("-n", namespace, "link", "set", inner, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            network.hosts[name] = Host(name, namespace, address)
        yield network
    finally:
        for host in network.hosts.values():
            host.kill_everything()
        for namespace in namespaces:
            for _ in range(50):  # busy while its last processes exit
                if _ip("netns", "del", namespace, check=False).returncode == 0:
                    break
                time.sleep(0.1)
        _ip("link", "del", network.bridge, check=False)  # takes the veth ends with it
