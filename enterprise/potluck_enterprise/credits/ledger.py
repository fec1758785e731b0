# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The double-entry ledger: accounts, balanced postings idempotent by key, balances.

Why not django-hordak (MIT, the issue's first choice)? Version 2.0.0 installs and
migrates on this Django (5.2) and PostgreSQL, and its deferred ``check_leg`` trigger
does enforce zero-sum legs; we copied that design. But it does not fit as it is:
its accounts are an MPTT tree whose root accounts take ``tree_id = MAX(tree_id) + 1``
with no lock (django-mptt ``_get_next_tree_id``), and its balance SQL sums every leg
of a tree by ``tree_id``/``lft``/``rght``, so two contributors' wallets created at once
could share a tree and each other's balances; balances are sums over legs (O(n), no
maintained balance); legs and transactions may be updated and deleted; transactions
have no idempotency key; amounts are MoneyFields whose precision is a global setting
read by its migrations and whose currency must be a py-moneyed currency (credits are
not one); and it brings 45 MB of dependencies (django-mptt, django-money, py-moneyed,
django-import-export, tablib, babel, django-extensions, dj-database-url). Each gap would
need code of our own around it, so the ledger is these three small tables with the
database enforcing the rules (see ``models`` and migration 0005).

``post`` is the only writer. It runs in the caller's transaction (or its own), inserts
the transaction row with ``ON CONFLICT (idempotency_key) DO NOTHING`` (a second post of
a key, concurrent or later, returns the first and writes nothing), then the legs in
account-id order (so concurrent postings lock accounts in one order: no deadlock).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from potluck.errors import PotluckError
from potluck_enterprise.credits.models import (
    COMMODITY_OF,
    AccountKind,
    ForgeAccount,
    LedgerAccount,
    LedgerLeg,
    LedgerTransaction,
)

SYSTEM_KINDS = (AccountKind.ISSUANCE, AccountKind.USAGE, AccountKind.EXPIRY,
                AccountKind.REVENUE, AccountKind.POOL, AccountKind.PAYOUTS)


class LedgerError(PotluckError):
    """A posting that cannot be made (unbalanced, empty, mixed commodities)."""

    status = 400


def _account(code: str, kind: str, **fields: Any) -> LedgerAccount:
    found = LedgerAccount.objects.filter(code=code).first()
    if found is not None:
        return found
    account, _ = LedgerAccount.objects.get_or_create(
        code=code, defaults={"kind": kind, "commodity": COMMODITY_OF[AccountKind(kind)],
                             **fields})
    return account


def system_account(kind: str) -> LedgerAccount:
    """The installation's one account of ``kind`` (issuance, usage, revenue, pool...)."""
    if kind not in SYSTEM_KINDS:
        raise ValueError(f"{kind} is not a system account kind")
    return _account(kind, kind)


def pending_account(forge_account: ForgeAccount) -> LedgerAccount:
    """Credits granted to a forge account that have not vested (or wait for a link)."""
    return _account(f"pending:{forge_account.pk}", AccountKind.PENDING,
                    forge_account=forge_account)


def contributor_wallet(user_id: int) -> LedgerAccount | None:
    return LedgerAccount.objects.filter(code=f"wallet:user:{user_id}").first()


def open_contributor_wallet(user_id: int, organization_id: Any) -> LedgerAccount:
    """The contributor's wallet, spent by their personal organization."""
    return _account(f"wallet:user:{user_id}", AccountKind.CONTRIBUTOR, user_id=user_id,
                    organization_id=organization_id)


def org_wallet(organization_id: Any, *, create: bool = False) -> LedgerAccount | None:
    """The wallet an organization spends from (a contributor's, for a personal org)."""
    found = LedgerAccount.objects.filter(organization_id=organization_id).first()
    if found is None and create:
        found = _account(f"org:{organization_id}", AccountKind.ORGANIZATION,
                         organization_id=organization_id)
    return found


def payable_account(user_id: int) -> LedgerAccount:
    """Money owed to a contributor from distributions, until paid out."""
    return _account(f"payable:user:{user_id}", AccountKind.PAYABLE, user_id=user_id)


