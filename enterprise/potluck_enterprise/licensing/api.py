# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``/api/license``: the installed licence (GET) and installing one (POST or PUT);
``/api/license/renew``: ask the store for a renewal now (POST).

Reading: any caller that may read in its organization (members, viewers, API keys with
``read``); the console's licence panel shows it. Installing replaces the licence of the
whole installation, for every organization, so it is an operator's act: a signed-in
superuser (the first admin that ``potluck up`` creates is one). Organization owners and
admins who are not superusers, and API keys, are refused (403).
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.urls import re_path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.accounts.api_base import resolve_tenant
from potluck.accounts.authentication import ApiKeyUser
from potluck.accounts.models import ApiKey
from potluck.errors import Forbidden, InvalidInput
from potluck_enterprise.licensing import services
from potluck_enterprise.licensing.format import MAX_TEXT_BYTES


class FeatureSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    enabled = serializers.BooleanField()


class OnlineRenewalSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    checked_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField(allow_null=True)


class LicenceStatusSerializer(serializers.Serializer):
    installed = serializers.BooleanField()
    state = serializers.ChoiceField(
        choices=["none", "invalid", "active", "expiring", "grace", "expired"])
    warnings = serializers.ListField(child=serializers.CharField())
    seats_used = serializers.IntegerField()
    seats = serializers.IntegerField(allow_null=True)
    seats_limit = serializers.IntegerField(allow_null=True)
    license_id = serializers.CharField(allow_null=True)
    licensee = serializers.CharField(allow_null=True)
    organization = serializers.CharField(allow_null=True)
    features = FeatureSerializer(many=True)
    issued_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    grace_days = serializers.IntegerField(allow_null=True)
    grace_ends_at = serializers.DateTimeField(allow_null=True)
    installed_at = serializers.DateTimeField(allow_null=True)
    installed_by = serializers.EmailField(allow_null=True)
    installation_id = serializers.CharField(
        help_text="This installation's id: a licence bound to another one is refused.")
    bound_to = serializers.CharField(
        allow_null=True, help_text="The installation the licence is bound to (null: any).")
    days_left = serializers.IntegerField(allow_null=True)
    expiry_notice = serializers.ChoiceField(
        choices=["30_days", "7_days", "grace", "expired"], allow_null=True,
        help_text="30_days / 7_days: expiry is that close; grace; expired.")
    store_url = serializers.CharField(
        allow_null=True, help_text="The store's page for this installation (buy or upgrade), "
        "with its installation id and seats in use; null when no store is configured.")
    online_renewal = OnlineRenewalSerializer()


class LicenceInstallSerializer(serializers.Serializer):
    license = serializers.CharField(
        trim_whitespace=False, max_length=MAX_TEXT_BYTES,
        help_text="The licence file's text, from -----BEGIN POTLUCK LICENSE----- to the "
                  "END line (or the file itself, uploaded as multipart form data).")


def _operator(request: Request) -> Any:
    user = request.user
    if (isinstance(request.auth, ApiKey) or isinstance(user, ApiKeyUser)
            or not user.is_superuser):
        raise Forbidden("installing a licence changes the whole installation: only a "
                        "signed-in superuser (an operator) may do it")
    return user


def _licence_text(request: Request) -> str:
    upload = request.FILES.get("license")
    if isinstance(upload, UploadedFile):
        if upload.size is not None and upload.size > MAX_TEXT_BYTES:
            raise InvalidInput(f"a licence file is at most {MAX_TEXT_BYTES // 1024} KiB",
                               field="license")
        try:
            return upload.read().decode()
        except UnicodeDecodeError:
            raise InvalidInput("the licence is not UTF-8 text", field="license") from None
    body = LicenceInstallSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data["license"]


class LicenceView(APIView):
    @extend_schema(responses=LicenceStatusSerializer)
    def get(self, request: Request) -> Response:
        tenant = resolve_tenant(request)
        if not tenant.can("read"):
            raise Forbidden("your role or key scopes do not allow this")
        return Response(LicenceStatusSerializer(services.status().as_dict()).data)

    @extend_schema(request=LicenceInstallSerializer,
                   responses={201: LicenceStatusSerializer})
    def post(self, request: Request) -> Response:
        user = _operator(request)
        services.install(_licence_text(request), by=user)
        return Response(LicenceStatusSerializer(services.status().as_dict()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=LicenceInstallSerializer,
                   responses={201: LicenceStatusSerializer})
    def put(self, request: Request) -> Response:
        return self.post(request)


class RenewalOutcomeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["renewed", "current", "ended", "skipped",
                                              "failed"])
    detail = serializers.CharField()
    license_id = serializers.CharField(allow_null=True)


class RenewView(APIView):
    """Ask the store for a renewed licence now (an operator's act, as installing is)."""

    @extend_schema(request=None, responses=RenewalOutcomeSerializer)
    def post(self, request: Request) -> Response:
        from potluck_enterprise.licensing import renewal

        _operator(request)
        outcome = renewal.renew()
        return Response({"status": outcome.status, "detail": outcome.detail,
                         "license_id": outcome.license_id})


def routes() -> list[Any]:
    """Mounted under /api/ (``extensions.api_routes``); /api/license and /api/license/."""
    return [re_path(r"^license/?$", LicenceView.as_view(), name="license"),
            re_path(r"^license/renew/?$", RenewView.as_view(), name="license-renew")]
