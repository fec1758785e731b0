# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Stripe delivers at least once, in no promised order, sometimes late, sometimes twice at
the same moment: whatever the deliveries, each licence is issued once, an older state
never overwrites a newer one, and a period is never shortened."""

from __future__ import annotations

import threading

import pytest
from fake_stripe import WEBHOOK_SECRET
from store_helpers import PLANS, buy, price_of, sign_in

from potluck_enterprise.store.models import IssuedLicence, StoreEvent, StoreSubscription


def _deliver_all(fake, events):
    return [fake.deliver(e) for e in events]


def test_reordered_duplicated_and_late_deliveries_issue_each_licence_once(store, client,
                                                                          mailoutbox):
    sign_in(client, mailoutbox, "buyer@acme.test")
    store.fake.hold_webhooks = True
    sub = buy(client, store.fake, plan="team", seats=10)
    checkout_events = store.fake.release()
    assert [e["type"] for e in checkout_events] == [
        "checkout.session.completed", "customer.subscription.created", "invoice.paid"]

    # The invoice first, then the checkout: one licence; the same deliveries again: none.
    _deliver_all(store.fake, reversed(checkout_events))
    assert IssuedLicence.objects.count() == 1
    first = IssuedLicence.objects.get()
    _deliver_all(store.fake, checkout_events)
    assert IssuedLicence.objects.count() == 1
    assert StoreEvent.objects.count() == 3

    # A renewal delivered twice, with its subscription update first.
    store.fake.renew(sub["id"])
    renewal_events = store.fake.release()
    _deliver_all(store.fake, reversed(renewal_events))
    _deliver_all(store.fake, renewal_events)
    renewed = IssuedLicence.objects.exclude(pk=first.pk).get()
    assert renewed.expires_at > first.expires_at

    # The first period's events arrive again, late: the period is not shortened and
    # nothing is issued.
    _deliver_all(store.fake, checkout_events)
    assert IssuedLicence.objects.count() == 2
    assert StoreSubscription.objects.get().paid_through == renewed.expires_at

    # A seat upgrade, and then an older subscription state (the 10-seat one) delivered
    # late: the older state is ignored, the 50-seat licence stays the newest.
    store.fake.hold_webhooks = False
    subscription = StoreSubscription.objects.get()
    client.post(f"/store/subscriptions/{subscription.pk}/change",
                {"price": price_of("team", 50).pk})
    store.fake.flush()
    assert StoreSubscription.objects.get().price.seats == 50
    older_update = next(e for e in renewal_events
                        if e["type"] == "customer.subscription.updated")
    store.fake.deliver(older_update)
    assert StoreSubscription.objects.get().price.seats == 50
    assert list(IssuedLicence.objects.order_by("issued_at", "expires_at")
                .values_list("reason", "seats")) == [
        ("purchase", 10), ("renewal", 10), ("change", 50)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_issue_once(issuer, issuer_key_file, stripe_fake, settings,
                                          live_server, mailoutbox):
    """The same events posted at once from several threads to a live server: the event id
    and the subscription's row lock leave one licence."""
    from django.test import Client

    from potluck_enterprise.store import plans

    settings.STORE_STRIPE_API_KEY = stripe_fake.api_key
    settings.STORE_STRIPE_API_BASE = stripe_fake.url
    settings.STORE_STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    stripe_fake.webhook_url = f"{live_server.url}/api/store/stripe/webhook"
    plans.set_plans(PLANS)
    plans.sync_stripe()
    buyer = Client()
    sign_in(buyer, mailoutbox, "buyer@acme.test")
    stripe_fake.hold_webhooks = True
    buy(buyer, stripe_fake, plan="business", seats=50)
    events = stripe_fake.release()
    workers = [threading.Thread(target=_deliver_all, args=(stripe_fake, order))
               for order in (events, list(reversed(events)), events, list(reversed(events)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(status == 200 for status in stripe_fake.delivery_answers), \
        stripe_fake.delivery_answers
    assert len(stripe_fake.delivery_answers) == 12
    assert IssuedLicence.objects.count() == 1
    assert StoreEvent.objects.count() == 3


def test_a_delivery_whose_effect_cannot_reach_stripe_is_stored_only_when_applied(
        store, client, mailoutbox):
    """checkout.session.completed alone needs Stripe (the paid period's end): when Stripe
    cannot be reached the delivery answers 503 and nothing is stored, so Stripe's retry
    applies it."""
    sign_in(client, mailoutbox, "buyer@acme.test")
    store.fake.hold_webhooks = True
    buy(client, store.fake, plan="team", seats=10)
    completed = next(e for e in store.fake.release()
                     if e["type"] == "checkout.session.completed")
    real_key, store.fake.api_key = store.fake.api_key, "sk_test_rotated"  # Stripe says 401
    statuses = []
    store.fake.webhook_sink = lambda payload, header: statuses.append(
        store.client.post("/api/store/stripe/webhook", data=payload,
                          content_type="application/json",
                          HTTP_STRIPE_SIGNATURE=header).status_code) or statuses[-1]
    store.fake.deliver(completed)
    assert statuses == [503]
    assert not StoreEvent.objects.exists() and not IssuedLicence.objects.exists()
    store.fake.api_key = real_key
    store.fake.deliver(completed)
    assert statuses == [503, 200]
    assert IssuedLicence.objects.count() == 1
