# SPDX-License-Identifier: Apache-2.0
"""Management API for deployments (desired state) and replicas (actual state)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from potluck.accounts.api_base import OrgScopedViewSet
from potluck.errors import InvalidInput
from potluck.registry import services as registry
from potluck.serving import selectors, services
from potluck.serving.engine_args import ENGINE_ARG_KEYS, MAX_REPLICAS
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    model_id = serializers.UUIDField(source="model.id", read_only=True)
    public = serializers.SerializerMethodField()
    replica_counts = serializers.SerializerMethodField(
        help_text="Replicas by state: starting, ready, draining, stopped, failed.")

    class Meta:
        model = Deployment
        fields = ["id", "model", "model_id", "public", "replicas", "state", "replica_counts",
                  "engine_args", "placement", "created_at", "updated_at"]
        read_only_fields = fields

    def get_public(self, obj: Deployment) -> bool:
        return obj.organization_id is None

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "integer"}})
    def get_replica_counts(self, obj: Deployment) -> dict[str, int]:
        return {state: getattr(obj, f"n_{state}", 0) for state in ReplicaState.values}


class CreateDeploymentSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200, help_text="A model name or id.")
    replicas = serializers.IntegerField(min_value=0, max_value=MAX_REPLICAS, default=1)
    engine_args = serializers.DictField(
        required=False, default=dict,
        help_text="Allowlisted engine options, each with a checked value: "
                  + ", ".join(ENGINE_ARG_KEYS) + ". Anything else is refused.")
    placement = serializers.DictField(required=False, default=dict,
                                      help_text='{"nodes": [names]} (empty: any node)')


class ScaleSerializer(serializers.Serializer):
    replicas = serializers.IntegerField(min_value=0, max_value=MAX_REPLICAS)


def _uuid_param(request: Request, name: str) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("not a valid id", field=name) from None


def _state_param(request: Request, choices: list[str]) -> str | None:
    state = request.query_params.get("state")
    if state is not None and state not in choices:
        raise InvalidInput("must be one of " + ", ".join(choices), field="state")
    return state


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The organization's deployments, and public ones (read-only)."""

    model = Deployment
    serializer_class = DeploymentSerializer
    capabilities = {"list": "read", "retrieve": "read", "create": "write",
                    "partial_update": "write", "destroy": "write"}

    def get_queryset(self) -> QuerySet[Deployment]:
        deployments = selectors.deployments_visible_to(self.tenant.organization)
        state = _state_param(self.request, DeploymentState.values)
        return deployments.filter(state=state) if state else deployments

    def _shown(self, deployment: Deployment) -> dict[str, Any]:
        fresh = selectors.with_replica_counts(Deployment.objects.filter(pk=deployment.pk))
        return DeploymentSerializer(fresh.select_related("model").get()).data

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=DeploymentState.values)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=CreateDeploymentSerializer, responses={201: DeploymentSerializer})
    def create(self, request: Request) -> Response:
        body = CreateDeploymentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        org = self.tenant.organization
        deployment = services.create_deployment(
            registry.resolve(data["model"], org), data["replicas"], data["engine_args"],
            data["placement"], organization=org, created_by=self.tenant.user)
        return Response(self._shown(deployment), status=status.HTTP_201_CREATED)

    @extend_schema(request=ScaleSerializer, responses=DeploymentSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        deployment = self.get_object()  # another org's deployment is a 404 first
        body = ScaleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        deployment = services.scale_deployment(
            deployment, body.validated_data["replicas"],
            organization=self.tenant.organization)
        return Response(self._shown(deployment))

    @extend_schema(request=None, responses={202: DeploymentSerializer})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Undeploy: replicas drain and stop; the deployment becomes stopped."""
        deployment = services.undeploy(self.get_object(), organization=self.tenant.organization)
        return Response(self._shown(deployment), status=status.HTTP_202_ACCEPTED)


# Shown only to the organization that owns the deployment: a public deployment's logs,
# failure reasons and addresses belong to the operator.
_OWNER_ONLY_FIELDS = ("host", "port", "pid", "reason", "log_tail", "gpu_ids")


class ReplicaSerializer(serializers.ModelSerializer):
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    model = serializers.CharField(source="deployment.model.name", read_only=True)
    node = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = Replica
        fields = ["id", "deployment", "model", "node", "state", "restarts", "host", "port",
                  "pid", "reason", "log_tail", "gpu_ids", "next_restart_at", "drain_deadline",
                  "started_at", "ready_at", "stopped_at"]
        read_only_fields = fields

    def to_representation(self, instance: Replica) -> dict[str, Any]:
        data = super().to_representation(instance)
        view = self.context.get("view")
        organization = view.tenant.organization if view is not None else None
        if organization is None or instance.deployment.organization_id != organization.pk:
            for name in _OWNER_ONLY_FIELDS:
                data[name] = None
        return data


class ReplicaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Replicas of the organization's deployments and of public ones."""

    model = Replica
    serializer_class = ReplicaSerializer
    capabilities = {"list": "read", "retrieve": "read"}

    def get_queryset(self) -> QuerySet[Replica]:
        replicas = selectors.replicas_visible_to(self.tenant.organization)
        deployment = _uuid_param(self.request, "deployment")
        if deployment is not None:
            replicas = replicas.filter(deployment_id=deployment)
        state = _state_param(self.request, ReplicaState.values)
        return replicas.filter(state=state) if state else replicas

    @extend_schema(parameters=[OpenApiParameter("deployment", OpenApiTypes.UUID),
                               OpenApiParameter("state", str, enum=ReplicaState.values)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
