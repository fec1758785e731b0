# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""What operators, maintainers and contributors do by hand: grants for patches that came
by other means, credits given to an organization, donations, and the read models of
the wallet, the approval queue, the pool and the leaderboard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum

from potluck.accounts.models import Organization, User
from potluck.errors import Forbidden, InvalidInput, NotFound
from potluck_enterprise.billing import money
from potluck_enterprise.credits import forges, grants, ledger, units
from potluck_enterprise.credits.models import (
    AccountKind,
    Distribution,
    ForgeAccount,
    Grant,
    GrantStatus,
    LedgerAccount,
    LedgerLeg,
    Repository,
)

HOW_TO_EARN = (
    "Link your GitHub or GitLab account (sign in to the forge, or put a one-time token in "
    "your profile), then get patches merged in a participating repository. Each merged "
    "patch earns the repository's base credits times its label weight once a maintainer "
    "other than you approved it; your first grant waits for a maintainer. Credits vest "
    "after the repository's hold and land in your wallet, which your personal "
    "organization spends on inference and fine-tuning at list price. Each period the "
    "community pool (a share of enterprise revenue) is paid out in proportion to the "
    "credits vested to you in it.")


def find_repository(ref: str) -> Repository:
    """A repository by id, ``forge:owner/name`` or ``owner/name``."""
    query = Q(full_name__iexact=ref)
    if ":" in ref:
        forge, _, name = ref.partition(":")
        query = Q(forge=forge, full_name__iexact=name)
    try:
        uuid.UUID(ref)
        query |= Q(pk=ref)
    except ValueError:
        pass
    found = list(Repository.objects.filter(query)[:2])
    if len(found) != 1:
        raise NotFound(f"no single repository {ref!r}")
    return found[0]


def is_maintainer(user: User, repository: Repository | None = None) -> bool:
    """A superuser, or a user linked to a maintainer's forge account (of ``repository``,
    or of any repository)."""
    if user.is_superuser:
        return True
    logins = {a.lower() for a in ForgeAccount.objects.filter(user=user).values_list(
        "login", flat=True)}
    repos = [repository] if repository is not None else Repository.objects.filter(active=True)
    return any(logins & {m.lower() for m in r.maintainers} for r in repos)


def grant_manually(repository: Repository, *, number: int, author_id: str, author_login: str,
                   by: str, title: str = "", labels: list[str] | None = None,
                   merged_at: datetime | None = None) -> Grant:
    """A maintainer records a merged patch that came by other means (a mailed patch);
    ``by`` is the maintainer's forge login, the approver. The same rules apply, and the
    maintainer's act approves a first-timer's grant."""
    if by.lower() == author_login.lower():
        raise Forbidden("a maintainer cannot grant credits for their own patch")
    patch = forges.MergedPatch(
        forge=repository.forge, repository=repository.full_name, number=number,
        title=title, author=forges.Person(str(author_id), author_login),
        merged_by=forges.Person(f"maintainer:{by}", by),
        merged_at=merged_at or datetime.now(UTC), labels=tuple(labels or ()),
        approvers=(by,))
    grant = grants.consider(repository, patch, source="maintainer")
    if grant.status == GrantStatus.AWAITING_APPROVAL:
        grant = grants.decide(grant.pk, approve=True, by=by)
    return grant


def give_organization(organization: Organization, credits: int, *, reference: str = "",
                      memo: str = "") -> int:
    """An operator gives an organization credits (issuance -> its wallet). Returns its
    balance. ``reference`` makes a retried call post once."""
    if credits <= 0:
        raise InvalidInput("give a positive number of credits", field="credits")
    with transaction.atomic():
        wallet = ledger.org_wallet(organization.pk, create=True)
        ledger.post(f"orggrant:{reference or uuid.uuid4().hex}", "org_grant",
                    [(ledger.system_account(AccountKind.ISSUANCE), -credits),
                     (wallet, credits)], memo=memo or f"credits for {organization.slug}",
                    data={"organization": str(organization.pk)})
    return ledger.balance(wallet)


def donate(user: User, organization: Organization, credits: int, *, reference: str = ""
           ) -> int:
    """A contributor gives an organization credits from their wallet (no more than its
    balance). Returns the wallet's balance after."""
    if credits <= 0:
        raise InvalidInput("give a positive number of credits", field="credits")
    with transaction.atomic():
        wallet = ledger.contributor_wallet(user.pk)
        if wallet is None:
            raise NotFound("you have no wallet yet: link a forge account first")
        wallet = LedgerAccount.objects.select_for_update().get(pk=wallet.pk)
        if wallet.organization_id == organization.pk:
            raise InvalidInput("that is your own organization's wallet", field="organization")
        if wallet.balance < credits:
            raise InvalidInput(f"your wallet holds {wallet.balance} credits",
                               field="credits")
        target = ledger.org_wallet(organization.pk, create=True)
        ledger.post(f"donate:{reference or uuid.uuid4().hex}", "donation",
                    [(wallet, -credits), (target, credits)],
                    memo=f"donated to {organization.slug}",
                    data={"user": user.pk, "organization": str(organization.pk)})
    return ledger.balance(wallet)


