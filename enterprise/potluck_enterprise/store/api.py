# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's API: Stripe's webhook and online renewal (under /api/store/).

``POST /api/store/stripe/webhook``: Stripe's deliveries (verified before being read).
``POST /api/store/renewals`` ``{"license": "<the licence text>", "installation_id": "..."}``:
an installation asks for the newest licence of its subscription; answers ``{"status":
"renewed"|"current"|"ended", "license": "<text>"|null, "license_id", "expires_at",
"detail"}``. Neither needs a sign-in: the signature and the licence are the credentials.
Both answer 404 where the store is off.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.errors import NotFound
from potluck_enterprise.billing.stripe_adapter import (
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
)
from potluck_enterprise.licensing.format import MAX_TEXT_BYTES
from potluck_enterprise.store import renewals, signing, webhooks


def ensure_store() -> None:
    if not signing.enabled():
        raise NotFound("there is no licence store on this installation")


class StoreWebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        ensure_store()
        try:
            event, first = webhooks.receive(request.body,
                                            request.headers.get("Stripe-Signature"))
        except (StripeUnavailable, StripeRejected, StripeNotConfigured) as exc:
            # Nothing was stored: Stripe delivers the event again later.
            return Response({"detail": f"the store could not ask Stripe ({exc}); deliver "
                                       "again later"}, status=503)
        return Response({"received": True, "duplicate": not first, "id": event.id})


class RenewalRequest(serializers.Serializer):
    license = serializers.CharField(max_length=MAX_TEXT_BYTES, trim_whitespace=False)
    installation_id = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                            default="")


class RenewalView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        ensure_store()
        body = RenewalRequest(data=request.data)
        body.is_valid(raise_exception=True)
        found = renewals.renewal_for(body.validated_data["license"],
                                     body.validated_data["installation_id"].strip())
        row = found.licence
        return Response({"status": found.status, "detail": found.detail,
                         "license": row.raw if row else None,
                         "license_id": row.license_id if row else None,
                         "expires_at": row.expires_at if row else None})


def routes() -> list[Any]:
    """Mounted under /api/ (``extensions.api_routes``)."""
    return [
        re_path(r"^store/stripe/webhook/?$", StoreWebhookView.as_view(),
                name="store-stripe-webhook"),
        re_path(r"^store/renewals/?$", RenewalView.as_view(), name="store-renewals"),
    ]
