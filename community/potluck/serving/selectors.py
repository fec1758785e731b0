# SPDX-License-Identifier: Apache-2.0
"""Read queries of the serving pool, always scoped to an organization where tenants read."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from potluck.accounts.models import Organization
from potluck.registry.models import RegisteredModel
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState


def with_replica_counts(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Adds ``n_<state>`` (e.g. ``n_ready``) for every replica state."""
    return deployments.annotate(**{
        f"n_{state}": Count("replica_set", filter=Q(replica_set__state=state))
        for state in ReplicaState.values
    })


def deployments_visible_to(org: Organization) -> QuerySet[Deployment]:
    return with_replica_counts(
        Deployment.objects.for_org(org).select_related("model", "organization"))


def replicas_visible_to(org: Organization) -> QuerySet[Replica]:
    return Replica.objects.for_org(org).select_related("deployment__model", "node")


def live_deployment_of(model: RegisteredModel) -> Deployment | None:
    """The deployment of a model that is not stopped (there is at most one)."""
    return (Deployment.objects.filter(model=model).exclude(state=DeploymentState.STOPPED)
            .select_related("model", "organization").first())
