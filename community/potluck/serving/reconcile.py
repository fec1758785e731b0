# SPDX-License-Identifier: Apache-2.0
"""The node agent's reconcile loop: make this node's vLLM processes match its Replica rows.

The loop runs in a thread of the node agent and again whenever a ``reconcile`` task
arrives. It starts servers for STARTING rows, promotes them to READY once they answer,
restarts crashed ones with back-off, drains and stops DRAINING ones, and adopts servers
that an earlier agent started (replicas outlive agent restarts).

Every write is conditional on the state it read, so the scheduler (which retires and
drains rows) and the agent never overwrite each other's decisions.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from potluck.child_processes import group_alive, signal_group, stop_groups
from potluck.nodes.models import Node
from potluck.serving import adapters, dispatch
from potluck.serving import replica_process as servers
from potluck.serving.models import LIVE_REPLICA_STATES, Replica, ReplicaState

log = logging.getLogger(__name__)
# Consecutive failed health checks after which a READY server counts as hung.
UNHEALTHY_AFTER_CHECKS = 5


def restart_delay(restarts: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped (both ends configurable)."""
    base = settings.SERVING_RESTART_BACKOFF_SECONDS
    cap = settings.SERVING_RESTART_BACKOFF_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** min(restarts, 30)))


def _move(replica: Replica, from_states: tuple[str, ...], *, where: Q | None = None,
          **changes: Any) -> bool:
    """Compare-and-set a replica's row; False when someone else changed its state first."""
    changes.setdefault("updated_at", timezone.now())
    rows = Replica.objects.filter(pk=replica.pk, state__in=from_states)
    if where is not None:
        rows = rows.filter(where)
    return bool(rows.update(**changes))


