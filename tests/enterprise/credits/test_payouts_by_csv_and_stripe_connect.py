# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Payouts: the CSV lists who is owed what; Stripe Connect transfers (the local fake,
through the real SDK) pay each connected contributor once even when Stripe's answer is
lost, and the ledger moves payable to payouts only after Stripe answered."""

from __future__ import annotations

import csv
import io

from django.core.management import call_command  # noqa: F401

from potluck.accounts import services as accounts
from potluck_enterprise.credits import ledger, payouts
from potluck_enterprise.credits.models import AccountKind, Payout, PayoutAccount, PayoutState


def owe(user, amount: int, key: str) -> None:
    ledger.post(key, "distribution", [(ledger.system_account(AccountKind.POOL), -amount),
                                      (ledger.payable_account(user.pk), amount)])


def test_export_then_connect_transfers_pay_once(transactional_db, credits_on, stripe_fake,
                                                settings):
    credits_on()
    settings.BILLING_STRIPE_TIMEOUT_SECONDS = 1
    stripe_fake.hang_seconds = 1.5
    ann = accounts.get_or_create_user("ann@example.test")
    ben = accounts.get_or_create_user("ben@example.test")
    ledger.post("revshare:t:1", "revenue_share",
                [(ledger.system_account(AccountKind.REVENUE), -10_000),
                 (ledger.system_account(AccountKind.POOL), 10_000)])
    owe(ann, 4_321, "d:1")
    owe(ben, 999, "d:2")
    rows = list(csv.reader(io.StringIO("\n".join(",".join(r) for r in payouts.export_rows()))))
    assert rows[0][:4] == ["user_id", "email", "stripe_account", "amount_minor"]
    assert [(r[1], r[3], r[4], r[5]) for r in rows[1:]] == [
        ("ann@example.test", "4321", "43.21", "USD"), ("ben@example.test", "999", "9.99", "USD")]

    PayoutAccount.objects.create(user=ann, stripe_account_id="acct_ann")
    stripe_fake.fail_next_transfer("accept_then_timeout")
    assert payouts.pay_out() == []  # Stripe made the transfer but we never heard
    payout = Payout.objects.get(user=ann)
    assert payout.state == PayoutState.PENDING
    assert ledger.balance(ledger.payable_account(ann.pk)) == 4_321
    made = payouts.pay_out()  # the same key again: Stripe returns the same transfer
    assert [p.pk for p in made] == [payout.pk]
    assert stripe_fake.transferred("acct_ann") == 4_321 and len(stripe_fake.transfers) == 1
    assert ledger.balance(ledger.payable_account(ann.pk)) == 0
    assert ledger.balance(ledger.system_account(AccountKind.PAYOUTS)) == 4_321
    assert payouts.pay_out() == []  # nothing owed any more
    # Ben has no connected account: he stays in the export, paid by hand and recorded.
    assert [r.email for r in payouts.owed()] == ["ben@example.test"]
    payouts.record_manual(ben.pk, 999, "bank-transfer-1")
    assert payouts.owed() == [] and stripe_fake.transferred("acct_ann") == 4_321
