# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Vesting and clawback: a grant vests after its hold into the contributor's wallet; a
merged revert claws it back from pending before vesting and from the wallet after
(even below zero, once the credits were spent), and later grants recover the debt;
a revert earns nothing itself, and a patch reverted before it was seen earns nothing."""

from __future__ import annotations

from datetime import timedelta

from credits_helpers import gh_pull, gh_user
from django.utils import timezone

from potluck.accounts import services as accounts
from potluck_enterprise.credits import forges, grants, identity, ledger
from potluck_enterprise.credits.models import AccountKind, GrantStatus, LedgerTransaction

REPO = "potluck/potluck"
ALICE, MAINT = gh_user("alice", 101), gh_user("maint", 900)


def merged(repository, forge, number, body="", author=ALICE):
    pull = gh_pull(number, author, MAINT, body=body)
    forge.pull(REPO, pull, approved_by=["maint"])
    return grants.consider(repository, forges.github_patch(pull, REPO, []), source="webhook")


def test_revert_after_vesting_takes_the_wallet_below_zero_and_future_grants_recover(
        db, credits_on, repo, forge):
    credits_on()
    repository, _ = repo(first_grant_needs_approval=False, hold_days=30)
    user = accounts.get_or_create_user("alice@example.test")
    identity.link(user, "github", forges.Person("101", "alice"), how="operator")
    wallet = ledger.contributor_wallet(user.pk)
    grant = merged(repository, forge, 1)
    assert grant.status == GrantStatus.GRANTED and ledger.balance(wallet) == 0
    assert grants.vest_due() == 0  # the hold has not passed
    assert grants.vest_due(timezone.now() + timedelta(days=31)) == 1
    assert ledger.balance(wallet) == 1000
    # The contributor spends 800 of it (a usage debit), then the patch is reverted.
    ledger.post("spend:test", "spend", [(wallet, -800),
                                        (ledger.system_account(AccountKind.USAGE), 800)])
    revert = merged(repository, forge, 2, body="Reverts potluck/potluck#1\n\nBroke CI.",
                    author=gh_user("carol", 103))
    assert (revert.status, revert.reason) == (GrantStatus.REFUSED, "reverts #1")
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVERTED and grant.reverted_by == \
        "github:potluck/potluck#2"
    assert ledger.balance(wallet) == -800
    # A second delivery of the revert claws nothing more.
    grants.revert(grant, by="again")
    assert LedgerTransaction.objects.filter(kind="clawback").count() == 1
    # The next grant recovers the debt first.
    later = merged(repository, forge, 3)
    grants.vest_due(timezone.now() + timedelta(days=31))
    later.refresh_from_db()
    assert later.status == GrantStatus.VESTED and ledger.balance(wallet) == 200


def test_revert_before_vesting_reverses_the_pending_credits(db, credits_on, repo, forge):
    credits_on()
    repository, _ = repo(first_grant_needs_approval=False)
    grant = merged(repository, forge, 5)
    pending = ledger.pending_account(grant.forge_account)
    assert ledger.balance(pending) == 1000
    merged(repository, forge, 6, body="Reverts potluck/potluck#5", author=gh_user("dan", 104))
    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVERTED and ledger.balance(pending) == 0
    issuance = ledger.system_account(AccountKind.ISSUANCE)
    assert ledger.balance(issuance) == 0
    # A patch whose revert was seen first earns nothing when it arrives.
    merged(repository, forge, 8, body="Reverts potluck/potluck#7", author=gh_user("dan", 104))
    late = merged(repository, forge, 7)
    assert (late.status, late.amount) == (GrantStatus.REFUSED, 0)
    # Reverting another repository's patch touches nothing here.
    other = merged(repository, forge, 9, body="Reverts someone/else#5")
    assert other.status == GrantStatus.GRANTED
