# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""1,000 debits and grants on one wallet at once, from 16 threads each with its own
PostgreSQL connection, with one in ten repeated under its key (a retry): afterwards the
wallet's balance equals the sum of its legs and the sum of the distinct operations,
with nothing lost and nothing doubled."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from potluck.accounts import services as accounts
from potluck_enterprise.credits import ledger
from potluck_enterprise.credits.models import AccountKind, LedgerLeg, LedgerTransaction

OPERATIONS = 1000
THREADS = 16


def test_a_thousand_concurrent_operations_on_one_wallet(transactional_db, credits_on):
    credits_on()
    org = accounts.create_organization("Busy")
    wallet = ledger.org_wallet(org.pk, create=True)
    issuance = ledger.system_account(AccountKind.ISSUANCE)
    usage = ledger.system_account(AccountKind.USAGE)
    rng = random.Random(15)
    ops = []
    for i in range(OPERATIONS):
        amount = rng.randint(1, 500)
        ops.append((f"grant:c{i}", [(issuance, -amount), (wallet, amount)], amount)
                   if rng.random() < 0.5 else
                   (f"spend:c{i}", [(wallet, -amount), (usage, amount)], -amount))
    replays = rng.sample(ops, OPERATIONS // 10)
    work = ops + replays
    rng.shuffle(work)
    made: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def run(chunk):
        start.wait()
        try:
            for key, legs, _ in chunk:
                _, first = ledger.post(key, "test", legs)
                with lock:
                    made.append(first)
        finally:
            connection.close()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(run, [work[i::THREADS] for i in range(THREADS)]))

    assert len(made) == len(work) and made.count(True) == OPERATIONS
    expected = sum(delta for _, _, delta in ops)
    wallet.refresh_from_db()
    legs = sum(LedgerLeg.objects.filter(account=wallet).values_list("amount", flat=True))
    assert wallet.balance == legs == expected
    assert LedgerTransaction.objects.filter(kind="test").count() == OPERATIONS
    assert ledger.verify() == []
