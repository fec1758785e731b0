# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Credits' management API, every route under ``/api/credits/``.

- ``status`` (any caller): the unit, the caller organization's wallet balance, the pool.
- ``wallet``, ``statement``, ``link/...``, ``donations``: the signed-in person's own.
- ``approvals``, ``grants``: maintainers (a superuser, or a user linked to a forge login
  in a repository's ``maintainers``).
- ``repositories``, ``distributions``, ``payouts.csv``, ``orgs/<slug>/credits``: a
  signed-in superuser (an operator).
- ``webhooks/<forge>/<repository id>``: the forges', verified by signature or token.
- ``pool``, ``leaderboard``: any signed-in caller.

Every endpoint answers 403 while no licence grants "credits".
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from django.http import HttpResponse, HttpResponseRedirect
from django.urls import re_path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck import extensions
from potluck.accounts.api_base import resolve_tenant
from potluck.accounts.authentication import ApiKeyUser
from potluck.accounts.models import ApiKey, Organization, User
from potluck.errors import Forbidden, InvalidInput, NotFound
from potluck_enterprise.credits import (
    grants,
    identity,
    ledger,
    payouts,
    repositories,
    revenue,
    services,
    units,
    webhooks,
)
from potluck_enterprise.credits.feature import FEATURE_KEY
from potluck_enterprise.credits.models import Grant

NOT_LICENSED = ('contribution credits need an enterprise licence that grants the "credits" '
                "feature; an operator installs one with `potluck license install`")


def ensure_licensed() -> None:
    if not extensions.feature_available(FEATURE_KEY):
        raise Forbidden(NOT_LICENSED)


class CreditsView(APIView):
    """Licence check; ``person`` views need a signed-in user, ``operator`` a superuser."""

    person = False
    operator = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        ensure_licensed()
        user = request.user
        if (self.person or self.operator) and (
                isinstance(request.auth, ApiKey) or isinstance(user, ApiKeyUser)
                or not getattr(user, "is_authenticated", False)):
            raise Forbidden("sign in to the console: this is a person's, not a key's")
        if self.operator and not user.is_superuser:
            raise Forbidden("only a signed-in superuser (an operator) may do this")

    @property
    def me(self) -> User:
        return self.request.user  # type: ignore[return-value]


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput("a whole number", field=field)
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise InvalidInput("a whole number", field=field) from None


class StatusView(CreditsView):
    def get(self, request: Request) -> Response:
        try:
            wallet = ledger.org_wallet(resolve_tenant(request).organization.pk)
        except NotFound:  # a person in no organization: the installation's figures only
            wallet = None
        return Response({"unit": units.UNIT_TEXT,
                         "credits_per_major_unit": units.CREDITS_PER_MAJOR_UNIT,
                         "organization_balance": wallet.balance if wallet else None,
                         "revenue_share": str(revenue.share_fraction()),
                         "pool": services.pool()["balance"],
                         "billing": extensions.feature_available("billing")})


class WalletView(CreditsView):
    person = True

    def get(self, request: Request) -> Response:
        return Response(services.wallet(self.me))


class StatementView(CreditsView):
    person = True

    def get(self, request: Request) -> Response:
        return Response(revenue.statement(self.me.pk))


class LinkTokenView(CreditsView):
    person = True

    def post(self, request: Request) -> Response:
        forge = str(request.data.get("forge") or "")
        token = identity.issue_token(self.me, forge, str(request.data.get("login") or ""))
        return Response({"token": token, "instructions": (
            "Put this token in your forge profile's bio (or the body of a pull request you "
            "opened on a participating repository), then verify.")}, status=201)


class LinkVerifyView(CreditsView):
    person = True

    def post(self, request: Request) -> Response:
        data = request.data
        number = data.get("number")
        account = identity.verify_token(
            self.me, str(data.get("forge") or ""), str(data.get("login") or ""),
            repository_id=str(data["repository"]) if data.get("repository") else None,
            number=_int(number, "number") if number is not None else None)
        return Response({"forge": account.forge, "login": account.login, "linked": True})


def _callback_uri(request: Request, forge: str) -> str:
    return request.build_absolute_uri(f"/api/credits/link/{forge}/callback")


class OAuthStartView(CreditsView):
    person = True

    def get(self, request: Request, forge: str) -> HttpResponse:
        return HttpResponseRedirect(identity.oauth_start(self.me, forge,
                                                         _callback_uri(request, forge)))


class OAuthCallbackView(CreditsView):
    person = True

    def get(self, request: Request, forge: str) -> HttpResponse:
        account = identity.oauth_finish(self.me, forge, str(request.query_params.get("code")
                                                            or ""),
                                        str(request.query_params.get("state") or ""),
                                        _callback_uri(request, forge))
        return HttpResponseRedirect(f"/credits?linked={account.forge}:{account.login}")


class WebhookView(APIView):
    """The forges' deliveries: verified before anything is read (see ``webhooks``)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request, forge: str, repository_id: str) -> Response:
        ensure_licensed()
        received = webhooks.receive(forge, repository_id, request.body, request.headers)
        return Response({"received": True, "duplicate": not received.first,
                         "queued": received.queued}, status=202 if received.queued else 200)


class ApprovalsView(CreditsView):
    person = True

    def get(self, request: Request) -> Response:
        return Response(services.approval_queue(self.me))


class ApprovalView(CreditsView):
    person = True

    def post(self, request: Request, grant_id: str) -> Response:
        grant = Grant.objects.select_related("repository").filter(
            pk=_int(grant_id, "id")).first()
        if grant is None or not services.is_maintainer(self.me, grant.repository):
            raise NotFound("no such grant awaiting your approval")
        decision = request.data.get("decision")
        if decision not in ("approve", "reject"):
            raise InvalidInput("approve or reject", field="decision")
        grant = grants.decide(grant.pk, approve=decision == "approve",
                              by=f"user:{self.me.email}")
        return Response({"id": grant.pk, "status": grant.status, "amount": grant.amount})


class GrantsView(CreditsView):
    person = True

    def post(self, request: Request) -> Response:
        data = request.data
        repository = services.find_repository(str(data.get("repository") or ""))
        if not services.is_maintainer(self.me, repository):
            raise Forbidden("only the repository's maintainers record grants")
        by = str(data.get("by") or self.me.email)
        grant = services.grant_manually(
            repository, number=_int(data.get("number"), "number"),
            author_id=str(data.get("author_id") or ""),
            author_login=str(data.get("author") or ""), by=by,
            title=str(data.get("title") or ""), labels=list(data.get("labels") or []))
        return Response({"id": grant.pk, "status": grant.status, "amount": grant.amount,
                         "reason": grant.reason}, status=201)


class RevertView(CreditsView):
    person = True

    def post(self, request: Request, grant_id: str) -> Response:
        grant = Grant.objects.select_related("repository").filter(
            pk=_int(grant_id, "id")).first()
        if grant is None or not services.is_maintainer(self.me, grant.repository):
            raise NotFound("no such grant in a repository you maintain")
        grant = grants.revert(grant, by=f"user:{self.me.email}")
        return Response({"id": grant.pk, "status": grant.status})


class DonationsView(CreditsView):
    person = True

    def post(self, request: Request) -> Response:
        org = Organization.objects.filter(slug=str(request.data.get("organization") or "")
                                          ).first()
        if org is None:
            raise NotFound("no such organization")
        left = services.donate(self.me, org, _int(request.data.get("credits"), "credits"))
        return Response({"balance": left}, status=201)


class PoolView(CreditsView):
    def get(self, request: Request) -> Response:
        return Response(services.pool())


class LeaderboardView(CreditsView):
    def get(self, request: Request) -> Response:
        return Response(services.leaderboard())


class RepositoriesView(CreditsView):
    operator = True

    def get(self, request: Request) -> Response:
        from potluck_enterprise.credits.models import Repository

        return Response([repositories.as_json(r) for r in Repository.objects.all()])

    def post(self, request: Request) -> Response:
        data = dict(request.data)
        repository, secret = repositories.create(
            str(data.pop("forge", "")), str(data.pop("full_name", "")),
            api_url=str(data.pop("api_url", "") or ""),
            api_token=str(data.pop("api_token", "") or ""),
            project_id=str(data.pop("project_id", "") or ""),
            **{k: v for k, v in data.items() if k in repositories.RULE_FIELDS})
        return Response({**repositories.as_json(repository), "secret": secret}, status=201)


class OrgCreditsView(CreditsView):
    operator = True

    def post(self, request: Request, slug: str) -> Response:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise NotFound("no such organization")
        balance = services.give_organization(
            org, _int(request.data.get("credits"), "credits"),
            reference=str(request.data.get("reference") or ""))
        return Response({"organization": org.slug, "balance": balance}, status=201)


class DistributionsView(CreditsView):
    operator = True

    def post(self, request: Request) -> Response:
        try:
            day = date.fromisoformat(str(request.data.get("period") or ""))
        except ValueError:
            raise InvalidInput("a day of the period, YYYY-MM-DD", field="period") from None
        dist = revenue.distribute(day)
        return Response({"period_start": dist.period_start.isoformat(), "pool": dist.pool,
                         "distributed": dist.distributed, "residue": dist.residue},
                        status=201)


class PayoutsCsvView(CreditsView):
    operator = True

    def get(self, request: Request) -> HttpResponse:
        out = io.StringIO()
        csv.writer(out).writerows(payouts.export_rows())
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="potluck-payouts.csv"'
        return response


def routes() -> list[Any]:
    def r(pattern: str, view: type[APIView], name: str) -> Any:
        return re_path(rf"^credits/{pattern}/?$", view.as_view(), name=f"credits-{name}")

    return [
        r("status", StatusView, "status"),
        r("wallet", WalletView, "wallet"),
        r("statement", StatementView, "statement"),
        r("link/token", LinkTokenView, "link-token"),
        r("link/verify", LinkVerifyView, "link-verify"),
        r(r"link/(?P<forge>github|gitlab)/start", OAuthStartView, "link-start"),
        r(r"link/(?P<forge>github|gitlab)/callback", OAuthCallbackView, "link-callback"),
        r(r"webhooks/(?P<forge>[a-z]+)/(?P<repository_id>[^/]+)", WebhookView, "webhook"),
        r("approvals", ApprovalsView, "approvals"),
        r(r"approvals/(?P<grant_id>[^/]+)", ApprovalView, "approval"),
        r("grants", GrantsView, "grants"),
        r(r"grants/(?P<grant_id>[^/]+)/revert", RevertView, "revert"),
        r("donations", DonationsView, "donations"),
        r("pool", PoolView, "pool"),
        r("leaderboard", LeaderboardView, "leaderboard"),
        r("repositories", RepositoriesView, "repositories"),
        r(r"orgs/(?P<slug>[^/]+)/credits", OrgCreditsView, "org-credits"),
        r("distributions", DistributionsView, "distributions"),
        r(r"payouts\.csv", PayoutsCsvView, "payouts-csv"),
    ]
