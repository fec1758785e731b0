# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Online renewal over HTTP: an installation that can reach the store shows it the
installed licence and gets the subscription's newer one (verified like any licence, bound
to this installation); nothing newer, nothing installed; a cancelled subscription ends
renewal; a trial is never renewed; a licence the store did not issue is refused.

One database plays both parts: the customer's installation (its id, its installed
licence) and the vendor's store (reached through a live web server)."""

from __future__ import annotations

import pytest
from django.test import Client
from fake_stripe import WEBHOOK_SECRET
from store_helpers import PLANS, buy, sign_in

from potluck_enterprise.licensing import installation, renewal, services
from potluck_enterprise.licensing.models import InstalledLicence
from potluck_enterprise.store import plans
from potluck_enterprise.store.models import IssuedLicence


@pytest.fixture
def both_sides(issuer, issuer_key_file, stripe_fake, settings, live_server):
    settings.STORE_STRIPE_API_KEY = stripe_fake.api_key
    settings.STORE_STRIPE_API_BASE = stripe_fake.url
    settings.STORE_STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.LICENSE_STORE_URL = live_server.url
    stripe_fake.webhook_url = f"{live_server.url}/api/store/stripe/webhook"
    plans.set_plans(PLANS)
    plans.sync_stripe()
    return stripe_fake


@pytest.mark.django_db(transaction=True)
def test_a_bound_licence_is_renewed_online_until_the_subscription_ends(both_sides,
                                                                       mailoutbox):
    fake = both_sides
    ours = installation.current_id()
    buyer = Client()
    sign_in(buyer, mailoutbox, "buyer@acme.test")
    sub = buy(buyer, fake, plan="team", seats=10, installation_id=ours)
    first = IssuedLicence.objects.get()
    services.install(first.raw)
    # A month's licence is within 30 days of its expiry from the start: beat would ask.
    assert renewal.due()

    nothing_yet = renewal.renew()
    assert nothing_yet.status == "current"
    assert InstalledLicence.objects.get(active=True).license_id == first.license_id
    assert not renewal.due()  # asked a moment ago: not again within the hour

    fake.renew(sub["id"])
    second = IssuedLicence.objects.exclude(pk=first.pk).get()
    renewed = renewal.renew()
    assert (renewed.status, renewed.license_id) == ("renewed", second.license_id)
    installed = InstalledLicence.objects.get(active=True)
    assert installed.license_id == second.license_id
    assert installed.expires_at == second.expires_at
    assert services.status().as_dict()["online_renewal"]["outcome"].startswith("renewed: ")

    fake.cancel(sub["id"], at_period_end=False)
    ended = renewal.renew()
    assert ended.status == "ended"
    assert "the subscription was cancelled" in ended.detail
    assert InstalledLicence.objects.get(active=True).license_id == second.license_id


@pytest.mark.django_db(transaction=True)
def test_trials_and_foreign_licences_are_not_renewed(both_sides, issuer, mailoutbox):
    buyer = Client()
    sign_in(buyer, mailoutbox, "ada@initech.test")
    buyer.post("/store/trial", {"plan": "team", "licensee": "Initech",
                                "installation_id": installation.current_id()})
    services.install(IssuedLicence.objects.get().raw)
    trial = renewal.renew()
    assert (trial.status, trial.detail) == (
        "ended", "a trial licence is not renewed: buy a plan in the store")

    # A licence the issuer signed by hand (not sold by this store) is not the store's.
    services.install(issuer.licence(license_id="lic-by-hand", days=400))
    foreign = renewal.renew()
    assert (foreign.status, foreign.detail) == ("failed", "this licence was not issued by "
                                                "this store")
