# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The rules that make credits hard to farm, each with its ledger outcome: a self-merge,
a bot author and a patch no maintainer approved earn nothing and post nothing; a
first-time contributor's first grant posts nothing until a maintainer approves it;
labels weigh a patch (lines changed never do); the monthly cap cuts and then refuses."""

from __future__ import annotations

import pytest
from credits_helpers import gh_pull, gh_user

from potluck_enterprise.credits import forges, grants, ledger
from potluck_enterprise.credits.models import (
    Grant,
    GrantStatus,
    LedgerAccount,
    LedgerTransaction,
)

REPO = "potluck/potluck"
ALICE, MAINT = gh_user("alice", 101), gh_user("maint", 900)


def merged(repository, forge, number, author=ALICE, merged_by=MAINT, approved_by=("maint",),
           labels=(), merged_at="2026-11-03T10:00:00Z", body=""):
    pull = gh_pull(number, author, merged_by, labels=labels, merged_at=merged_at, body=body)
    forge.pull(REPO, pull, approved_by=list(approved_by))
    return grants.consider(repository, forges.github_patch(pull, REPO, repository.bots),
                           source="webhook")


def pending_balance(login: str) -> int:
    account = LedgerAccount.objects.filter(forge_account__login=login).first()
    return ledger.balance(account)


def test_self_merge_bot_and_unapproved_patches_earn_nothing(db, credits_on, repo, forge):
    credits_on()
    repository, _ = repo(first_grant_needs_approval=False, bots=["renovate"])
    self_merged = merged(repository, forge, 1, merged_by=ALICE, approved_by=("maint",))
    bot = merged(repository, forge, 2, author=gh_user("dependabot[bot]", 49699333, bot=True))
    listed_bot = merged(repository, forge, 3, author=gh_user("renovate", 2740))
    unapproved = merged(repository, forge, 4, approved_by=())
    self_approved = merged(repository, forge, 5, approved_by=("alice",))
    outsider_approved = merged(repository, forge, 6, approved_by=("random-person",))
    reasons = [g.reason for g in (self_merged, bot, listed_bot, unapproved, self_approved,
                                  outsider_approved)]
    assert reasons == ["self-merge: the author merged it", "the author is a bot",
                       "the author is a bot", "no maintainer approved it",
                       "no maintainer approved it", "no maintainer approved it"]
    assert {g.status for g in Grant.objects.all()} == {GrantStatus.REFUSED}
    assert not LedgerTransaction.objects.exists()
    assert pending_balance("alice") == 0
    # A maintainer-approved patch by the same author earns.
    ok = merged(repository, forge, 7)
    assert (ok.status, ok.amount, pending_balance("alice")) == (GrantStatus.GRANTED, 1000,
                                                                1000)


def test_a_first_timer_waits_for_a_maintainer(db, credits_on, repo, forge):
    credits_on()
    repository, _ = repo()  # first_grant_needs_approval by default
    first = merged(repository, forge, 10, labels=("security", "docs"))
    assert (first.status, first.amount) == (GrantStatus.AWAITING_APPROVAL, 3000)
    assert not LedgerTransaction.objects.exists()
    second = merged(repository, forge, 11)  # still nothing approved: waits too
    assert second.status == GrantStatus.AWAITING_APPROVAL
    grants.decide(first.pk, approve=True, by="maint")
    grants.decide(second.pk, approve=False, by="maint")
    assert pending_balance("alice") == 3000
    assert LedgerTransaction.objects.filter(kind="grant").count() == 1
    third = merged(repository, forge, 12)  # no longer a first-timer
    assert third.status == GrantStatus.GRANTED and pending_balance("alice") == 4000
    with pytest.raises(Exception, match="not awaiting approval"):
        grants.decide(first.pk, approve=True, by="maint")


def test_the_monthly_cap_cuts_then_refuses_and_resets_next_month(db, credits_on, repo, forge):
    credits_on()
    repository, _ = repo(first_grant_needs_approval=False, monthly_cap=2500)
    a = merged(repository, forge, 20)
    b = merged(repository, forge, 21)
    c = merged(repository, forge, 22)
    d = merged(repository, forge, 23)
    december = merged(repository, forge, 24, merged_at="2026-12-02T10:00:00Z")
    assert [(g.status, g.amount) for g in (a, b, c, d, december)] == [
        (GrantStatus.GRANTED, 1000), (GrantStatus.GRANTED, 1000), (GrantStatus.GRANTED, 500),
        (GrantStatus.REFUSED, 0), (GrantStatus.GRANTED, 1000)]
    assert c.reason.startswith("cut to the monthly cap") and d.reason == "monthly cap reached"
    assert pending_balance("alice") == 3500
    # Another contributor has a cap of their own.
    bob = merged(repository, forge, 25, author=gh_user("bob", 102))
    assert (bob.status, bob.amount) == (GrantStatus.GRANTED, 1000)
