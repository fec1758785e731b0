# SPDX-License-Identifier: Apache-2.0
"""An organization's replicas and GPUs against its quotas (``potluck.accounts.quotas``).

What counts is what the organization asks for: the ``replicas`` of its active
deployments, and as many GPUs as those replicas would take (``gpus_per_replica``, or one
per replica when it is unset and the pool has GPU nodes; none on a CPU-only pool).
Public deployments are the operator's and count for nobody.
"""

from __future__ import annotations

from typing import Any

from potluck.accounts import quotas
from potluck.accounts.models import Organization
from potluck.nodes.models import Node
from potluck.serving.models import Deployment, DeploymentState


def _pool_has_gpus() -> bool:
    return Node.objects.exclude(gpus=[]).exists()


def gpus_of(engine_args: dict[str, Any], replicas: int, *, pool_has_gpus: bool) -> int:
    per_replica = engine_args.get("gpus_per_replica")
    if per_replica is None:
        per_replica = 1 if pool_has_gpus else 0
    return replicas * per_replica


def check_deployment(org: Organization, *, replicas: int, engine_args: dict[str, Any],
                     excluding: Deployment | None = None) -> None:
    """Refuse a deployment of ``replicas`` (new, or ``excluding``'s new size) that would
    take the organization past its replica or GPU quota. Call inside the transaction that
    saves it: the organization's row stays locked until then."""
    quotas.lock(org)
    active = Deployment.objects.filter(organization=org, state=DeploymentState.ACTIVE)
    if excluding is not None:
        active = active.exclude(pk=excluding.pk)
    pool_has_gpus = _pool_has_gpus()
    in_use = list(active.values("replicas", "engine_args"))
    quotas.check(org, quotas.REPLICAS, in_use=sum(d["replicas"] for d in in_use),
                 more=replicas, field="replicas")
    quotas.check(org, quotas.GPUS, field="replicas",
                 in_use=sum(gpus_of(d["engine_args"] or {}, d["replicas"],
                                    pool_has_gpus=pool_has_gpus) for d in in_use),
                 more=gpus_of(engine_args, replicas, pool_has_gpus=pool_has_gpus))
