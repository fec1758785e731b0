# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A free trial: no card and no Stripe call, the plan's trial seats for its trial days,
no grace; one per email domain (whoever asks, however); none for public mail providers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.test import Client
from store_helpers import sign_in

from potluck_enterprise.licensing import format
from potluck_enterprise.store.models import IssuedLicence, Trial

INSTALLATION = "inst_trialinstallation0001"


def test_a_trial_needs_no_card_and_each_domain_gets_one(store, client, mailoutbox):
    sign_in(client, mailoutbox, "ada@acme.test")
    started = datetime.now(UTC)
    answer = client.post("/store/trial", {"plan": "team", "licensee": "Acme Corp",
                                          "installation_id": INSTALLATION})
    assert answer.status_code == 302
    row = IssuedLicence.objects.get()
    assert answer["Location"] == f"/store/account?issued={row.license_id}"
    licence = format.verify(row.raw, now=datetime.now(UTC), installation_id=INSTALLATION)
    assert (row.reason, licence.seats, licence.grace_days) == ("trial", 5, 0)
    assert licence.features == ("sso", "billing") and licence.licensee == "Acme Corp"
    assert timedelta(days=14) - timedelta(minutes=1) <= licence.expires_at - started \
        <= timedelta(days=14)
    assert client.get(f"/store/licences/{row.license_id}").content.decode() == row.raw
    # No card, no Stripe: the fake saw no customer, session or subscription.
    assert not store.fake.customers and not store.fake.checkout_sessions
    assert not store.fake.subscriptions

    colleague = Client()
    sign_in(colleague, mailoutbox, "grace@ACME.test")
    refused = colleague.post("/store/trial", {"plan": "team", "licensee": "Acme",
                                              "installation_id": ""})
    assert refused.status_code == 409
    assert "acme.test already had its free trial on " in refused.content.decode()
    assert IssuedLicence.objects.count() == 1 and Trial.objects.count() == 1


def test_public_mail_domains_and_plans_without_a_trial_get_none(store, client, mailoutbox):
    sign_in(client, mailoutbox, "someone@gmail.com")
    refused = client.post("/store/trial", {"plan": "team", "licensee": "Me"})
    assert refused.status_code == 400
    assert "gmail.com is a public mail provider" in refused.content.decode()

    other = Client()
    sign_in(other, mailoutbox, "ops@initech.test")
    no_trial = other.post("/store/trial", {"plan": "business", "licensee": "Initech"})
    assert no_trial.status_code == 400
    assert "there is no free trial of &#x27;business&#x27;" in no_trial.content.decode()
    malformed = other.post("/store/trial", {"plan": "team", "licensee": "Initech",
                                            "installation_id": "not an id"})
    assert malformed.status_code == 400
    assert "not an installation id" in malformed.content.decode()
    assert not IssuedLicence.objects.exists() and not Trial.objects.exists()


def test_without_signing_in_the_store_sends_you_to_sign_in(store, client):
    answer = client.post("/store/trial", {"plan": "team", "licensee": "Acme",
                                          "installation_id": "inst_carriedthrough0000"})
    assert answer.status_code == 302
    assert answer["Location"] == ("/store/?next=%2Fstore%2Faccount"
                                  "&installation_id=inst_carriedthrough0000")
    page = client.get("/store/account?x=1")
    assert page["Location"] == "/store/?next=%2Fstore%2Faccount%3Fx%3D1"
    assert not IssuedLicence.objects.exists()
