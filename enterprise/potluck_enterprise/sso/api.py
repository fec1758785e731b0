# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SSO's management API for organization admins, and every SSO route under /api/sso/.

Admins (capability ``admin``) set up the organization's OIDC and SAML connections, its
email domains and group -> role mappings. Secrets are write-only: a response says a
client secret is set, never what it is. Marking a domain verified without DNS is an
operator's act (a superuser). Every endpoint answers 403 while no licence grants "sso".
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db.models import QuerySet
from django.urls import path, re_path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from potluck.accounts.api import RoleSerializer
from potluck.accounts.api_base import OrgScopedViewSet, Tenant, resolve_tenant
from potluck.accounts.models import Role
from potluck.errors import Forbidden
from potluck_enterprise.sso import domains, flows, services
from potluck_enterprise.sso.gate import ensure_licensed
from potluck_enterprise.sso.models import (
    EmailDomain,
    GroupRoleMapping,
    OidcConnection,
    SamlConnection,
    VerificationMethod,
)


class _ConnectionFields(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    default_role = serializers.ChoiceField(choices=Role.choices, required=False)
    groups_claim = serializers.CharField(max_length=200, required=False)
    org_claim = serializers.CharField(max_length=200, required=False, allow_blank=True)
    org_claim_value = serializers.CharField(max_length=200, required=False, allow_blank=True)


class OidcConnectionSerializer(_ConnectionFields):
    id = serializers.UUIDField(read_only=True)
    discovery_url = serializers.CharField(max_length=500, required=False)
    client_id = serializers.CharField(max_length=255, required=False)
    client_secret = serializers.CharField(max_length=2000, required=False, write_only=True,
                                          trim_whitespace=False,
                                          help_text="Write-only; never returned.")
    has_client_secret = serializers.SerializerMethodField()
    scopes = serializers.ListField(child=serializers.CharField(max_length=100),
                                   required=False, allow_empty=False)
    redirect_uri = serializers.SerializerMethodField(
        help_text="Register this redirect URI at the IdP.")
    start_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_has_client_secret(self, obj: OidcConnection) -> bool:
        return bool(obj.client_secret_encrypted)

    def get_redirect_uri(self, obj: OidcConnection) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("sso-oidc-callback", args=[obj.organization.slug]))

    def get_start_url(self, obj: OidcConnection) -> str:
        return reverse("sso-oidc-start", args=[obj.organization.slug])


class SamlConnectionSerializer(_ConnectionFields):
    id = serializers.UUIDField(read_only=True)
    idp_metadata_xml = serializers.CharField(required=False, write_only=True,
                                             max_length=1024 * 1024)
    idp_metadata_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    idp_entity_id = serializers.CharField(read_only=True)
    sp_entity_id = serializers.CharField(required=False, max_length=500)
    sp_certificate = serializers.CharField(read_only=True)
    email_attribute = serializers.CharField(required=False, max_length=200)
    want_assertions_signed = serializers.BooleanField(read_only=True)
    acs_url = serializers.SerializerMethodField()
    metadata_url = serializers.SerializerMethodField()
    start_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def _absolute(self, name: str, obj: SamlConnection) -> str:
        return self.context["request"].build_absolute_uri(
            reverse(name, args=[obj.organization.slug]))

    def get_acs_url(self, obj: SamlConnection) -> str:
        return self._absolute("sso-saml-acs", obj)

    def get_metadata_url(self, obj: SamlConnection) -> str:
        return self._absolute("sso-saml-metadata", obj)

    def get_start_url(self, obj: SamlConnection) -> str:
        return reverse("sso-saml-start", args=[obj.organization.slug])


class AdminView(APIView):
    permission_classes = [IsAuthenticated]

    @cached_property
    def tenant(self) -> Tenant:
        return resolve_tenant(self.request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not self.tenant.can("admin"):
            raise Forbidden("only an organization admin can manage single sign-on")
        ensure_licensed()


class OidcConnectionView(AdminView):
    serializer_class = OidcConnectionSerializer  # for the OpenAPI schema

    @extend_schema(responses=OidcConnectionSerializer)
    def get(self, request: Request) -> Response:
        connection = services.get_connection(self.tenant.organization, OidcConnection)
        return Response(OidcConnectionSerializer(connection, context={"request": request}).data)

    @extend_schema(request=OidcConnectionSerializer, responses=OidcConnectionSerializer)
    def put(self, request: Request) -> Response:
        body = OidcConnectionSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        connection = services.save_oidc_connection(
            self.tenant.organization, dict(body.validated_data),
            granted_by_owner=self.tenant.can("owner"))
        return Response(OidcConnectionSerializer(connection, context={"request": request}).data)

    patch = put

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        services.delete_connection(
            services.get_connection(self.tenant.organization, OidcConnection))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SamlConnectionView(AdminView):
    serializer_class = SamlConnectionSerializer  # for the OpenAPI schema

    @extend_schema(responses=SamlConnectionSerializer)
    def get(self, request: Request) -> Response:
        connection = services.get_connection(self.tenant.organization, SamlConnection)
        return Response(SamlConnectionSerializer(connection, context={"request": request}).data)

    @extend_schema(request=SamlConnectionSerializer, responses=SamlConnectionSerializer)
    def put(self, request: Request) -> Response:
        body = SamlConnectionSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        org = self.tenant.organization
        connection = services.save_saml_connection(
            org, dict(body.validated_data),
            default_entity_id=request.build_absolute_uri(
                reverse("sso-saml-metadata", args=[org.slug])),
            granted_by_owner=self.tenant.can("owner"))
        return Response(SamlConnectionSerializer(connection, context={"request": request}).data)

    patch = put

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        services.delete_connection(
            services.get_connection(self.tenant.organization, SamlConnection))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SamlKeyView(AdminView):
    serializer_class = SamlConnectionSerializer

    @extend_schema(request=None, responses=SamlConnectionSerializer)
    def post(self, request: Request) -> Response:
        connection = services.regenerate_sp_keypair(
            services.get_connection(self.tenant.organization, SamlConnection))
        return Response(SamlConnectionSerializer(connection, context={"request": request}).data)


class LicensedViewSet(OrgScopedViewSet):
    default_capability = "admin"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        ensure_licensed()


class EmailDomainSerializer(serializers.ModelSerializer):
    verified = serializers.BooleanField(source="is_verified", read_only=True)
    txt_record_name = serializers.SerializerMethodField()
    txt_record_value = serializers.SerializerMethodField()

    class Meta:
        model = EmailDomain
        fields = ["id", "domain", "verified", "verified_at", "verification_method",
                  "enforce_sso", "txt_record_name", "txt_record_value", "created_at"]
        read_only_fields = ["id", "verified_at", "verification_method", "created_at"]

    def get_txt_record_name(self, obj: EmailDomain) -> str:
        return domains.txt_record_name(obj)

    def get_txt_record_value(self, obj: EmailDomain) -> str:
        return domains.txt_record_value(obj)


class EnforceSerializer(serializers.Serializer):
    enforce_sso = serializers.BooleanField()


class VerifySerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=VerificationMethod.choices,
                                     default=VerificationMethod.DNS)


class DomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LicensedViewSet):
    """Email domains of the organization; verify by DNS TXT, or (a superuser) by fiat."""

    model = EmailDomain
    serializer_class = EmailDomainSerializer

    def get_object(self) -> EmailDomain:
        return domains.get_domain(self.tenant.organization, self.kwargs["pk"])

    @extend_schema(request=EmailDomainSerializer, responses={201: EmailDomainSerializer})
    def create(self, request: Request) -> Response:
        body = EmailDomainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        domain = domains.add_domain(self.tenant.organization, body.validated_data["domain"],
                                    enforce_sso=body.validated_data.get("enforce_sso", False))
        return Response(EmailDomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EnforceSerializer, responses=EmailDomainSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        body = EnforceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        domain = domains.set_enforcement(self.get_object(), body.validated_data["enforce_sso"])
        return Response(EmailDomainSerializer(domain).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        domains.remove_domain(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=VerifySerializer, responses=EmailDomainSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        body = VerifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        domain = self.get_object()
        if body.validated_data["method"] == VerificationMethod.OPERATOR:
            user = self.tenant.user
            if user is None or not user.is_superuser:
                raise Forbidden("only an operator (a superuser) can verify a domain without "
                                "DNS", field="method")
            domain = domains.verify_by_operator(domain)
        else:
            domain = domains.verify_by_dns(domain)
        return Response(EmailDomainSerializer(domain).data)


class RoleMappingSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = GroupRoleMapping
        fields = ["id", "group", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class RoleMappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LicensedViewSet):
    """IdP group -> Potluck role; a user in several mapped groups gets the highest role."""

    model = GroupRoleMapping
    serializer_class = RoleMappingSerializer

    def get_queryset(self) -> QuerySet[GroupRoleMapping]:
        return GroupRoleMapping.objects.for_org(self.tenant.organization)

    @extend_schema(request=RoleMappingSerializer, responses={201: RoleMappingSerializer})
    def create(self, request: Request) -> Response:
        body = RoleMappingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mapping = services.add_mapping(
            self.tenant.organization, body.validated_data["group"], body.validated_data["role"],
            granted_by_owner=self.tenant.can("owner"))
        return Response(RoleMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RoleSerializer, responses=RoleMappingSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        body = RoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mapping = services.change_mapping(self.get_object(), body.validated_data["role"],
                                          granted_by_owner=self.tenant.can("owner"))
        return Response(RoleMappingSerializer(mapping).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.remove_mapping(self.get_object(), granted_by_owner=self.tenant.can("owner"))
        return Response(status=status.HTTP_204_NO_CONTENT)


def routes() -> list[Any]:
    """Mounted under /api/ (``extensions.api_routes``)."""
    router = SimpleRouter()
    router.trailing_slash = "/?"
    router.register("sso/domains", DomainViewSet, basename="sso-domain")
    router.register("sso/role-mappings", RoleMappingViewSet, basename="sso-role-mapping")
    return [
        re_path(r"^sso/connections/oidc/?$", OidcConnectionView.as_view(),
                name="sso-oidc-connection"),
        re_path(r"^sso/connections/saml/?$", SamlConnectionView.as_view(),
                name="sso-saml-connection"),
        re_path(r"^sso/connections/saml/regenerate-key/?$", SamlKeyView.as_view(),
                name="sso-saml-regenerate-key"),
        re_path(r"^sso/logout/?$", flows.LogoutView.as_view(), name="sso-logout"),
        *router.urls,
        path("sso/<slug:org_slug>/oidc/start", flows.OidcStartView.as_view(),
             name="sso-oidc-start"),
        path("sso/<slug:org_slug>/oidc/callback", flows.OidcCallbackView.as_view(),
             name="sso-oidc-callback"),
        path("sso/<slug:org_slug>/saml/metadata", flows.SamlMetadataView.as_view(),
             name="sso-saml-metadata"),
        path("sso/<slug:org_slug>/saml/start", flows.SamlStartView.as_view(),
             name="sso-saml-start"),
        path("sso/<slug:org_slug>/saml/acs", flows.SamlAcsView.as_view(), name="sso-saml-acs"),
    ]