class NodeReconciler:
    """What one node agent knows about the servers of its node, between passes."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.lock = threading.Lock()
        self.children: dict[uuid.UUID, subprocess.Popen[bytes]] = {}  # servers we started
        self.seen_alive: set[uuid.UUID] = set()
        self.failed_checks: dict[uuid.UUID, int] = {}
        self.terminating: dict[uuid.UUID, float] = {}  # SIGTERM sent at (monotonic)
        self.adapter_failures: dict[tuple[str, str], float] = {}

    # -- one pass ---------------------------------------------------------------------

    def reconcile_once(self) -> None:
        with self.lock:
            node = Node.objects.filter(name=self.node_name).first()
            if node is None:
                return
            handled: set[uuid.UUID] = set()
            for replica in self._replicas():
                handled.add(replica.id)
                try:
                    self._reconcile(replica, node)
                except Exception:  # one bad replica must not stall the others
                    log.exception("reconciling replica %s failed", replica.id)
            self._reap(handled)

    def _replicas(self) -> list[Replica]:
        wanted = (Q(state__in=LIVE_REPLICA_STATES)
                  | Q(state=ReplicaState.FAILED, next_restart_at__isnull=False)
                  | Q(state=ReplicaState.FAILED, pid__isnull=False))  # written off, may run
        return list(Replica.objects.filter(wanted, node__name=self.node_name)
                    .select_related("deployment__model").order_by("started_at"))

    def _reconcile(self, replica: Replica, node: Node) -> None:
        if replica.state == ReplicaState.STARTING:
            self._starting(replica, node)
        elif replica.state == ReplicaState.READY:
            self._ready(replica)
        elif replica.state == ReplicaState.DRAINING:
            self._draining(replica)
        elif replica.next_restart_at is not None:
            self._restart_when_due(replica, node)
        else:
            self._stop_written_off(replica)

    def _reap(self, handled: set[uuid.UUID]) -> None:
        """Forget servers whose rows are done, reaping exited children (no zombies)."""
        for replica_id in list(self.children):
            if replica_id not in handled and self.children[replica_id].poll() is not None:
                del self.children[replica_id]
        for table in (self.failed_checks, self.terminating):
            for replica_id in list(table):
                if replica_id not in handled:
                    del table[replica_id]
        self.seen_alive &= handled

    # -- process state ----------------------------------------------------------------

    def _exit_status(self, replica: Replica) -> tuple[bool, int | None]:
        """(alive, exit code if this agent saw it exit)."""
        child = self.children.get(replica.id)
        if child is not None and child.pid == replica.pid:
            code = child.poll()
            return code is None, code
        if servers.find_server(replica.pid, replica.port) is not None:
            if replica.id not in self.seen_alive:
                log.info("adopted replica %s (pid %s, port %s)", replica.id, replica.pid,
                         replica.port)
            self.seen_alive.add(replica.id)
            return True, None
        return False, None

    # -- states -----------------------------------------------------------------------

    def _starting(self, replica: Replica, node: Node) -> None:
        if replica.pid is None:
            self._launch(replica, node)
            return
        alive, code = self._exit_status(replica)
        if not alive:
            self._fail(replica, servers.describe_exit(code))
        elif servers.answers(replica.base_url):
            if _move(replica, (ReplicaState.STARTING,), state=ReplicaState.READY,
                     ready_at=timezone.now(), reason="", log_tail=""):
                seconds = (timezone.now() - replica.started_at).total_seconds()
                log.info("replica %s of %s ready on port %s after %.0fs", replica.id,
                         replica.deployment.model.name, replica.port, seconds)
                replica.state = ReplicaState.READY
                adapters.sync_adapters(replica, self.adapter_failures)
        elif timezone.now() - replica.started_at > timedelta(
                seconds=settings.SERVING_READY_TIMEOUT_SECONDS):
            stop_groups([replica.pid], grace=5)
            self._fail(replica, "did not become ready within "
                                f"{settings.SERVING_READY_TIMEOUT_SECONDS}s")

    def _launch(self, replica: Replica, node: Node) -> None:
        process: subprocess.Popen[bytes] | None = None
        try:
            with transaction.atomic():
                row = (Replica.objects.select_for_update().select_related("deployment__model")
                       .filter(pk=replica.pk, state=ReplicaState.STARTING, pid__isnull=True)
                       .first())
                if row is None:  # retired or started meanwhile
                    return
                host = settings.SERVING_REPLICA_BIND_HOST
                taken = set(Replica.objects.filter(node=node, state__in=LIVE_REPLICA_STATES,
                                                   port__isnull=False)
                            .exclude(pk=row.pk).values_list("port", flat=True))
                port = (row.port if row.port and row.port not in taken
                        and servers.port_is_free(host, row.port)
                        else servers.pick_free_port(host, taken))
                cpu_only = not node.gpus
                spec = servers.LaunchSpec(
                    argv=servers.server_argv(row, host=host, port=port, cpu_only=cpu_only),
                    env=servers.server_env(row, cpu_only=cpu_only),
                    log_path=servers.log_path(row), model_path=row.deployment.model.path)
                process = servers.launch(spec, row.id)
                row.port, row.pid, row.started_at = port, process.pid, timezone.now()
                row.adapters = []  # a new server holds no adapters yet
                row.save(update_fields=["port", "pid", "started_at", "adapters",
                                        "updated_at"])
        except BaseException:
            if process is not None:  # never leave a server that no row knows about
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
            raise
        self.children[row.id] = process
        self.seen_alive.add(row.id)
        log.info("replica %s of %s starting: pid %s, port %s", row.id,
                 row.deployment.model.name, process.pid, port)

    def _ready(self, replica: Replica) -> None:
        alive, code = self._exit_status(replica)
        if not alive:
            self._fail(replica, servers.describe_exit(code))
            return
        if servers.answers(replica.base_url):
            self.failed_checks.pop(replica.id, None)
            adapters.sync_adapters(replica, self.adapter_failures)
            return
        misses = self.failed_checks[replica.id] = self.failed_checks.get(replica.id, 0) + 1
        log.warning("replica %s on port %s missed a health check (%s in a row)", replica.id,
                    replica.port, misses)
        if misses >= UNHEALTHY_AFTER_CHECKS:
            stop_groups([replica.pid], grace=5)
            self._fail(replica, f"stopped answering health checks ({misses} in a row)")

    def _fail(self, replica: Replica, reason: str) -> None:
        """Record why it died, clean up what is left of it, and plan its restart."""
        if replica.pid:
            signal_group(replica.pid, signal.SIGKILL)  # engine processes left behind
        child = self.children.pop(replica.id, None)
        if child is not None:
            child.poll()
        delay = restart_delay(replica.restarts)
        now = timezone.now()
        if _move(replica, (ReplicaState.STARTING, ReplicaState.READY),
                 state=ReplicaState.FAILED, reason=reason, pid=None,
                 log_tail=servers.read_log_tail(servers.log_path(replica)),
                 next_restart_at=now + delay, stopped_at=now):
            log.warning("replica %s of %s failed: %s; restarting in %.0fs", replica.id,
                        replica.deployment.model.name, reason, delay.total_seconds())
        self.failed_checks.pop(replica.id, None)

    def _restart_when_due(self, replica: Replica, node: Node) -> None:
        assert replica.next_restart_at is not None
        if timezone.now() < replica.next_restart_at:
            return
        if _move(replica, (ReplicaState.FAILED,), where=Q(next_restart_at__isnull=False),
                 state=ReplicaState.STARTING, pid=None, next_restart_at=None,
                 restarts=F("restarts") + 1, started_at=timezone.now(), ready_at=None,
                 stopped_at=None):
            log.info("restarting replica %s of %s (restart %s)", replica.id,
                     replica.deployment.model.name, replica.restarts + 1)
            replica.refresh_from_db()
            self._launch(replica, node)

    def _draining(self, replica: Replica) -> None:
        now = timezone.now()
        if replica.pid is None:
            self._stopped(replica)
            return
        sent_at = self.terminating.get(replica.id)
        if sent_at is not None:
            if not group_alive(replica.pid):
                self._stopped(replica)
            elif time.monotonic() - sent_at > settings.SERVING_STOP_GRACE_SECONDS:
                signal_group(replica.pid, signal.SIGKILL)
                self._stopped(replica)
            return
        alive, _ = self._exit_status(replica)
        if not alive:
            signal_group(replica.pid, signal.SIGKILL)
            self._stopped(replica)
            return
        past_deadline = replica.drain_deadline is None or now >= replica.drain_deadline
        idle = (replica.ready_at is None  # never served a request
                or servers.requests_in_flight(replica.base_url) == 0)
        if idle or past_deadline:
            log.info("stopping replica %s (pid %s): %s", replica.id, replica.pid,
                     "drained" if idle else "drain deadline passed")
            signal_group(replica.pid, signal.SIGTERM)
            self.terminating[replica.id] = time.monotonic()

    def _stopped(self, replica: Replica) -> None:
        child = self.children.pop(replica.id, None)
        if child is not None:
            child.poll()
        self.terminating.pop(replica.id, None)
        if _move(replica, (ReplicaState.DRAINING,), state=ReplicaState.STOPPED,
                 stopped_at=timezone.now()):
            log.info("replica %s of %s stopped", replica.id, replica.deployment.model.name)
            dispatch.request_schedule()  # an undeploying deployment may now be STOPPED

    def _stop_written_off(self, replica: Replica) -> None:
        """A replica the scheduler wrote off (its node was lost) must not keep running."""
        if replica.pid and servers.find_server(replica.pid, replica.port) is not None:
            log.warning("stopping written-off replica %s (pid %s): %s", replica.id,
                        replica.pid, replica.reason)
            stop_groups([replica.pid], grace=settings.SERVING_STOP_GRACE_SECONDS)
        child = self.children.pop(replica.id, None)
        if child is not None:
            child.poll()
        _move(replica, (ReplicaState.FAILED,), where=Q(next_restart_at__isnull=True), pid=None)


class ReconcileLoop(threading.Thread):
    """Reconciles every few seconds, or at once when woken by a ``reconcile`` task."""

    def __init__(self, node_name: str) -> None:
        super().__init__(name="potluck-reconcile", daemon=True)
        self.reconciler = NodeReconciler(node_name)
        self.stopped = threading.Event()
        self.woken = threading.Event()

    def run(self) -> None:
        _loops[self.reconciler.node_name] = self
        try:
            while not self.stopped.is_set():
                self.pass_once()
                self.woken.wait(settings.SERVING_RECONCILE_SECONDS)
                self.woken.clear()
        finally:
            _loops.pop(self.reconciler.node_name, None)

    def pass_once(self) -> None:
        try:
            self.reconciler.reconcile_once()
        except Exception:  # a database or broker blip: the next pass retries
            log.exception("reconcile pass failed")
        finally:
            close_old_connections()

    def wake(self) -> None:
        self.woken.set()

    def stop(self, timeout: float = 10) -> None:
        """Stop reconciling; the replicas keep running (a new agent adopts them)."""
        self.stopped.set()
        self.woken.set()
        self.join(timeout)


_loops: dict[str, ReconcileLoop] = {}


def reconcile_now(node_name: str) -> None:
    """Wake this process's loop for the node, or run one pass here if there is none."""
    loop = _loops.get(node_name)
    if loop is not None and loop.is_alive():
        loop.wake()
    else:
        NodeReconciler(node_name).reconcile_once()
