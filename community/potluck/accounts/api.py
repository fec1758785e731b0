# SPDX-License-Identifier: Apache-2.0
"""Management API for organizations, members and API keys (thin: services do the work)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck import extensions
from potluck.accounts import quotas, selectors, services
from potluck.accounts.api_base import OrgScopedViewSet, Tenant, resolve_tenant
from potluck.accounts.invitations_api import SentInvitationSerializer, send_invitation
from potluck.accounts.models import KEY_SCOPES, ApiKey, Membership, Organization, Role
from potluck.errors import Forbidden


class OrganizationSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(required=False, max_length=64)
    quotas = serializers.SerializerMethodField(
        help_text="Capacity quotas: replicas, gpus, concurrent_fine_tunes (set by the "
                  "operator).")

    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "quotas", "created_at"]
        read_only_fields = ["id", "quotas", "created_at"]

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "integer"}})
    def get_quotas(self, obj: Organization) -> dict[str, int]:
        return quotas.all_quotas(obj)


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class RoleSerializer(serializers.Serializer):
    """A request body that names one role (``{"role": "admin"}``): a member's new role, or
    what an identity-provider group maps to (the enterprise SSO API uses it too)."""

    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None,
                                        allow_null=True)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=[s.value for s in KEY_SCOPES]),
        required=False, allow_empty=False,
    )
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "expires_at",
                  "last_used_at", "revoked_at", "is_active"]
        read_only_fields = ["id", "created_at", "last_used_at", "revoked_at"]


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret; shown only once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class OrganizationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Organizations the caller belongs to (a key sees only its own)."""

    serializer_class = OrganizationSerializer
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Organization]:
        if isinstance(self.request.auth, ApiKey):
            return Organization.objects.filter(pk=self.request.auth.organization_id)
        return selectors.organizations_of(self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        if isinstance(self.request.auth, ApiKey):
            raise PermissionDenied("API keys cannot create organizations; sign in as a person")
        data = serializer.validated_data
        serializer.instance = services.create_organization(
            data["name"], slug=data.get("slug"), owner=self.request.user
        )


class MembersViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.DestroyModelMixin, OrgScopedViewSet):
    model = Membership
    serializer_class = MemberSerializer
    capabilities = {"list": "read", "retrieve": "read"}

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.members(self.tenant.organization)

    @extend_schema(request=MemberSerializer, responses={201: SentInvitationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Invite a person (as ``POST /api/invitations``): they join when they accept.

        Kept for clients that added members here; the answer is the invitation, whose
        ``id``, ``email``, ``role`` and ``created_at`` read as a member's did.
        """
        body = MemberSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return send_invitation(request, self.tenant,
                               {"email": data["user"]["email"], "role": data["role"]})

    @extend_schema(request=RoleSerializer, responses=MemberSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        member = self.get_object()  # another org's member is a 404 before anything else
        body = RoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.change_role(
            member, body.validated_data["role"],
            granted_by_owner=self.tenant.can("owner"),
        )
        return Response(MemberSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        services.remove_member(instance, removed_by_owner=self.tenant.can("owner"))


def _made(tenant: Tenant, key: ApiKey) -> bool:
    """Whether the caller created ``key``: the person signed in, or the API key in use."""
    if tenant.user is not None and key.created_by_id == tenant.user.pk:
        return True
    return tenant.api_key is not None and key.created_by_key_id == tenant.api_key.pk


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Keys of the caller's organization. Members create keys; admins or creators revoke."""

    model = ApiKey
    serializer_class = ApiKeySerializer
    capabilities = {"list": "read", "retrieve": "read", "create": "write", "revoke": "write"}

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_keys(self.tenant.organization)

    @extend_schema(request=ApiKeySerializer, responses={201: NewApiKeySerializer})
    def create(self, request: Request) -> Response:
        body = ApiKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scopes = data.get("scopes")
        wanted = set(scopes) if scopes is not None else {
            s.value for s in KEY_SCOPES if s.value != "admin"}
        # A key can never hold more than its maker may do.
        beyond = sorted(wanted - self.tenant.capabilities)
        if beyond:
            raise Forbidden(f"you cannot grant the scope {beyond[0]!r}", field="scopes")
        key, secret = services.create_api_key(
            self.tenant.organization, data["name"], scopes=sorted(wanted),
            expires_at=data.get("expires_at"), created_by=self.tenant.user,
            created_by_key=self.tenant.api_key,
        )
        out = NewApiKeySerializer(key).data
        out["key"] = secret
        return Response(out, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        if not (self.tenant.can("admin") or _made(self.tenant, key)):
            raise Forbidden("only an admin (an admin key or role) or the key's creator (the "
                            "person, or the key, that created it) can revoke it")
        return Response(ApiKeySerializer(services.revoke_api_key(key)).data)


class MeView(APIView):
    """Who the caller is, which organization it acts in, and what it may do."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        tenant = resolve_tenant(request)
        return Response({
            "organization": OrganizationSerializer(tenant.organization).data,
            "user": tenant.user.email if tenant.user else None,
            "api_key": tenant.api_key.display_prefix if tenant.api_key else None,
            "role": tenant.role,
            "capabilities": sorted(tenant.capabilities),
        })


class ExtensionsView(APIView):
    """What extensions registered: console panels and licence-gated features."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        panels = sorted(extensions.console_panels, key=lambda p: (p.order, p.key))
        body: dict[str, Any] = {
            "panels": [{"key": p.key, "title": p.title, "api_path": p.api_path,
                        "description": p.description} for p in panels],
            "features": [{"key": f.key, "title": f.title} for f in extensions.features],
        }
        return Response(body)
