# SPDX-License-Identifier: Apache-2.0
"""How long replicas spent in each state, from their recorded history (``ReplicaStateChange``).

The history is written by a database trigger (migration ``serving.0003``), so it holds
every change of every replica since that migration. Nothing here knows what the time is
used for (the enterprise edition prices it as serving cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from potluck.serving.models import Deployment, ReplicaState, ReplicaStateChange


@dataclass(frozen=True)
class StateInterval:
    """A span ``[start, end)`` during which one replica was in ``state``.

    ``model`` is the name of the deployment's model (``""`` when the deployment is gone),
    ``node_id`` the node's id, ``gpus`` the GPUs the replica held.
    """

    replica_id: str
    deployment_id: str
    node_id: int
    model: str
    state: str
    gpus: int
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def intervals(start: datetime, end: datetime, *, state: str = ReplicaState.READY
              ) -> list[StateInterval]:
    """Every span in ``state`` that overlaps ``[start, end)``, clipped to it.

    A replica still in ``state`` at ``end`` counts until ``end``. Raises ``ValueError``
    when ``end`` is before ``start``. Times are aware datetimes.
    """
    if end < start:
        raise ValueError("end is before start")
    before: QuerySet[ReplicaStateChange] = (
        ReplicaStateChange.objects.filter(at__lt=start)
        .order_by("replica_id", "-at", "-id").distinct("replica_id"))
    rows = [*before.values("replica_id", "deployment_id", "node_id", "state", "gpus", "at"),
            *ReplicaStateChange.objects.filter(at__gte=start, at__lt=end).order_by("at", "id")
            .values("replica_id", "deployment_id", "node_id", "state", "gpus", "at")]
    models = dict(Deployment.objects.filter(
        pk__in={r["deployment_id"] for r in rows}).values_list("pk", "model__name"))
    found: list[StateInterval] = []
    open_since: dict[object, dict] = {}
    for row in rows:  # the pre-start rows come first, then in time order
        replica = row["replica_id"]
        opened = open_since.pop(replica, None)
        if opened is not None:
            found.append(_interval(opened, models, max(opened["at"], start), row["at"]))
        if row["state"] == state:
            open_since[replica] = row
    for opened in open_since.values():
        found.append(_interval(opened, models, max(opened["at"], start), end))
    return [i for i in found if i.end > i.start]


def _interval(row: dict, models: dict, start: datetime, end: datetime) -> StateInterval:
    return StateInterval(
        replica_id=str(row["replica_id"]), deployment_id=str(row["deployment_id"]),
        node_id=row["node_id"], model=models.get(row["deployment_id"], ""),
        state=row["state"], gpus=row["gpus"], start=start, end=end)
