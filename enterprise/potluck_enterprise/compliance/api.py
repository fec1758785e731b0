# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Compliance's management API (/api/compliance/...) and the audit log's (/api/audit/...).

Members (capability ``read``) see profiles and variants with their model cards; admins
(the organization's compliance officers) edit profiles and read the audit log. Every
endpoint answers 403 while no licence grants "compliance".
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import StreamingHttpResponse
from django.urls import re_path
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck import extensions
from potluck.accounts.api_base import Tenant, resolve_tenant
from potluck.errors import Forbidden, NotFound
from potluck_enterprise.compliance import services
from potluck_enterprise.compliance.feature import FEATURE_KEY
from potluck_enterprise.compliance.models import Variant

NOT_LICENSED = ('compliance variants need an enterprise licence that grants the "compliance" '
                "feature; an operator installs one with `potluck license install`")


def ensure_licensed() -> None:
    if not extensions.feature_available(FEATURE_KEY):
        raise Forbidden(NOT_LICENSED)


class ComplianceView(APIView):
    permission_classes = [IsAuthenticated]
    capability = "read"

    @cached_property
    def tenant(self) -> Tenant:
        return resolve_tenant(self.request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        ensure_licensed()
        needed = "admin" if request.method not in ("GET", "HEAD", "OPTIONS") else \
            self.capability
        if not self.tenant.can(needed):
            raise Forbidden(f"this needs the {needed!r} capability in the organization")


class ProfileBody(serializers.Serializer):
    spec = serializers.JSONField(help_text="The profile (see the README's Compliance "
                                 "variants section for its fields).")
    based_on = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ProfilesView(ComplianceView):
    def get(self, request: Request) -> Response:
        return Response({"data": services.list_profiles(self.tenant.organization)})


class ProfileView(ComplianceView):
    serializer_class = ProfileBody

    def get(self, request: Request, key: str) -> Response:
        for item in services.list_profiles(self.tenant.organization):
            if item["key"] == key:
                return Response(item)
        raise NotFound(f"no compliance profile {key!r}")

    def put(self, request: Request, key: str) -> Response:
        body = ProfileBody(data=request.data)
        body.is_valid(raise_exception=True)
        profile = services.save_profile(self.tenant.organization, key,
                                        body.validated_data["spec"], user=self.tenant.user,
                                        based_on=body.validated_data.get("based_on", ""))
        return Response(services.profile_view(profile))


class VariantsView(ComplianceView):
    def get(self, request: Request) -> Response:
        rows = (Variant.objects.for_org(self.tenant.organization)
                .select_related("profile", "base", "model"))
        return Response({"data": [services.model_card(v) for v in rows]})


class VariantView(ComplianceView):
    def get(self, request: Request, variant_id: str) -> Response:
        row = (Variant.objects.for_org(self.tenant.organization)
               .select_related("profile", "base", "model").filter(pk=_uuid(variant_id))
               .first())
        if row is None:
            raise NotFound(f"no variant {variant_id}")
        return Response(services.model_card(row))


def _uuid(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# -- the audit log -----------------------------------------------------------------------
class AuditView(ComplianceView):
    capability = "admin"


class AuditEntriesView(AuditView):
    def get(self, request: Request) -> Response:
        from potluck_enterprise.audit import selectors

        limit = _int(request.query_params.get("limit"), 50, 1, 500)
        before = _int(request.query_params.get("before_seq"), 0, 0, 2**62)
        kind = request.query_params.get("kind") or None
        return Response(selectors.entries(self.tenant.organization, limit=limit,
                                          before_seq=before or None, kind=kind))


class AuditExportView(AuditView):
    def get(self, request: Request) -> StreamingHttpResponse:
        from potluck_enterprise.audit import services as audit

        key = audit.chain_key(self.tenant.organization.id)
        response = StreamingHttpResponse((line + "\n" for line in audit.export_lines(key)),
                                         content_type="application/x-ndjson")
        response["Content-Disposition"] = (
            f'attachment; filename="audit-{self.tenant.organization.slug}.jsonl"')
        return response


class AuditCheckpointsView(AuditView):
    def get(self, request: Request) -> Response:
        from potluck_enterprise.audit import selectors

        return Response(selectors.checkpoints(self.tenant.organization))


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        from potluck.errors import InvalidInput

        raise InvalidInput("must be a whole number", field="limit") from None
    return max(low, min(high, value))


def routes() -> list[Any]:
    """Mounted under /api/ (``extensions.api_routes``)."""
    return [
        re_path(r"^compliance/profiles/?$", ProfilesView.as_view(),
                name="compliance-profiles"),
        re_path(r"^compliance/profiles/(?P<key>[A-Za-z0-9_-]{1,64})/?$", ProfileView.as_view(),
                name="compliance-profile"),
        re_path(r"^compliance/variants/?$", VariantsView.as_view(), name="compliance-variants"),
        re_path(r"^compliance/variants/(?P<variant_id>[0-9a-fA-F-]{1,40})/?$",
                VariantView.as_view(), name="compliance-variant"),
        re_path(r"^audit/entries/?$", AuditEntriesView.as_view(), name="audit-entries"),
        re_path(r"^audit/export/?$", AuditExportView.as_view(), name="audit-export"),
        re_path(r"^audit/checkpoints/?$", AuditCheckpointsView.as_view(),
                name="audit-checkpoints"),
    ]
