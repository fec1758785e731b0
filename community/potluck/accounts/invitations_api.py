# SPDX-License-Identifier: Apache-2.0
"""Invitations over the management API (thin: ``potluck.accounts.invitations`` decides).

The organization's side (admins): ``GET/POST /api/invitations``, ``DELETE
/api/invitations/{id}`` (revoke). ``POST /api/members`` invites too, as it always
answered for adding a member.

The person's side: ``GET /api/invitations/received`` and ``POST
/api/invitations/received/{id}/accept|decline`` (signed in as the invited address);
``GET /api/invitations/token?token=``, ``POST /api/invitations/accept`` (``{token,
password?}``) and ``POST /api/invitations/decline`` (``{token}``) with the emailed link.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck.accounts import invitations
from potluck.accounts.api_base import OrgScopedViewSet
from potluck.accounts.authentication import ApiKeyUser
from potluck.accounts.models import Invitation, InvitationStatus, Membership, Role, User
from potluck.accounts.session_api import enforce_csrf
from potluck.errors import Forbidden, InvalidInput, NotFound


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="pending, accepted, declined, "
                                                             "revoked or expired")
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True,
                                        default=None, allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at",
                  "accepted_at", "declined_at", "revoked_at"]
        read_only_fields = fields


class SentInvitationSerializer(InvitationSerializer):
    delivery = serializers.CharField(
        read_only=True, help_text="sent (emailed), not_configured (no mail settings: the "
                                  "operator gives the link, `potluck invitations link`) or "
                                  "failed")

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "delivery"]


class InviteSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class OrganizationRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class ReceivedInvitationSerializer(serializers.ModelSerializer):
    organization = OrganizationRefSerializer(read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True,
                                        default=None, allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "organization", "email", "role", "invited_by", "created_at",
                  "expires_at"]
        read_only_fields = fields


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)


class AcceptSerializer(TokenSerializer):
    password = serializers.CharField(required=False, max_length=4096, trim_whitespace=False,
                                     style={"input_type": "password"},
                                     help_text="Only for an address with no account yet.")


class JoinedSerializer(serializers.Serializer):
    organization = OrganizationRefSerializer()
    role = serializers.CharField()
    email = serializers.EmailField()


def base_url(request: Request) -> str:
    """Where links point: ``POTLUCK_PUBLIC_URL``, else this request's own origin."""
    return settings.PUBLIC_URL or request.build_absolute_uri("/")


def send_invitation(request: Request, tenant: Any, data: dict[str, Any]) -> Response:
    sent = invitations.invite_and_send(
        tenant.organization, data["email"], data["role"], invited_by=tenant.user,
        granted_by_owner=tenant.can("owner"), base_url=base_url(request))
    body = SentInvitationSerializer(sent.invitation).data
    body["delivery"] = sent.delivery
    return Response(body, status=status.HTTP_201_CREATED)


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The organization's invitations. Admins invite and revoke; anyone in it reads."""

    model = Invitation
    serializer_class = InvitationSerializer
    capabilities = {"list": "read", "retrieve": "read", "create": "admin",
                    "destroy": "admin"}

    def get_queryset(self) -> QuerySet[Invitation]:
        found = Invitation.objects.for_org(self.tenant.organization).select_related(
            "invited_by")
        wanted = self.request.query_params.get("status")
        if wanted is None:
            return found
        if wanted not in InvitationStatus.values:
            raise InvalidInput("must be one of " + ", ".join(InvitationStatus.values),
                               field="status")
        return found.with_status(wanted)

    @extend_schema(parameters=[OpenApiParameter("status", str,
                                                enum=InvitationStatus.values)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=InviteSerializer, responses={201: SentInvitationSerializer})
    def create(self, request: Request) -> Response:
        """Invite an email address; the person accepts (and only then joins)."""
        body = InviteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return send_invitation(request, self.tenant, body.validated_data)

    @extend_schema(request=None, responses={200: InvitationSerializer})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Revoke: the link stops working and the person can no longer accept."""
        return Response(InvitationSerializer(invitations.revoke(self.get_object())).data)


def _person(request: Request) -> User:
    user = request.user
    if isinstance(user, ApiKeyUser) or not isinstance(user, User):
        raise Forbidden("invitations are answered by people: sign in (a key acts for an "
                        "organization)")
    return user


def _joined(membership: Membership) -> dict[str, Any]:
    org = membership.organization
    return {"organization": {"id": org.pk, "slug": org.slug, "name": org.name},
            "role": membership.role, "email": membership.user.email}


def _invitation_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such invitation") from None


class ReceivedInvitationsView(APIView):
    """Pending invitations to the signed-in person's email, from every organization."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: ReceivedInvitationSerializer(many=True)})
    def get(self, request: Request) -> Response:
        found = invitations.received(_person(request))
        return Response({"results": ReceivedInvitationSerializer(found, many=True).data})


class ReceivedAnswerView(APIView):
    """Accept or decline one of them: ``POST …/received/{id}/accept|decline``."""

    permission_classes = [IsAuthenticated]
    answer = "accept"

    @extend_schema(request=None, responses={200: JoinedSerializer})
    def post(self, request: Request, pk: str) -> Response:
        person = _person(request)
        if self.answer == "accept":
            return Response(_joined(invitations.accept(_invitation_id(pk), person)))
        declined = invitations.decline(_invitation_id(pk), person)
        return Response(InvitationSerializer(declined).data)


def _signed_in(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


class TokenInvitationView(APIView):
    """What an emailed link is for: ``GET /api/invitations/token?token=…``."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(parameters=[OpenApiParameter("token", str, required=True)],
                   responses={200: dict})
    def get(self, request: Request) -> Response:
        found = invitations.peek(request.query_params.get("token", ""))
        org = found.organization
        return Response({
            "organization": {"id": org.pk, "slug": org.slug, "name": org.name},
            "email": found.email, "role": found.role,
            "invited_by": found.invited_by.email if found.invited_by else None,
            "expires_at": found.expires_at,
            "has_account": User.objects.filter(email__iexact=found.email).exists(),
        })


class TokenAcceptView(APIView):
    """Accept by the emailed link: signed in as the invited address, or choosing a
    password to open the account of an address that has none (then signed in)."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(request=AcceptSerializer, responses={200: JoinedSerializer})
    def post(self, request: Request) -> Response:
        enforce_csrf(request)
        body = AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        current = _signed_in(request)
        membership, user = invitations.accept_with_token(
            body.validated_data["token"], password=body.validated_data.get("password"),
            signed_in=current)
        if current is None:
            login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(_joined(membership))


class TokenDeclineView(APIView):
    """Decline by the emailed link."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(request=TokenSerializer, responses={200: InvitationSerializer})
    def post(self, request: Request) -> Response:
        enforce_csrf(request)
        body = TokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        declined = invitations.decline_with_token(body.validated_data["token"])
        return Response(InvitationSerializer(declined).data)
