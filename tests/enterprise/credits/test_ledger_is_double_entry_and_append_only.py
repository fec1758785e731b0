# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The ledger's rules hold in PostgreSQL itself, whatever code writes: a transaction
whose legs do not sum to zero cannot commit, legs and transactions cannot be updated
or deleted, a balance changes only by legs, and a key posts once."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from potluck_enterprise.credits import ledger
from potluck_enterprise.credits.models import (
    AccountKind,
    LedgerAccount,
    LedgerLeg,
    LedgerTransaction,
)


@pytest.fixture
def accounts(transactional_db):
    issuance = ledger.system_account(AccountKind.ISSUANCE)
    from potluck.accounts import services

    org = services.create_organization("Wallet Org")
    wallet = ledger.org_wallet(org.pk, create=True)
    return issuance, wallet


def test_an_unbalanced_transaction_is_refused_at_commit(accounts):
    issuance, wallet = accounts
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        tx = LedgerTransaction.objects.create(idempotency_key="raw:1", kind="test")
        LedgerLeg.objects.create(transaction=tx, account=wallet, amount=5)
        LedgerLeg.objects.create(transaction=tx, account=issuance, amount=-4)
    assert not LedgerTransaction.objects.filter(idempotency_key="raw:1").exists()
    assert ledger.balance(wallet) == 0
    # Balanced in code, it commits; a commodity mix is refused before the database.
    ledger.post("raw:2", "test", [(issuance, -5), (wallet, 5)])
    assert ledger.balance(wallet) == 5
    pool = ledger.system_account(AccountKind.POOL)
    with pytest.raises(ledger.LedgerError):
        ledger.post("raw:3", "test", [(pool, -5), (wallet, 5)])


def test_a_transaction_without_legs_cannot_commit(accounts):
    with pytest.raises(IntegrityError, match="no legs"), transaction.atomic():
        LedgerTransaction.objects.create(idempotency_key="empty", kind="test")


def test_legs_and_transactions_are_never_updated_or_deleted(accounts):
    issuance, wallet = accounts
    tx, _ = ledger.post("grant:x", "test", [(issuance, -7), (wallet, 7)])
    for attempt in (lambda: LedgerLeg.objects.filter(transaction=tx).update(amount=70),
                    lambda: LedgerLeg.objects.filter(transaction=tx).delete(),
                    lambda: LedgerTransaction.objects.filter(pk=tx.pk).update(memo="edited"),
                    lambda: LedgerAccount.objects.filter(pk=wallet.pk).update(balance=1000),
                    lambda: LedgerAccount.objects.filter(pk=wallet.pk).delete()):
        with pytest.raises(DatabaseError), transaction.atomic():
            attempt()
    with connection.cursor() as cursor, pytest.raises(DatabaseError), transaction.atomic():
        cursor.execute("UPDATE potluck_enterprise_ledgerleg SET amount = amount * 2")
    assert ledger.balance(wallet) == 7
    # A correction is a reversing transaction.
    ledger.post("reverse:grant:x", "test", [(wallet, -7), (issuance, 7)])
    assert ledger.balance(wallet) == 0 and LedgerLeg.objects.count() == 4


def test_a_key_posts_once(accounts):
    issuance, wallet = accounts
    first, made = ledger.post("grant:once", "test", [(issuance, -3), (wallet, 3)])
    again, made_again = ledger.post("grant:once", "test", [(issuance, -3), (wallet, 3)])
    assert made and not made_again and first.pk == again.pk
    assert ledger.balance(wallet) == 3
    assert ledger.verify() == []
