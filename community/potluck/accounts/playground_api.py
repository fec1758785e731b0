# SPDX-License-Identifier: Apache-2.0
"""``POST /api/keys/playground``: the signed-in person's console Playground key."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.accounts.api import NewApiKeySerializer
from potluck.accounts.api_base import resolve_tenant
from potluck.accounts.playground import issue_playground_key
from potluck.errors import Forbidden


class PlaygroundKeyView(APIView):
    """A new one-day, inference-only key for the caller's Playground in the organization
    it acts in; the caller's earlier Playground key there is revoked. The secret is in
    ``key``, shown once. 403 for an API key (it calls /v1 itself) or a role that cannot
    run inference."""

    @extend_schema(request=None, responses={201: NewApiKeySerializer})
    def post(self, request: Request) -> Response:
        tenant = resolve_tenant(request)
        if tenant.user is None:
            raise Forbidden("the Playground key is for people signed in to the console; "
                            "an API key calls /v1 itself")
        key, secret = issue_playground_key(tenant.organization, tenant.user)
        out = NewApiKeySerializer(key).data
        out["key"] = secret
        return Response(out, status=status.HTTP_201_CREATED)
