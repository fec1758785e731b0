# SPDX-License-Identifier: Apache-2.0
"""Desired state (deployments) and actual state (replicas) of the serving pool."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.tenancy import OrgScopedQuerySet

if TYPE_CHECKING:
    from potluck.accounts.models import Organization


class DeploymentQuerySet(OrgScopedQuerySet):
    def for_org(self, organization: Organization) -> Self:
        """An organization sees its own deployments and the public ones."""
        return self.filter(Q(organization=organization) | Q(organization__isnull=True))


class DeploymentState(models.TextChoices):
    ACTIVE = "active"  # keep `replicas` replicas running
    UNDEPLOYING = "undeploying"  # drain and stop every replica, then become STOPPED
    STOPPED = "stopped"


class Deployment(models.Model):
    """What should run: a base model, how many replicas, with which engine arguments."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                              related_name="deployments")
    # Null: a public deployment (operator-made) that serves every organization.
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True,
                                     on_delete=models.CASCADE, related_name="deployments")
    replicas = models.PositiveIntegerField(default=1)
    # Allowlisted engine options (potluck.serving.engine_args.OPTIONS) and gpus_per_replica.
    engine_args = models.JSONField(default=dict)
    # Free-form vLLM arguments set by the operator (`potluck deploy --vllm-arg`); never
    # written through the API.
    operator_args = ArrayField(models.CharField(max_length=1000), default=list, blank=True)
    # nodes: [names] the replicas may run on (empty: any node)
    placement = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=DeploymentState.choices,
                             default=DeploymentState.ACTIVE)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model"], name="one_live_deployment_per_model",
                                    condition=~Q(state="stopped")),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} x{self.replicas} ({self.state})"


class ReplicaState(models.TextChoices):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


LIVE_REPLICA_STATES = (ReplicaState.STARTING, ReplicaState.READY, ReplicaState.DRAINING)


class ReplicaQuerySet(OrgScopedQuerySet):
    def for_org(self, organization: Organization) -> Self:
        """Replicas of the organization's own deployments and of the public ones."""
        return self.filter(Q(deployment__organization=organization)
                           | Q(deployment__organization__isnull=True))

    def restart_pending(self) -> Self:
        """FAILED replicas that their node agent will restart in place after a back-off.

        A FAILED replica without ``next_restart_at`` is retired (its node was lost, or it
        was scaled away) and is never started again.
        """
        return self.filter(state=ReplicaState.FAILED, next_restart_at__isnull=False)


class Replica(models.Model):
    """One vLLM OpenAI server process on one node."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE,
                                   related_name="replica_set")
    node = models.ForeignKey("nodes.Node", on_delete=models.CASCADE, related_name="replicas")
    host = models.CharField(max_length=255, default="127.0.0.1")
    port = models.PositiveIntegerField(null=True, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=ReplicaState.choices,
                             default=ReplicaState.STARTING)
    reason = models.TextField(blank=True)
    log_tail = models.TextField(blank=True)
    restarts = models.PositiveIntegerField(default=0)
    next_restart_at = models.DateTimeField(null=True, blank=True)
    drain_deadline = models.DateTimeField(null=True, blank=True)
    gpu_ids = models.JSONField(default=list)
    # LoRA adapters this server holds now (loaded at run time; empty after a restart).
    adapters = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReplicaQuerySet.as_manager()

    class Meta:
        ordering = ["started_at"]
        constraints = [
            models.UniqueConstraint(fields=["node", "port"], name="one_replica_per_port",
                                    condition=Q(state__in=["starting", "ready", "draining"])),
        ]

    def __str__(self) -> str:
        return f"{self.deployment.model.name}@{self.node.name}:{self.port} ({self.state})"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ReplicaStateChange(models.Model):
    """A replica's state history: one row each time its state changes.

    A database trigger writes it (migration ``serving.0003``) on every insert of a
    replica and every update that changes ``state``, whoever the writer (the scheduler's
    bulk updates included), with the database's clock. Ids are kept as plain values, not
    foreign keys: the history outlives the rows it describes. ``gpus`` is how many GPUs
    the replica held then. Read it through ``potluck.serving.history``.
    """

    id = models.BigAutoField(primary_key=True)
    replica_id = models.UUIDField(db_index=True)
    deployment_id = models.UUIDField()
    node_id = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=ReplicaState.choices)
    gpus = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.replica_id} {self.state} at {self.at:%Y-%m-%d %H:%M:%S}"
