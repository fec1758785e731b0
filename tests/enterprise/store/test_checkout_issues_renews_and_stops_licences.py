# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A paid subscription's licences: the real ``stripe`` SDK makes a Checkout session at the
local Stripe fake, the fake's signed webhooks (the SDK's own signing helper) drive the
store. Checkout issues a licence for the paid period plus the plan's grace days, bound to
the installation, downloadable from the buyer's account (and no other) and mailed;
``invoice.paid`` for the next period renews it; a seat change re-issues; a cancellation
stops renewal (the last licence runs to its expiry); the sales reach the revenue-share
hook once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from store_helpers import buy, price_of, sign_in

from potluck_enterprise.licensing import format
from potluck_enterprise.store import issuing
from potluck_enterprise.store.models import IssuedLicence, Sale, StoreSubscription
from potluck_enterprise.store.signals import licence_sale

INSTALLATION = "inst_customerinstallation01"


@pytest.fixture
def sales_heard():
    heard = []
    licence_sale.connect(lambda sale, **_: heard.append(sale), weak=False,
                         dispatch_uid="test-revenue-share")
    yield heard
    licence_sale.disconnect(dispatch_uid="test-revenue-share")


def _verified(row: IssuedLicence, installation: str = INSTALLATION):
    return format.verify(row.raw, now=datetime.now(UTC), installation_id=installation)


def test_checkout_then_renewal_then_cancellation(store, client, mailoutbox, sales_heard):
    sign_in(client, mailoutbox, "buyer@acme.test")
    sub = buy(client, store.fake, plan="team", seats=10, installation_id=INSTALLATION)
    session = next(iter(store.fake.checkout_sessions.values()))
    assert session["mode"] == "subscription"
    assert session["customer_email"] == "buyer@acme.test"
    assert session["subscription_data"]["metadata"]["installation_id"] == INSTALLATION

    # Checkout: one licence, for the paid period, bound, with the plan's grace days.
    first = IssuedLicence.objects.get()
    period_end = datetime.fromtimestamp(sub["items"]["data"][0]["current_period_end"], UTC)
    licence = _verified(first)
    assert (first.reason, licence.seats, licence.features) == ("purchase", 10,
                                                               ("sso", "billing"))
    assert licence.expires_at == period_end and licence.grace_days == 14
    assert licence.installation_id == INSTALLATION and licence.licensee == "Acme Corp"
    with pytest.raises(format.LicenceError) as elsewhere:
        format.verify(first.raw, now=datetime.now(UTC), installation_id="inst_someoneelse000")
    assert elsewhere.value.reason is format.Reason.WRONG_INSTALLATION

    # Downloadable from the buyer's account, and from no other account.
    page = client.get("/store/account")
    assert first.license_id in page.content.decode()
    download = client.get(f"/store/licences/{first.license_id}")
    assert download.status_code == 200 and download.content.decode() == first.raw
    assert download["Content-Disposition"] == (
        f'attachment; filename="potluck-{first.license_id}.license"')
    from django.test import Client

    other = Client()
    sign_in(other, mailoutbox, "someone@globex.test")
    assert other.get(f"/store/licences/{first.license_id}").status_code == 404

    # Mailed once, with the file attached.
    assert issuing.deliver_pending() == 1 and issuing.deliver_pending() == 0
    mail = mailoutbox[-1]
    assert mail.to == ["buyer@acme.test"]
    assert mail.attachments[0][:2] == (first.filename, first.raw)

    # The next period is paid: a renewal licence until its end.
    renewal_invoice = store.fake.renew(sub["id"])
    second = IssuedLicence.objects.exclude(pk=first.pk).get()
    assert second.reason == "renewal"
    assert _verified(second).expires_at == datetime.fromtimestamp(
        renewal_invoice["lines"]["data"][0]["period"]["end"], UTC)
    assert second.expires_at - first.expires_at == timedelta(days=30)

    # More seats: Stripe prorates and invoices; the store re-issues once, same expiry.
    assert client.post(f"/store/subscriptions/{StoreSubscription.objects.get().pk}/change",
                       {"price": price_of("team", 50).pk}).status_code == 302
    store.fake.flush()  # the events of the SDK's call, delivered on this thread
    third = IssuedLicence.objects.exclude(pk__in=[first.pk, second.pk]).get()
    assert (third.reason, third.seats, third.expires_at) == ("change", 50, second.expires_at)

    # Cancellation: nothing more is issued, even if a paid invoice still came.
    assert client.post(
        f"/store/subscriptions/{StoreSubscription.objects.get().pk}/cancel").status_code == 302
    store.fake.flush()
    assert StoreSubscription.objects.get().renews is False
    store.fake.cancel(sub["id"], at_period_end=False)
    stray = store.fake.renew(sub["id"])
    assert stray["status"] == "paid"
    assert IssuedLicence.objects.count() == 3
    subscription = StoreSubscription.objects.get()
    assert (subscription.status, subscription.renewal_stopped) == ("canceled", "canceled")
    # The last licence still verifies and runs to its expiry.
    assert _verified(third).expires_at == second.expires_at

    # Each paid invoice is one sale for the revenue share, announced once.
    assert [s.kind for s in sales_heard] == ["sale"] * 4
    assert [s.amount for s in sales_heard] == [9900, 9900, 30000, 39900]
    assert {s.key for s in sales_heard} == set(Sale.objects.values_list("key", flat=True))
    assert all(s.currency == "USD" and s.plan == "team" for s in sales_heard)
    assert not Sale.objects.filter(announced_at__isnull=True).exists()


def test_a_refund_and_a_chargeback_stop_renewal_and_are_recorded(store, client, mailoutbox,
                                                                  sales_heard):
    from potluck_enterprise.store.models import Reversal

    sign_in(client, mailoutbox, "buyer@acme.test")
    refunded = buy(client, store.fake, plan="team", seats=10)
    disputed = buy(client, store.fake, plan="business", seats=50, term="year")
    assert IssuedLicence.objects.count() == 2
    unbound = IssuedLicence.objects.get(subscription__stripe_subscription_id=refunded["id"])
    assert _verified(unbound, "inst_anyinstallation000").installation_id is None

    store.fake.refund(refunded["id"])
    store.fake.dispute(disputed["id"])
    reversals = {r.kind: r for r in Reversal.objects.all()}
    assert reversals["refund"].amount == 9900 and reversals["dispute"].amount == 999000
    subs = {s.stripe_subscription_id: s for s in StoreSubscription.objects.all()}
    assert subs[refunded["id"]].renewal_stopped == "refund"
    assert subs[disputed["id"]].renewal_stopped == "dispute"
    # Stopped at Stripe too: no charge comes again.
    assert store.fake.subscriptions[refunded["id"]]["status"] == "canceled"
    assert store.fake.subscriptions[disputed["id"]]["status"] == "canceled"
    # A paid period arriving anyway issues nothing (the money is recorded all the same).
    store.fake.renew(refunded["id"])
    assert IssuedLicence.objects.count() == 2
    assert [(s.kind, s.amount) for s in sales_heard] == [
        ("sale", 9900), ("sale", 999000), ("refund", -9900), ("dispute", -999000),
        ("sale", 9900)]
