# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The community pool is distributed to the last minor unit: 7 contributors with awkward
proportions get largest-remainder shares that sum exactly to the pool (checked against
an independent computation with fractions); a per-person cap keeps its excess in the
pool, which is carried with the residue to the next period; a period is distributed
once."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from django.utils import timezone

from potluck.accounts import services as accounts
from potluck_enterprise.credits import forges, identity, ledger, revenue
from potluck_enterprise.credits.models import AccountKind, Distribution

WEIGHTS = [1, 2, 3, 5, 7, 11, 1_000_003]  # seven people, nothing divides evenly
POOL = 1_000_000_007


def hamilton(pool: int, weights: list[int]) -> list[int]:
    """Largest remainder, computed apart with Fractions."""
    total = sum(weights)
    quotas = [Fraction(pool * w, total) for w in weights]
    shares = [q.numerator // q.denominator for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - shares[i]), -weights[i], i))
    for i in order[:pool - sum(shares)]:
        shares[i] += 1
    return shares


def test_allocation_is_exact_and_largest_remainder():
    allocation = revenue.allocate(POOL, dict(enumerate(WEIGHTS)))
    assert allocation.total == POOL
    assert [allocation.shares.get(i, 0) for i in range(7)] == hamilton(POOL, WEIGHTS)
    small = revenue.allocate(10, {1: 1, 2: 1, 3: 1})  # 3.33 each: one gets the extra unit
    assert sorted(small.shares.values()) == [3, 3, 4] and small.total == 10
    capped = revenue.allocate(POOL, dict(enumerate(WEIGHTS)), cap=1_000_000)
    assert capped.shares[6] == 1_000_000 and capped.capped == {6}
    assert capped.total == POOL - (hamilton(POOL, WEIGHTS)[6] - 1_000_000)
    assert revenue.allocate(100, {}).total == 0


def seven_contributors():
    users = []
    for i, credits in enumerate(WEIGHTS):
        user = accounts.get_or_create_user(f"dev{i}@example.test")
        identity.link(user, "github", forges.Person(str(500 + i), f"dev{i}"), how="operator")
        wallet = ledger.contributor_wallet(user.pk)
        ledger.post(f"vest:test{i}", "vest", [(ledger.system_account(AccountKind.ISSUANCE),
                                                -credits), (wallet, credits)])
        users.append(user)
    return users


def test_a_period_distributes_the_pool_to_the_minor_unit(db, credits_on, settings):
    credits_on()
    settings.CREDITS_REVENUE_SHARE = "0.1"
    users = seven_contributors()
    revenue.post_revenue_share("invoice", "in_big", POOL * 10, "USD")
    pool = ledger.system_account(AccountKind.POOL)
    assert ledger.balance(pool) == POOL
    today = timezone.localdate()
    dist = revenue.distribute(today, allow_open=True)
    shares = {s.user_id: s.amount for s in dist.shares.all()}
    assert [shares[u.pk] for u in users] == hamilton(POOL, WEIGHTS)
    assert dist.distributed == POOL and dist.residue == 0 and ledger.balance(pool) == 0
    assert sum(ledger.balance(ledger.payable_account(u.pk)) for u in users) == POOL
    assert revenue.distribute(today, allow_open=True).pk == dist.pk  # once
    statement = revenue.statement(users[3].pk)
    assert statement["owed"] == hamilton(POOL, WEIGHTS)[3]
    assert statement["periods"][0]["credits_vested"] == 5


def test_the_cap_excess_and_the_residue_carry_to_the_next_period(db, credits_on, settings):
    credits_on()
    settings.CREDITS_PAYOUT_CAP = 1_000_000
    settings.CREDITS_DISTRIBUTION_PERIOD = "month"
    seven_contributors()
    ledger.post("revshare:test:1", "revenue_share",
                [(ledger.system_account(AccountKind.REVENUE), -POOL),
                 (ledger.system_account(AccountKind.POOL), POOL)])
    dist = revenue.distribute(timezone.localdate(), allow_open=True)
    expected_excess = hamilton(POOL, WEIGHTS)[6] - 1_000_000
    assert dist.residue == expected_excess and dist.distributed + dist.residue == POOL
    assert ledger.balance(ledger.system_account(AccountKind.POOL)) == expected_excess
    # Nobody vests next period: the whole residue waits for the one after.
    _, end = revenue.period_of(timezone.localdate())
    nothing = revenue.distribute(end + timedelta(days=1), allow_open=True)
    assert (nothing.distributed, nothing.residue) == (0, expected_excess)
    assert Distribution.objects.count() == 2


def test_a_period_not_over_is_refused(db, credits_on):
    credits_on()
    with pytest.raises(Exception, match="not over yet"):
        revenue.distribute(timezone.localdate())
    assert not Distribution.objects.exists()
    last_month = revenue.period_of(timezone.localdate())[0] - timedelta(days=1)
    assert revenue.distribute(last_month).distributed == 0  # over: allowed (empty pool)
