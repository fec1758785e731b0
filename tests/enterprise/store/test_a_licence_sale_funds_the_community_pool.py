# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store and contribution credits together: a licence bought through the store (the
real ``stripe`` SDK against the local Stripe fake, its signed webhooks delivered to the
store's endpoint) puts exactly ``floor(amount x POTLUCK_CREDITS_REVENUE_SHARE)`` minor
units into the community pool, once per sale however often the webhook is replayed or
the sale announced; the ledger stays balanced (``potluck credits ledger --check``).

By design (store/signals.py: "Reversals ... reach receivers of this signal only") a
refund is recorded as a negative sale but does not take the share back out of the pool,
and a sale of nothing posts nothing."""

from __future__ import annotations

from click.testing import CliRunner
from store_helpers import buy, sign_in

from potluck.cli.main import cli
from potluck_enterprise.credits import ledger
from potluck_enterprise.credits.models import AccountKind, LedgerTransaction
from potluck_enterprise.store import sales
from potluck_enterprise.store.models import Sale
from potluck_enterprise.store.signals import licence_sale

SHARE = "0.0333"  # a share that does not divide the prices: the floor matters


def pool() -> int:
    return ledger.balance(ledger.system_account(AccountKind.POOL))


def shared() -> list[tuple[str, int]]:
    return sorted((t.idempotency_key, t.data["share"]) for t in
                  LedgerTransaction.objects.filter(kind="revenue_share"))


def check_ledger() -> None:
    assert ledger.verify() == []
    result = CliRunner().invoke(cli, ["credits", "ledger", "--check"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_a_licence_sale_funds_the_pool_once(store, client, mailoutbox, licensed, settings):
    licensed(features=["billing", "credits"])
    settings.CREDITS_REVENUE_SHARE = SHARE
    assert pool() == 0

    sign_in(client, mailoutbox, "buyer@acme.test")
    team = buy(client, store.fake, plan="team", seats=10)  # $99.00 a month
    business = buy(client, store.fake, plan="business", seats=50, term="year")  # $9,990.00
    sold = dict(Sale.objects.values_list("key", "amount"))
    assert sorted(sold.values()) == [9900, 999000]
    assert not Sale.objects.filter(announced_at__isnull=True).exists()
    # floor(9900 x 0.0333) = 329, floor(999000 x 0.0333) = 33266 (integers, by hand)
    assert pool() == 329 + 33266
    assert shared() == sorted((f"revshare:licence_sale:{key}", amount * 333 // 10000)
                              for key, amount in sold.items())
    assert ledger.balance(ledger.system_account(AccountKind.REVENUE)) == -(329 + 33266)
    check_ledger()

    # Stripe delivers every event again (it does, at least once): nothing more.
    for event in list(store.fake.webhook_events):
        assert store.fake.deliver(event) == 200
    assert sales.announce_pending() == 0
    # A sale announced again (a process died after posting, before marking it): the
    # sink is idempotent by (source, reference).
    Sale.objects.update(announced_at=None)
    assert sales.announce_pending() == 2
    assert pool() == 329 + 33266
    assert LedgerTransaction.objects.filter(kind="revenue_share").count() == 2

    # A renewal is a new sale: its own share.
    store.fake.renew(team["id"])
    assert Sale.objects.filter(kind="sale").count() == 3
    assert pool() == 329 + 33266 + 329

    # A refund is recorded and announced, but the share stays in the pool (design).
    store.fake.refund(business["id"])
    refund = Sale.objects.get(kind="refund")
    assert refund.amount == -999000 and refund.announced_at is not None
    assert pool() == 329 + 33266 + 329
    # A sale of nothing posts nothing.
    sales.record("invoice:in_zero", "sale", account=refund.account, amount=0,
                 currency="USD", occurred_at=refund.occurred_at)
    assert sales.announce_pending() == 1
    assert pool() == 329 + 33266 + 329
    assert LedgerTransaction.objects.filter(kind="revenue_share").count() == 3
    check_ledger()


def test_a_failing_revenue_sink_never_fails_the_webhook(store, client, mailoutbox, licensed,
                                                       settings):
    """The sale is applied when its event commits; announcing it comes after. A sink that
    fails (here: a share the credits module cannot read) leaves the sale for the periodic
    housekeeping, and Stripe still gets its 200 (the store's sink asserts it), instead of
    a 500 for an event already applied."""
    licensed(features=["billing", "credits"])
    settings.CREDITS_REVENUE_SHARE = "ten percent"
    sign_in(client, mailoutbox, "buyer@acme.test")
    buy(client, store.fake, plan="team", seats=10)
    sale = Sale.objects.get()
    assert sale.announced_at is None and pool() == 0
    settings.CREDITS_REVENUE_SHARE = "0.5"
    assert sales.announce_pending() == 1  # what the housekeeping task does each minute
    assert pool() == 9900 // 2
    check_ledger()


def test_a_sale_that_cannot_be_announced_does_not_hold_back_later_ones(
        store, client, mailoutbox, licensed, settings):
    """Sales are announced oldest first; one whose receiver keeps failing is retried on
    every pass, and the sales after it are announced meanwhile."""
    licensed(features=["billing", "credits"])
    settings.CREDITS_REVENUE_SHARE = "0.5"
    sign_in(client, mailoutbox, "buyer@acme.test")
    Sale.objects.all().delete()
    stuck: set[str] = set()

    def refuse(sender, sale, **kwargs):
        if sale.key in stuck:
            raise RuntimeError("the receiver is down")

    licence_sale.connect(refuse, dispatch_uid="test-refuse")
    try:
        buy(client, store.fake, plan="team", seats=10)  # announced at once
        first = Sale.objects.get()
        Sale.objects.filter(pk=first.pk).update(announced_at=None)
        stuck.add(first.key)
        buy(client, store.fake, plan="team", seats=10)  # a later sale
        later = Sale.objects.exclude(pk=first.pk).get()
        assert later.announced_at is not None  # the webhook's pass skipped the stuck one
        assert Sale.objects.get(pk=first.pk).announced_at is None
        assert sales.announce_pending() == 0  # still failing: retried, still pending
        stuck.clear()
        assert sales.announce_pending() == 1
    finally:
        licence_sale.disconnect(dispatch_uid="test-refuse")
    assert pool() == 9900 // 2 * 2
    check_ledger()
