# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The issuer's private key never leaves its file: not into a log line (every logger at
DEBUG), an answer or an error page (Django's DEBUG page included), an email, a Stripe
call, or any column of any table, whatever the store did (sign-in, trial, checkout,
renewal, refund, webhooks refused) and however its key was misconfigured."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django.test import Client
from store_helpers import buy, dump_tables, leaks, secret_forms, sign_in

from potluck_enterprise.licensing import format
from potluck_enterprise.store import issuing, signing
from potluck_enterprise.store.models import IssuedLicence


def database_dump() -> str:
    """Every value of every row of every table of the test database, as text."""

    def execute(sql: str) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    tables, text = dump_tables(execute)
    assert "potluck_enterprise_issuedlicence" in tables
    return text


def test_the_key_is_nowhere_but_its_file(store, issuer, client, mailoutbox, caplog,
                                         settings, tmp_path):
    caplog.set_level(logging.DEBUG)
    forms = secret_forms(issuer.private_pem)
    answers: list[str] = []

    def keep(response):
        answers.append(response.content.decode(errors="replace"))
        return response

    sign_in(client, mailoutbox, "buyer@acme.test")
    keep(client.get("/store/"))
    keep(client.post("/store/trial", {"plan": "team", "licensee": "Acme Corp",
                                      "installation_id": "inst_leaktestinstallation"}))
    keep(client.get("/store/account"))
    sub = buy(client, store.fake, plan="team", seats=10,
              installation_id="inst_leaktestinstallation")
    store.fake.renew(sub["id"])
    licence = IssuedLicence.objects.filter(subscription__isnull=False).first()
    keep(client.get(f"/store/licences/{licence.license_id}"))
    keep(client.post("/api/store/renewals", {"license": licence.raw,
                                             "installation_id": "inst_leaktestinstallation"},
                     content_type="application/json"))
    keep(client.post("/api/store/renewals", {"license": "garbage"},
                     content_type="application/json"))
    keep(client.post("/api/store/stripe/webhook", data="{}", content_type="application/json",
                     HTTP_STRIPE_SIGNATURE="t=1,v1=bad"))
    store.fake.refund(sub["id"])
    issuing.deliver_pending()
    assert IssuedLicence.objects.count() == 3

    # Misconfigured keys: a missing file, a file of garbage, another key pair's key.
    other_private, _ = format.generate_key_pair()
    for content in (None, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
                    other_private):
        bad = tmp_path / "bad-key.pem"
        bad.unlink(missing_ok=True)
        if content is not None:
            bad.write_bytes(content)
        settings.STORE_ISSUER_KEY_FILE = str(bad)
        signing.forget()
        colleague = Client()
        sign_in(colleague, mailoutbox, "ops@globex.test")
        refused = keep(colleague.post("/store/trial", {"plan": "team", "licensee": "Globex"}))
        assert refused.status_code == 503, refused.content[:300]
        assert str(bad) in refused.content.decode()

    # An unexpected error while signing, with DEBUG's detailed error page on.
    settings.STORE_ISSUER_KEY_FILE = str(store.key_file)
    signing.forget()
    settings.DEBUG = True

    def broken(licence, private_key):
        raise RuntimeError("signing broke")

    from unittest import mock

    with mock.patch.object(format, "issue", broken):
        debug_client = Client(raise_request_exception=False)
        sign_in(debug_client, mailoutbox, "dev@initech.test")
        page = keep(debug_client.post("/store/trial", {"plan": "team", "licensee": "Initech"}))
    assert page.status_code == 500 and "signing broke" in page.content.decode()
    assert "********************" in page.content.decode()  # sign()'s locals, hidden
    settings.DEBUG = False

    mails = "\n".join(m.body + "".join(str(a[1]) for a in m.attachments) for m in mailoutbox)
    stripe_side = json.dumps([store.fake.checkout_sessions, store.fake.subscriptions,
                              store.fake.invoices, store.fake.webhook_events], default=str)
    places = {"logs": caplog.text, "answers": "\n".join(answers), "database": database_dump(),
              "mail": mails, "stripe": stripe_side}
    # The checks can see: what the store signed is in each place it should be.
    assert licence.raw in places["database"] and licence.raw in places["answers"]
    assert "signing broke" in places["logs"]
    assert leaks(places["answers"] + issuer.private_pem.decode(), forms)
    for where, text in places.items():
        assert leaks(text, forms) == [], f"the private key leaked into {where}"
    assert store.key_file.read_bytes() == issuer.private_pem


def test_a_store_whose_key_does_not_match_the_shipped_public_key_signs_nothing(
        store, client, mailoutbox, monkeypatch):
    _, stranger_public = format.generate_key_pair()
    monkeypatch.setattr(format, "ISSUER_PUBLIC_KEY", stranger_public)
    sign_in(client, mailoutbox, "buyer@acme.test")
    refused = client.post("/store/trial", {"plan": "team", "licensee": "Acme"})
    assert refused.status_code == 503
    assert "is not the private half of the issuer public key" in refused.content.decode()
    assert not IssuedLicence.objects.exists()
    with pytest.raises(signing.StoreUnavailable):
        signing.check()
