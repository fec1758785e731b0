# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Grants: what a merged patch earns by its repository's rules, vesting and clawback.

``consider`` is the one entry for a merged patch, whichever way it came (webhook,
reconcile, maintainer): one ``Grant`` row per repository and patch number (unique), so
a patch is credited at most once. Rules, in order (each refusal is a ``refused`` grant
with its reason and no ledger entry):

1. a revert earns nothing, and claws back the patch it reverts (``revert``);
2. a bot author earns nothing (``user.type == "Bot"``, ``[bot]`` logins, the repo's list);
3. a self-merge earns nothing (merged by its author);
4. with ``require_approval``, a maintainer other than the author must have approved it
   (``maintainers``: forge logins; an empty list accepts any approver but the author);
5. the amount is ``base_credits`` x the largest weight among its labels
   (``label_weights``; 1 when none is weighted; floored), never lines changed;
6. ``monthly_cap``: what the contributor earned in the repository in the merge's month
   (not reverted) plus this may not pass the cap; the grant is cut to what is left;
7. ``first_grant_needs_approval``: a forge account with no grant ever approved waits
   for a maintainer (``awaiting_approval``), and posts nothing until approved.

A granted patch posts ``issuance -> pending`` (key ``grant:<id>``) and vests after
``hold_days``: ``pending -> wallet`` (key ``vest:<id>``) once the forge account is linked
(until then it is held). A merged revert posts the reverse (key ``clawback:<id>``) from
wherever the credits are: pending, or the wallet even if that makes it negative; later
grants then recover it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from potluck.errors import Conflict, InvalidInput
from potluck_enterprise.credits import forges, ledger
from potluck_enterprise.credits.models import (
    AccountKind,
    ForgeAccount,
    Grant,
    GrantStatus,
    Repository,
)

log = logging.getLogger(__name__)

APPROVED = (GrantStatus.GRANTED, GrantStatus.VESTED, GrantStatus.REVERTED)
COUNTED = (GrantStatus.AWAITING_APPROVAL, GrantStatus.GRANTED, GrantStatus.VESTED)

Approvers = Callable[[Repository, int], list[str]]


def forge_account(forge: str, person: forges.Person) -> ForgeAccount:
    """The forge account of ``person`` (by the forge's id), its login kept current."""
    if not person.external_id:
        raise InvalidInput("the forge gave no account id", field="author")
    account, made = ForgeAccount.objects.get_or_create(
        forge=forge, external_id=person.external_id, defaults={"login": person.login})
    if not made and person.login and account.login != person.login:
        account.login = person.login
        account.save(update_fields=["login"])
    return account


def weight(repository: Repository, labels: tuple[str, ...] | list[str]) -> Decimal:
    weights = []
    for label in labels:
        raw = repository.label_weights.get(label)
        if raw is None:
            continue
        try:
            weights.append(Decimal(str(raw)))
        except InvalidOperation:
            continue
    return max(weights) if weights else Decimal(1)


def _month(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def consider(repository: Repository, patch: forges.MergedPatch, *, source: str,
             approvers: Approvers = forges.approvers) -> Grant:
    """Apply the rules to a merged patch once; returns its grant (the existing one if the
    patch was seen before). Raises ``forges.ForgeUnavailable`` when approvals cannot be
    read (the caller retries; nothing was written)."""
    existing = Grant.objects.filter(repository=repository, number=patch.number).first()
    if existing is not None:
        return existing
    approved_by: list[str] | None = None
    if patch.reverts is None and repository.require_approval and not patch.author.is_bot:
        approved_by = list(patch.approvers) if patch.approvers is not None else \
            approvers(repository, patch.number)  # outside the transaction: an HTTP call
    with transaction.atomic():
        account = forge_account(patch.forge, patch.author)
        account = ForgeAccount.objects.select_for_update().get(pk=account.pk)
        existing = Grant.objects.filter(repository=repository, number=patch.number).first()
        if existing is not None:
            return existing
        grant = Grant(repository=repository, number=patch.number, forge_account=account,
                      title=patch.title, url=patch.url, labels=list(patch.labels),
                      merged_at=patch.merged_at, month=_month(patch.merged_at).date(),
                      source=source)
        status, reason, amount = _rules(repository, patch, account, approved_by)
        grant.status, grant.reason, grant.amount = status, reason, amount
        if patch.reverts is None and status != GrantStatus.REFUSED and \
                Grant.objects.filter(repository=repository, status=GrantStatus.REFUSED,
                                     reason=f"reverts #{patch.number}").exists():
            grant.status, grant.reason, grant.amount = (
                GrantStatus.REFUSED, "reverted before it was credited", 0)
        grant.save()
        if grant.status == GrantStatus.GRANTED:
            _post_grant(grant)
        if patch.reverts is not None:
            original = Grant.objects.filter(repository=repository,
                                             number=patch.reverts).first()
            if original is not None:
                revert(original, by=f"{repository}#{patch.number}")
    log.info("credits: %s#%d by %s: %s %s", repository, patch.number, patch.author.login,
             grant.status, grant.reason)
    if grant.status == GrantStatus.GRANTED:
        vest_due(forge_account_id=account.pk)
    return grant


def _rules(repository: Repository, patch: forges.MergedPatch, account: ForgeAccount,
           approved_by: list[str] | None) -> tuple[str, str, int]:
    if patch.reverts is not None:
        return GrantStatus.REFUSED, f"reverts #{patch.reverts}", 0
    if patch.author.is_bot:
        return GrantStatus.REFUSED, "the author is a bot", 0
    if patch.merged_by is not None and patch.merged_by.external_id and \
            patch.merged_by.external_id == patch.author.external_id:
        return GrantStatus.REFUSED, "self-merge: the author merged it", 0
    if repository.require_approval:
        maintainers = {m.lower() for m in repository.maintainers}
        valid = [a for a in approved_by or [] if a and a.lower() != patch.author.login.lower()
                 and (not maintainers or a.lower() in maintainers)]
        if not valid:
            return GrantStatus.REFUSED, "no maintainer approved it", 0
    amount = int((Decimal(repository.base_credits) * weight(repository, patch.labels))
                 .to_integral_value(rounding=ROUND_FLOOR))
    if amount <= 0:
        return GrantStatus.REFUSED, "its labels earn nothing", 0
    reason = ""
    if repository.monthly_cap:
        used = Grant.objects.filter(forge_account=account, repository=repository,
                                    month=_month(patch.merged_at).date(),
                                    status__in=COUNTED).aggregate(s=Sum("amount"))["s"] or 0
        left = repository.monthly_cap - used
        if left <= 0:
            return GrantStatus.REFUSED, "monthly cap reached", 0
        if amount > left:
            amount, reason = left, f"cut to the monthly cap ({repository.monthly_cap})"
    if repository.first_grant_needs_approval and not Grant.objects.filter(
            forge_account=account, status__in=APPROVED).exists():
        return GrantStatus.AWAITING_APPROVAL, "first grant: waits for a maintainer", amount
    return GrantStatus.GRANTED, reason, amount


def _post_grant(grant: Grant) -> None:
    hold = timedelta(days=grant.repository.hold_days)
    Grant.objects.filter(pk=grant.pk).update(vests_at=timezone.now() + hold)
    grant.vests_at = timezone.now() + hold
    pending = ledger.pending_account(grant.forge_account)
    ledger.post(f"grant:{grant.pk}", "grant",
                [(ledger.system_account(AccountKind.ISSUANCE), -grant.amount),
                 (pending, grant.amount)],
                memo=f"{grant.repository}#{grant.number}: {grant.title}"[:300],
                data={"grant": grant.pk, "repository": str(grant.repository),
                      "number": grant.number, "login": grant.forge_account.login})


def decide(grant_id: int, *, approve: bool, by: str) -> Grant:
    """A maintainer approves (posts the grant) or rejects a grant awaiting approval.
    Raises ``Conflict`` when it is not awaiting approval."""
    with transaction.atomic():
        grant = Grant.objects.select_for_update().select_related(
            "repository", "forge_account").get(pk=grant_id)
        if grant.status != GrantStatus.AWAITING_APPROVAL:
            raise Conflict(f"grant {grant.pk} is {grant.status}, not awaiting approval")
        grant.status = GrantStatus.GRANTED if approve else GrantStatus.REJECTED
        grant.decided_by = by[:200]
        grant.save(update_fields=["status", "decided_by"])
        if approve:
            _post_grant(grant)
    if approve:
        vest_due(forge_account_id=grant.forge_account_id)
    return grant


def vest_due(now: datetime | None = None, *, forge_account_id: int | None = None) -> int:
    """Vest every granted credit whose hold has passed and whose forge account is linked
    (held ones wait for the link); returns how many grants vested."""
    now = now or timezone.now()
    due = Grant.objects.filter(status=GrantStatus.GRANTED, vests_at__lte=now,
                               forge_account__user__isnull=False)
    if forge_account_id is not None:
        due = due.filter(forge_account_id=forge_account_id)
    vested = 0
    for grant_id in list(due.values_list("id", flat=True)[:1000]):
        with transaction.atomic():
            grant = Grant.objects.select_for_update(skip_locked=True).select_related(
                "forge_account").filter(pk=grant_id, status=GrantStatus.GRANTED).first()
            if grant is None:
                continue
            wallet = ledger.contributor_wallet(grant.forge_account.user_id)
            if wallet is None:
                continue  # linked, but the wallet is made with the link: next pass
            ledger.post(f"vest:{grant.pk}", "vest",
                        [(ledger.pending_account(grant.forge_account), -grant.amount),
                         (wallet, grant.amount)],
                        memo=f"vested: {grant.title}"[:300],
                        data={"grant": grant.pk, "user": grant.forge_account.user_id})
            grant.status, grant.vested_at = GrantStatus.VESTED, now
            grant.save(update_fields=["status", "vested_at"])
            vested += 1
    return vested


def revert(grant: Grant, *, by: str) -> Grant:
    """Claw back a grant whose patch was reverted: from pending before it vested, from
    the wallet after (possibly below zero). Idempotent (``clawback:<id>``)."""
    with transaction.atomic():
        grant = Grant.objects.select_for_update().select_related("forge_account").get(
            pk=grant.pk)
        if grant.status == GrantStatus.AWAITING_APPROVAL:
            grant.status, grant.reason = GrantStatus.REJECTED, "reverted before approval"
        elif grant.status in (GrantStatus.GRANTED, GrantStatus.VESTED):
            source = ledger.pending_account(grant.forge_account) if \
                grant.status == GrantStatus.GRANTED else \
                ledger.contributor_wallet(grant.forge_account.user_id)
            ledger.post(f"clawback:{grant.pk}", "clawback",
                        [(source, -grant.amount),
                         (ledger.system_account(AccountKind.ISSUANCE), grant.amount)],
                        memo=f"reverted by {by}"[:300],
                        data={"grant": grant.pk, "vested": grant.status == GrantStatus.VESTED,
                              "user": grant.forge_account.user_id})
            grant.status = GrantStatus.REVERTED
        else:
            return grant
        grant.reverted_at, grant.reverted_by = timezone.now(), by[:200]
        grant.save(update_fields=["status", "reason", "reverted_at", "reverted_by"])
    return grant
