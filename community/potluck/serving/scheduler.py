# SPDX-License-Identifier: Apache-2.0
"""Make the Replica rows match the deployments: the desired-state half of serving.

The scheduler only writes rows; each node agent then makes its processes match them
(see ``reconcile``). It runs from beat every few seconds and right after each change,
always as one transaction under an advisory lock, so two runs never place twice.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from potluck.nodes.models import Node, NodeState
from potluck.nodes.services import live_node_names, mark_lost_nodes
from potluck.serving import dispatch
from potluck.serving.cordon import cordoned_node_names
from potluck.serving.models import (
    LIVE_REPLICA_STATES,
    Deployment,
    DeploymentState,
    Replica,
    ReplicaState,
)
from potluck.serving.placement import NodeSlot, place_one

log = logging.getLogger(__name__)
_LOCK_ID = 0x706F746C75636B  # "potluck": one scheduler pass at a time, cluster-wide
NODE_LOST_REASON = "node lost"
_last_unplaceable_warning: dict[uuid.UUID, float] = {}

# Replicas that hold a place: running, about to run, or waiting for their restart.
_HOLDS_A_PLACE = (Q(state__in=[ReplicaState.STARTING, ReplicaState.READY])
                  | Q(state=ReplicaState.FAILED, next_restart_at__isnull=False))
# Replicas that still hold a node's resources (GPUs), draining ones included.
_USES_THE_NODE = Q(state__in=LIVE_REPLICA_STATES) | Q(state=ReplicaState.FAILED,
                                                      next_restart_at__isnull=False)


def drain_deadline() -> datetime:
    return timezone.now() + timedelta(seconds=settings.SERVING_DRAIN_SECONDS)


def schedule() -> list[str]:
    """One pass over every deployment; returns the nodes whose agents were asked to act."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        touched = _retire_replicas_of_lost_nodes()
        slots = _schedulable_slots()
        for deployment in (Deployment.objects.exclude(state=DeploymentState.STOPPED)
                           .select_related("model").order_by("created_at")):
            if deployment.state == DeploymentState.ACTIVE:
                touched |= _converge(deployment, slots)
            else:
                touched |= wind_down(deployment)
        live = set(live_node_names())
        wake = sorted(touched & live)
        dispatch.request_reconcile(wake)
    return wake


def replace_lost_nodes() -> list[str]:
    """Mark nodes whose heartbeat lapsed as lost and, if any were, run a pass at once so
    their replicas are written off and placed elsewhere; returns the lost nodes' names."""
    lost = mark_lost_nodes()
    if lost:
        try:
            schedule()
        except Exception:  # beat runs the scheduler again within seconds
            log.exception("rescheduling after lost nodes failed")
    return lost


def _retire_replicas_of_lost_nodes() -> set[str]:
    """A lost node's replicas are written off (FAILED, never restarted) to be replaced."""
    lost = Replica.objects.filter(_USES_THE_NODE, node__state=NodeState.LOST)
    names = set(lost.values_list("node__name", flat=True))
    now = timezone.now()
    count = lost.update(state=ReplicaState.FAILED, reason=NODE_LOST_REASON,
                        next_restart_at=None, stopped_at=now, updated_at=now)
    if count:
        log.warning("%s replicas written off: node lost (%s)", count, ", ".join(sorted(names)))
    return names


def _schedulable_slots() -> dict[str, NodeSlot]:
    """Nodes that may take a replica now: online, heartbeating, uncordoned, with an engine."""
    usable = set(live_node_names()) - cordoned_node_names()
    nodes = Node.objects.filter(state=NodeState.ONLINE, name__in=usable).exclude(engine="")
    slots = {n.name: NodeSlot(name=n.name, gpu_indices=sorted(int(g["index"]) for g in n.gpus))
             for n in nodes}
    for node_name, gpu_ids in (Replica.objects.filter(_USES_THE_NODE, node__name__in=slots)
                               .values_list("node__name", "gpu_ids")):
        slots[node_name].replicas_total += 1
        slots[node_name].used_gpus.update(gpu_ids or [])
    return slots


def _converge(deployment: Deployment, slots: dict[str, NodeSlot]) -> set[str]:
    holding = list(deployment.replica_set.filter(_HOLDS_A_PLACE).select_related("node"))
    missing = deployment.replicas - len(holding)
    if missing > 0:
        return _add_replicas(deployment, missing, slots)
    if missing < 0:
        return _remove_replicas(holding, -missing)
    return set()


