# SPDX-License-Identifier: Apache-2.0
"""What the serving pool does: deploy, scale and undeploy models; stop a node's replicas.

Services change desired state (Deployment rows) and wake the scheduler; the scheduler
(``potluck.serving.scheduler.schedule``, re-exported here) turns that into Replica rows,
and each node agent's reconcile loop turns those into processes.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from potluck.accounts.models import Organization, User
from potluck.child_processes import stop_groups
from potluck.errors import Conflict, Forbidden, InvalidInput, NotFound
from potluck.registry.models import Kind, RegisteredModel
from potluck.serving import dispatch, quotas
from potluck.serving import replica_process as servers
from potluck.serving.cordon import cordon_node
from potluck.serving.engine_args import (
    clean_engine_args,
    clean_operator_args,
    clean_placement,
    clean_replicas,
)
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState
from potluck.serving.scheduler import schedule, wind_down

log = logging.getLogger(__name__)
__all__ = ["create_deployment", "scale_deployment", "schedule", "stop_all_replicas_on_node",
           "undeploy"]


def _check_owner(deployment: Deployment, organization: Organization | None,
                 operator: bool) -> None:
    if operator:
        return
    if deployment.organization_id is None:
        raise Forbidden("public deployments are managed by the operator")
    if organization is None or deployment.organization_id != organization.pk:
        raise NotFound("no such deployment")


def _check_model(model: RegisteredModel, organization: Organization | None) -> None:
    if model.kind != Kind.BASE:
        raise InvalidInput("an adapter is served by its base model's deployment "
                           "(deploy the base with enable_lora)", field="model")
    if model.organization_id == (organization.pk if organization else None):
        return
    if organization is None:
        raise InvalidInput("a public deployment needs a public model", field="model")
    if model.organization_id is None:
        raise Forbidden("public models are deployed by the operator", field="model")
    raise NotFound(f"no model named {model.name!r}", field="model")


def create_deployment(
    model: RegisteredModel, replicas: Any = 1, engine_args: Any = None, placement: Any = None,
    *, organization: Organization | None, created_by: User | None = None,
    operator: bool = False, operator_args: Any = None,
) -> Deployment:
    """Ask for ``replicas`` vLLM servers of a model; the scheduler places them.

    ``organization=None`` makes a public deployment of a public model, served to every
    organization; only the operator (the CLI) may do that, and only the operator may
    add free-form vLLM arguments (``operator_args``); tenants use the allowlisted
    ``engine_args`` (``potluck.serving.engine_args``).
    """
    if organization is None and not operator:
        raise Forbidden("only the operator can deploy public models")
    if operator_args and not operator:
        raise Forbidden("free-form vLLM arguments are set by the operator",
                        field="operator_args")
    _check_model(model, organization)
    deployment = Deployment(
        model=model, organization=organization, replicas=clean_replicas(replicas),
        engine_args=clean_engine_args(engine_args, model),
        operator_args=clean_operator_args(operator_args),
        placement=clean_placement(placement), created_by=created_by)
    busy = Conflict(f"{model.name} is already deployed; scale or undeploy it", field="model")
    if Deployment.objects.filter(model=model).exclude(state=DeploymentState.STOPPED).exists():
        raise busy
    try:
        with transaction.atomic():
            if organization is not None and not operator:
                quotas.check_deployment(organization, replicas=deployment.replicas,
                                        engine_args=deployment.engine_args)
            deployment.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent deploy of the same model won
        raise busy from exc
    log.info("deployment of %s created: %s replica(s)", model.name, deployment.replicas)
    dispatch.request_schedule()
    return deployment


@transaction.atomic
def scale_deployment(deployment: Deployment, replicas: Any, *,
                     organization: Organization | None, operator: bool = False) -> Deployment:
    _check_owner(deployment, organization, operator)
    count = clean_replicas(replicas)
    locked = Deployment.objects.select_for_update().select_related("model").get(
        pk=deployment.pk)
    if locked.state != DeploymentState.ACTIVE:
        raise Conflict(f"the deployment is {locked.state}; deploy the model again instead")
    if count > locked.replicas and locked.organization is not None and not operator:
        quotas.check_deployment(locked.organization, replicas=count,
                                engine_args=locked.engine_args, excluding=locked)
    if locked.replicas != count:
        log.info("deployment of %s scaled: %s -> %s replica(s)", locked.model.name,
                 locked.replicas, count)
        locked.replicas = count
        locked.save(update_fields=["replicas", "updated_at"])
        dispatch.request_schedule()
    return locked


@transaction.atomic
def undeploy(deployment: Deployment, *, organization: Organization | None,
             operator: bool = False) -> Deployment:
    """Drain and stop every replica; the deployment becomes STOPPED once none runs."""
    _check_owner(deployment, organization, operator)
    locked = Deployment.objects.select_for_update().select_related("model").get(
        pk=deployment.pk)
    if locked.state == DeploymentState.ACTIVE:
        locked.state = DeploymentState.UNDEPLOYING
        locked.save(update_fields=["state", "updated_at"])
        log.info("deployment of %s undeploying", locked.model.name)
        dispatch.request_reconcile(wind_down(locked))
        dispatch.request_schedule()
        locked.refresh_from_db()
    return locked


def stop_all_replicas_on_node(name: str, *, drain_seconds: float = 5) -> int:
    """Drain (briefly) and stop every replica on this host's node; for `potluck up` shutdown.

    Runs on the node's own host, beside or without its agent. The node is cordoned
    first, so the scheduler places nothing new on it meanwhile. Returns how many
    servers were stopped.
    """
    cordon_node(name)
    now = timezone.now()
    deadline = now + timedelta(seconds=drain_seconds)
    on_node = Replica.objects.filter(node__name=name)
    with transaction.atomic():
        on_node.filter(Q(state=ReplicaState.FAILED, next_restart_at__isnull=False)
                       | Q(state=ReplicaState.STARTING, pid__isnull=True)).update(
            state=ReplicaState.STOPPED, next_restart_at=None, stopped_at=now, updated_at=now)
        on_node.filter(state__in=[ReplicaState.STARTING, ReplicaState.READY]).update(
            state=ReplicaState.DRAINING, drain_deadline=deadline, updated_at=now)
        on_node.filter(state=ReplicaState.DRAINING, drain_deadline__gt=deadline).update(
            drain_deadline=deadline, updated_at=now)
    draining = list(on_node.filter(state=ReplicaState.DRAINING))
    running = [r for r in draining if servers.find_server(r.pid, r.port) is not None]
    while running and timezone.now() < deadline:
        if all(r.ready_at is None or servers.requests_in_flight(r.base_url) == 0
               for r in running):
            break
        time.sleep(0.5)
    stop_groups([r.pid for r in running if r.pid],
                        grace=settings.SERVING_STOP_GRACE_SECONDS)
    stopped = on_node.filter(pk__in=[r.pk for r in draining], state=ReplicaState.DRAINING)
    stopped.update(state=ReplicaState.STOPPED, stopped_at=timezone.now(),
                   updated_at=timezone.now())
    if running:
        log.info("stopped %s replica(s) on node %s", len(running), name)
    dispatch.request_schedule()  # a clustered deployment moves its replicas elsewhere
    return len(running)