def post(key: str, kind: str, legs: Iterable[tuple[LedgerAccount, int]], *, memo: str = "",
         data: dict[str, Any] | None = None, at: datetime | None = None
         ) -> tuple[LedgerTransaction, bool]:
    """Post a balanced transaction once per ``key``; returns (it, whether this call made
    it). Legs on one account are summed; zero legs are dropped. Raises ``LedgerError``
    when nothing is left or a commodity does not sum to zero (the database would refuse
    it at commit anyway)."""
    merged: dict[int, tuple[LedgerAccount, int]] = {}
    for account, amount in legs:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise LedgerError(f"ledger amounts are integers, not {amount!r}")
        held = merged.get(account.pk)
        merged[account.pk] = (account, (held[1] if held else 0) + amount)
    lines = [(a, n) for a, n in merged.values() if n != 0]
    if not lines:
        raise LedgerError(f"{key}: a transaction needs at least one non-zero leg")
    totals: dict[str, int] = {}
    for account, amount in lines:
        totals[account.commodity] = totals.get(account.commodity, 0) + amount
    if any(totals.values()):
        raise LedgerError(f"{key}: legs do not sum to zero ({totals})")
    table = LedgerTransaction._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (idempotency_key, kind, memo, data, posted_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING "
                "RETURNING id",
                [key, kind, memo[:300], json.dumps(data or {}), at or timezone.now()])
            row = cursor.fetchone()
        if row is None:
            return LedgerTransaction.objects.get(idempotency_key=key), False
        LedgerLeg.objects.bulk_create([
            LedgerLeg(transaction_id=row[0], account_id=a.pk, amount=n)
            for a, n in sorted(lines, key=lambda line: line[0].pk)])
    return LedgerTransaction.objects.get(pk=row[0]), True


def balance(account: LedgerAccount | None) -> int:
    """The account's balance, read from its row (O(1); equal to the sum of its legs)."""
    if account is None:
        return 0
    return LedgerAccount.objects.filter(pk=account.pk).values_list("balance", flat=True)[0]


@dataclass(frozen=True)
class Problem:
    what: str
    detail: str


def verify() -> list[Problem]:
    """Every invariant, checked from the legs: each account's balance equals the sum of
    its legs, each transaction's legs sum to zero per commodity, and each commodity sums
    to zero over all accounts. Returns the problems (none: the ledger is sound)."""
    problems = []
    sums = dict(LedgerLeg.objects.values("account").annotate(total=Sum("amount"))
                .values_list("account", "total"))
    totals: dict[str, int] = {}
    for account in LedgerAccount.objects.all():
        legs = int(sums.get(account.pk) or 0)
        totals[account.commodity] = totals.get(account.commodity, 0) + account.balance
        if legs != account.balance:
            problems.append(Problem("balance", f"{account.code}: balance {account.balance} "
                                               f"but legs sum to {legs}"))
    for commodity, total in totals.items():
        if total:
            problems.append(Problem("commodity", f"{commodity} accounts sum to {total}"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.transaction_id, a.commodity, SUM(l.amount) FROM "
            f"{LedgerLeg._meta.db_table} l JOIN {LedgerAccount._meta.db_table} a "
            "ON a.id = l.account_id GROUP BY 1, 2 HAVING SUM(l.amount) <> 0 LIMIT 20")
        for tx, commodity, total in cursor.fetchall():
            problems.append(Problem("transaction", f"transaction {tx}: {commodity} legs "
                                                   f"sum to {total}"))
    return problems


def history(account: LedgerAccount, limit: int = 100) -> Sequence[dict[str, Any]]:
    """The account's latest legs with their transactions, newest first."""
    legs = (LedgerLeg.objects.filter(account=account).select_related("transaction")
            .order_by("-id")[:limit])
    return [{"transaction": leg.transaction_id, "kind": leg.transaction.kind,
             "amount": leg.amount, "memo": leg.transaction.memo,
             "data": leg.transaction.data, "posted_at": leg.transaction.posted_at.isoformat()}
            for leg in legs]
