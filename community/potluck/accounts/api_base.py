# SPDX-License-Identifier: Apache-2.0
"""The tenant of a management API request, and the base viewset that scopes to it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import exceptions, permissions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from potluck.accounts.authentication import ApiKeyUser
from potluck.accounts.models import ROLE_CAPABILITIES, ApiKey, Membership, Organization, User
from potluck.errors import NotFound, PotluckError

ORG_HEADER = "X-Potluck-Organization"


@dataclass(frozen=True)
class Tenant:
    organization: Organization
    capabilities: frozenset[str]
    user: User | None = None
    api_key: ApiKey | None = None
    role: str | None = None

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


def resolve_tenant(request: Request) -> Tenant:
    """The organization a request acts in, and what it may do there."""
    if isinstance(request.auth, ApiKey):
        key = request.auth
        return Tenant(organization=key.organization, capabilities=frozenset(key.scopes),
                      api_key=key)
    user = request.user
    if not user.is_authenticated or isinstance(user, ApiKeyUser):
        raise exceptions.NotAuthenticated()
    memberships = Membership.objects.filter(user=user).select_related("organization")
    wanted = request.headers.get(ORG_HEADER)
    if wanted:
        membership = memberships.filter(organization__slug=wanted).first()
        if membership is None:
            raise NotFound(f"no organization named {wanted!r}")
    else:
        membership = memberships.order_by("created_at").first()
        if membership is None:
            raise NotFound("you are not a member of any organization")
    return Tenant(organization=membership.organization,
                  capabilities=ROLE_CAPABILITIES[membership.role],
                  user=user, role=membership.role)


class HasCapability(permissions.BasePermission):
    message = "your role or key scopes do not allow this"

    def has_permission(self, request: Request, view: Any) -> bool:
        required = view.required_capability()
        return required is None or view.tenant.can(required)


class OrgScopedViewSet(viewsets.GenericViewSet):
    """Every queryset goes through the model's ``for_org`` with the caller's organization.

    Subclasses set ``model`` and ``capabilities`` (action -> capability); the rest of
    tenancy (404 for other orgs' objects, role and scope checks) happens here.
    """

    model: Any = None
    capabilities: dict[str, str | None] = {}
    default_capability = "admin"
    permission_classes = [permissions.IsAuthenticated, HasCapability]

    @cached_property
    def tenant(self) -> Tenant:
        return resolve_tenant(self.request)

    def required_capability(self) -> str | None:
        return self.capabilities.get(self.action or "", self.default_capability)

    def get_queryset(self) -> QuerySet:
        return self.model.objects.for_org(self.tenant.organization)

    def get_object(self) -> Any:
        try:
            return super().get_object()
        except DjangoValidationError:  # a malformed id is simply not found
            raise NotFound("not found") from None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus domain errors rendered as DRF renders its own."""
    if isinstance(exc, PotluckError):
        if exc.field:
            body: dict[str, Any] = {exc.field: [exc.message]}
        else:
            body = {"detail": exc.message}
        return Response(body, status=exc.status)
    return drf_exception_handler(exc, context)
