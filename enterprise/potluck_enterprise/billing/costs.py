# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Serving cost: node-type hourly costs (versioned) x the hours replicas were READY.

A node's type is what the operator assigned (``NodeTypeAssignment``), else derived from
what its agent reported: ``gpu:<first GPU's name>`` or ``cpu``. A cost row is in force
from its ``effective_from`` until the next row of the same type; a READY interval that
spans a change is split at it. A replica's cost over [a, b) is hours x hourly cost x
(the GPUs it held, at least 1) for ``per = gpu``, or hours x hourly cost for
``per = replica``. Replica time comes from the community's replica state history
(``potluck.serving.history``), recorded by a database trigger.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from potluck.errors import PotluckError
from potluck.nodes.models import Node
from potluck.serving.history import StateInterval, intervals
from potluck_enterprise.billing import money
from potluck_enterprise.billing.models import CostUnit, NodeTypeAssignment, NodeTypeCost

SECONDS_PER_HOUR = Decimal(3600)
# Costs are estimates of hours x rates, kept to 12 decimal places (not ledger money).
COST_QUANTUM = Decimal("0.000000000001")


class CostError(PotluckError):
    status = 400


def derived_type(node: Node) -> str:
    gpus = node.gpus or []
    if gpus and isinstance(gpus[0], dict) and gpus[0].get("name"):
        return f"gpu:{gpus[0]['name']}"
    return "cpu"


def node_types() -> dict[int, str]:
    """Every node's type, by node id."""
    assigned = dict(NodeTypeAssignment.objects.values_list("node_name", "node_type"))
    return {n.pk: assigned.get(n.name) or derived_type(n) for n in Node.objects.all()}


def set_cost(node_type: str, hourly_cost: Any, *, per: str = CostUnit.GPU,
             effective_from: Any = None, note: str = "") -> NodeTypeCost:
    """A new cost for ``node_type`` from ``effective_from`` (default now). Raises
    ``CostError``."""
    if not node_type or len(node_type) > 100:
        raise CostError("node_type: 1 to 100 characters", field="node_type")
    if per not in CostUnit.values:
        raise CostError("per: gpu or replica", field="per")
    try:
        cost = money.decimal(hourly_cost, field="hourly_cost", places=money.PRICE_PLACES)
    except money.MoneyError as exc:
        raise CostError(str(exc), field="hourly_cost") from None
    when = effective_from or timezone.now()
    if isinstance(when, str):
        parsed = parse_datetime(when)
        if parsed is None or timezone.is_naive(parsed):
            raise CostError("effective_from: an ISO 8601 time with a time zone",
                            field="effective_from")
        when = parsed
    if NodeTypeCost.objects.filter(node_type=node_type, effective_from=when).exists():
        raise CostError("effective_from: this type already has a cost from that time",
                        field="effective_from")
    return NodeTypeCost.objects.create(node_type=node_type, hourly_cost=cost, per=per,
                                       effective_from=when, note=note[:200])


@dataclass(frozen=True)
class CostSlice:
    """The cost of one replica's READY time within one rate's validity."""

    model: str
    node_type: str
    start: datetime
    end: datetime
    gpus: int
    hours: Decimal
    cost: Decimal


class CostTable:
    """Every node type's cost history, for ``cost_of``."""

    def __init__(self, rows: Iterable[NodeTypeCost] | None = None) -> None:
        self._by_type: dict[str, list[NodeTypeCost]] = {}
        for row in rows if rows is not None else NodeTypeCost.objects.order_by(
                "effective_from"):
            self._by_type.setdefault(row.node_type, []).append(row)

    def slices(self, interval: StateInterval, node_type: str) -> list[CostSlice]:
        """``interval`` split where its node type's cost changes, each priced; time before
        the type's first cost costs nothing (no slice)."""
        rows = self._by_type.get(node_type, [])
        starts = [r.effective_from for r in rows]
        found = []
        with localcontext() as ctx:
            ctx.prec = 50
            i = max(0, bisect.bisect_right(starts, interval.start) - 1)
            while i < len(rows):
                row = rows[i]
                start = max(interval.start, row.effective_from)
                end = min(interval.end, rows[i + 1].effective_from) if i + 1 < len(rows) \
                    else interval.end
                if start < end:
                    seconds = Decimal((end - start) // timedelta(microseconds=1)) / 1_000_000
                    units = max(1, interval.gpus) if row.per == CostUnit.GPU else 1
                    cost = (row.hourly_cost * units * seconds / SECONDS_PER_HOUR).quantize(
                        COST_QUANTUM)
                    found.append(CostSlice(interval.model, node_type, start, end,
                                           interval.gpus,
                                           (seconds / SECONDS_PER_HOUR).quantize(COST_QUANTUM),
                                           cost))
                if end >= interval.end:
                    break
                i += 1
        return found


def replica_costs(start: datetime, end: datetime) -> list[CostSlice]:
    """Cost slices of every replica's READY time within [start, end)."""
    types = node_types()
    table = CostTable()
    found = []
    for interval in intervals(start, end):
        found += table.slices(interval, types.get(interval.node_id, "cpu"))
    return found


def node_types_by_name() -> dict[str, str]:
    """Every node's type, by node name (the console and ``potluck billing costs``)."""
    types = node_types()
    return {n.name: types[n.pk] for n in Node.objects.all()}


def assign(node_name: str, node_type: str) -> NodeTypeAssignment:
    """Give a node (by name) a node type; raises ``CostError`` for an unknown node."""
    if not Node.objects.filter(name=node_name).exists():
        raise CostError(f"no node named {node_name!r}", field="node")
    row, _ = NodeTypeAssignment.objects.update_or_create(
        node_name=node_name, defaults={"node_type": node_type[:100]})
    return row