def _candidate_slots(deployment: Deployment, slots: dict[str, NodeSlot]) -> list[NodeSlot]:
    allowed = set(deployment.placement.get("nodes") or []) or set(slots)
    here: dict[str, int] = defaultdict(int)
    for name in deployment.replica_set.filter(_HOLDS_A_PLACE).values_list("node__name",
                                                                           flat=True):
        here[name] += 1
    candidates = [slots[name] for name in sorted(allowed & set(slots))]
    for slot in candidates:
        slot.replicas_here = here[slot.name]
    return candidates


def _add_replicas(deployment: Deployment, count: int, slots: dict[str, NodeSlot]) -> set[str]:
    candidates = _candidate_slots(deployment, slots)
    nodes = {n.name: n for n in Node.objects.filter(name__in=[s.name for s in candidates])}
    gpus_per_replica = deployment.engine_args.get("gpus_per_replica")
    touched: set[str] = set()
    for placed in range(count):
        chosen = place_one(candidates, gpus_per_replica)
        if chosen is None:
            _warn_unplaceable(deployment, count - placed)
            break
        slot, gpu_ids = chosen
        node = nodes[slot.name]
        Replica.objects.create(deployment=deployment, node=node, host=node.address,
                               gpu_ids=gpu_ids, state=ReplicaState.STARTING)
        touched.add(node.name)
        log.info("replica of %s placed on %s%s", deployment.model.name, node.name,
                 f" (GPUs {gpu_ids})" if gpu_ids else "")
    return touched


def _warn_unplaceable(deployment: Deployment, missing: int) -> None:
    """Say so once a minute, not on every pass (beat runs one every few seconds)."""
    now = time.monotonic()
    if now - _last_unplaceable_warning.get(deployment.pk, -math.inf) < 60:
        return
    _last_unplaceable_warning[deployment.pk] = now
    gpus = deployment.engine_args.get("gpus_per_replica")
    log.warning("deployment of %s: no node can take %s more replica(s) (placement %s, "
                "gpus_per_replica %s)", deployment.model.name, missing,
                deployment.placement or "any", "auto" if gpus is None else gpus)


def _removal_order(replica: Replica, per_node: dict[str, int]) -> tuple:
    """Failed first, then not yet ready, then ready ones on the busiest node, newest first."""
    rank = {ReplicaState.FAILED: 0, ReplicaState.STARTING: 1}.get(replica.state, 2)
    return (rank, -per_node[replica.node.name], -replica.started_at.timestamp())


def _remove_replicas(holding: list[Replica], count: int) -> set[str]:
    per_node: dict[str, int] = defaultdict(int)
    for replica in holding:
        per_node[replica.node.name] += 1
    touched: set[str] = set()
    for replica in sorted(holding, key=lambda r: _removal_order(r, per_node))[:count]:
        if retire_replica(replica):
            touched.add(replica.node.name)
            per_node[replica.node.name] -= 1
    return touched


def retire_replica(replica: Replica) -> bool:
    """Stop a replica that is no longer wanted: at once if nothing runs, else by draining.

    Every write is conditional on the state read, so a node agent that changed the row
    meanwhile wins, and the next pass looks again.
    """
    now = timezone.now()
    rows = Replica.objects.filter(pk=replica.pk)
    if replica.state == ReplicaState.FAILED:
        return bool(rows.filter(state=ReplicaState.FAILED).update(
            state=ReplicaState.STOPPED, next_restart_at=None, stopped_at=now, updated_at=now))
    never_started = rows.filter(state=ReplicaState.STARTING, pid__isnull=True)
    if replica.pid is None and never_started.update(state=ReplicaState.STOPPED,
                                                    stopped_at=now, updated_at=now):
        return True
    return bool(rows.filter(state__in=[ReplicaState.STARTING, ReplicaState.READY]).update(
        state=ReplicaState.DRAINING, drain_deadline=drain_deadline(), updated_at=now))


def wind_down(deployment: Deployment) -> set[str]:
    """An undeploying deployment: retire what is left; STOPPED once nothing runs."""
    touched: set[str] = set()
    for replica in deployment.replica_set.filter(_HOLDS_A_PLACE).select_related("node"):
        if retire_replica(replica):
            touched.add(replica.node.name)
    draining = deployment.replica_set.filter(state=ReplicaState.DRAINING)
    touched.update(draining.values_list("node__name", flat=True))
    if not deployment.replica_set.filter(_USES_THE_NODE).exists():
        Deployment.objects.filter(pk=deployment.pk, state=DeploymentState.UNDEPLOYING).update(
            state=DeploymentState.STOPPED, updated_at=timezone.now())
        log.info("deployment of %s stopped", deployment.model.name)
    return touched
