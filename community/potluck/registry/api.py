# SPDX-License-Identifier: Apache-2.0
"""Management API for the model registry."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from potluck.accounts.api_base import OrgScopedViewSet
from potluck.errors import InvalidInput
from potluck.registry import selectors, services
from potluck.registry.models import RegisteredModel, Source


class ModelSerializer(serializers.ModelSerializer):
    public = serializers.BooleanField(source="is_public", read_only=True)
    base = serializers.CharField(source="base.name", read_only=True, default=None)

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "kind", "base", "public", "source", "path", "repo_id",
                  "revision", "architecture", "context_length", "license", "size_bytes",
                  "adapter_rank", "capabilities", "created_at"]
        read_only_fields = fields


class RegisterModelSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    source = serializers.ChoiceField(choices=Source.choices, default=Source.LOCAL)
    path = serializers.CharField(required=False, max_length=1024)
    repo_id = serializers.CharField(required=False, max_length=200)
    revision = serializers.CharField(required=False, max_length=100, default="main")
    base = serializers.CharField(required=False, max_length=200,
                                 help_text="Registers a LoRA adapter of this base model.")
    architecture = serializers.CharField(required=False, max_length=100, default="")
    context_length = serializers.IntegerField(required=False, min_value=1)
    license = serializers.CharField(required=False, max_length=100, default="")

    def validate(self, attrs: dict) -> dict:
        if attrs["source"] == Source.LOCAL and not attrs.get("path"):
            raise serializers.ValidationError({"path": ["a local model needs a path"]})
        if attrs["source"] == Source.HUGGINGFACE:
            if not attrs.get("repo_id"):
                raise serializers.ValidationError({"repo_id": ["a hub model needs a repo_id"]})
            if attrs.get("base"):
                raise serializers.ValidationError({"base": ["adapters must be local"]})
        return attrs


class ModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                   OrgScopedViewSet):
    """Models this organization can use: its own and the public ones."""

    model = RegisteredModel
    serializer_class = ModelSerializer
    capabilities = {"list": "read", "retrieve": "read", "create": "write", "destroy": "write"}

    def get_queryset(self) -> QuerySet[RegisteredModel]:
        return selectors.models_visible_to(self.tenant.organization)

    @extend_schema(request=RegisterModelSerializer, responses={201: ModelSerializer})
    def create(self, request: Request) -> Response:
        body = RegisterModelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        org = self.tenant.organization
        user = self.tenant.user
        if data.get("base"):
            try:
                base = services.resolve(data["base"], org)
            except services.NotFound:
                raise InvalidInput(f"no model named {data['base']!r}", field="base") from None
            model = services.register_local_adapter(
                data["name"], data["path"], base=base, organization=org, created_by=user)
        elif data["source"] == Source.HUGGINGFACE:
            model = services.register_hub_model(
                data["name"], data["repo_id"], organization=org, revision=data["revision"],
                architecture=data["architecture"], context_length=data.get("context_length"),
                license=data["license"], created_by=user)
        else:
            model = services.register_local_model(
                data["name"], data["path"], organization=org, created_by=user,
                license=data["license"])
        return Response(ModelSerializer(model).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: RegisteredModel) -> None:
        services.delete_model(instance, organization=self.tenant.organization)