def _grant_json(g: Grant) -> dict[str, Any]:
    return {"id": g.pk, "repository": str(g.repository), "number": g.number,
            "title": g.title, "url": g.url, "labels": g.labels, "login": g.forge_account.login,
            "amount": g.amount, "status": g.status, "reason": g.reason,
            "merged_at": g.merged_at.isoformat(),
            "vests_at": g.vests_at.isoformat() if g.vests_at else None,
            "vested_at": g.vested_at.isoformat() if g.vested_at else None}


def wallet(user: User) -> dict[str, Any]:
    """A contributor's wallet: balance, vesting and held grants, history, linked accounts."""
    account = ledger.contributor_wallet(user.pk)
    linked = list(ForgeAccount.objects.filter(user=user))
    vesting = Grant.objects.filter(forge_account__in=linked, status=GrantStatus.GRANTED
                                   ).select_related("repository", "forge_account")
    waiting = Grant.objects.filter(forge_account__in=linked,
                                   status=GrantStatus.AWAITING_APPROVAL
                                   ).select_related("repository", "forge_account")
    recent = Grant.objects.filter(forge_account__in=linked).select_related(
        "repository", "forge_account")[:50]
    org = Organization.objects.filter(pk=account.organization_id).first() if account else None
    return {
        "unit": units.UNIT_TEXT, "currency": money.currency(),
        "balance": account.balance if account else 0,
        "balance_value": str(units.major_for(account.balance if account else 0)),
        "vesting": sum(g.amount for g in vesting),
        "awaiting_approval": sum(g.amount for g in waiting),
        "organization": {"slug": org.slug, "name": org.name} if org else None,
        "linked_accounts": [{"forge": a.forge, "login": a.login, "linked_by": a.linked_by,
                             "linked_at": a.linked_at.isoformat() if a.linked_at else None}
                            for a in linked],
        "grants": [_grant_json(g) for g in recent],
        "history": list(ledger.history(account, 50)) if account else [],
        "how_to_earn": HOW_TO_EARN,
        "repositories": [{"forge": r.forge, "full_name": r.full_name,
                          "base_credits": r.base_credits, "label_weights": r.label_weights,
                          "hold_days": r.hold_days, "monthly_cap": r.monthly_cap}
                         for r in Repository.objects.filter(active=True)],
    }


def approval_queue(user: User) -> list[dict[str, Any]]:
    """Grants awaiting approval in repositories the user maintains."""
    waiting = Grant.objects.filter(status=GrantStatus.AWAITING_APPROVAL).select_related(
        "repository", "forge_account").order_by("created_at")
    return [_grant_json(g) for g in waiting if is_maintainer(user, g.repository)]


def pool() -> dict[str, Any]:
    """The community pool and its last distributions (money in minor units)."""
    account = LedgerAccount.objects.filter(code=AccountKind.POOL).first()
    return {"currency": money.currency(), "minor_unit_exponent": money.minor_unit_exponent(),
            "balance": account.balance if account else 0,
            "distributions": [{"period_start": d.period_start.isoformat(),
                               "period_end": d.period_end.isoformat(), "pool": d.pool,
                               "distributed": d.distributed, "residue": d.residue,
                               "credits_vested": d.credits_vested,
                               "people": d.shares.filter(amount__gt=0).count()}
                              for d in Distribution.objects.all()[:12]]}


def leaderboard(limit: int = 20) -> list[dict[str, Any]]:
    """Contributors by credits vested, net of clawbacks (forge logins, never emails)."""
    totals = (LedgerLeg.objects.filter(account__kind=AccountKind.CONTRIBUTOR,
                                       transaction__kind__in=("vest", "clawback"))
              .values("account__user_id").annotate(total=Sum("amount"))
              .order_by("-total")[:limit])
    rows = []
    for row in totals:
        logins = list(ForgeAccount.objects.filter(user_id=row["account__user_id"])
                      .values_list("forge", "login"))
        rows.append({"accounts": [f"{f}:{login}" for f, login in logins],
                     "credits": int(row["total"] or 0),
                     "patches": Grant.objects.filter(
                         forge_account__user_id=row["account__user_id"],
                         status=GrantStatus.VESTED).count()})
    return rows
