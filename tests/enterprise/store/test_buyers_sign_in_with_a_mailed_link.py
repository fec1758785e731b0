# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Buyers sign in with a link mailed to them: the token is kept only as a hash, works once
and briefly, opening the link (as a mail scanner does) uses nothing, the address's mail
is throttled, and the link never returns anywhere but the store."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.test import Client
from store_helpers import mailed_token

from potluck_enterprise.store import accounts
from potluck_enterprise.store.models import SignInLink, StoreAccount


def test_a_link_signs_in_once(store, client, mailoutbox):
    asked = client.post("/store/sign-in", {"email": " Ada@Acme.TEST ", "next": "/store/account"})
    assert asked.status_code == 200 and b"Check your email" in asked.content
    token = mailed_token(mailoutbox, "ada@acme.test")
    assert mailoutbox[-1].body.count("https://store.potluck.test/store/sign-in/") == 1
    link = SignInLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(SignInLink.objects.values()))

    # Opening the link only asks; a second opening still asks.
    for _ in range(2):
        opened = client.get(f"/store/sign-in/{token}")
        assert opened.status_code == 200 and b"ada@acme.test" in opened.content
    assert not StoreAccount.objects.exists()
    assert client.get("/store/account").status_code == 302  # not signed in yet

    confirmed = client.post(f"/store/sign-in/{token}")
    assert (confirmed.status_code, confirmed["Location"]) == (302, "/store/account")
    assert client.get("/store/account").status_code == 200
    assert StoreAccount.objects.get().email == "ada@acme.test"

    again = Client().post(f"/store/sign-in/{token}")
    assert again.status_code == 400 and b"already used" in again.content


def test_an_expired_or_unknown_link_is_refused(store, client, mailoutbox, caplog):
    client.post("/store/sign-in", {"email": "ada@acme.test"})
    token = mailed_token(mailoutbox, "ada@acme.test")
    SignInLink.objects.update(expires_at=SignInLink.objects.get().created_at
                              - timedelta(seconds=1))
    expired = client.post(f"/store/sign-in/{token}")
    assert expired.status_code == 400 and b"expired" in expired.content
    assert client.post("/store/sign-in/not-a-token").status_code == 400
    assert not StoreAccount.objects.exists()
    # Django's request log names the path, not the token.
    assert "Bad Request: /store/sign-in/[token]" in caplog.text
    assert token not in caplog.text


def test_access_logs_never_show_a_sign_in_token():
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/store/sign-in/Abc_def-123456789",
                                "1.1", 200), None)
    assert logging.getLogger("uvicorn.access").filter(record)
    assert record.getMessage() == ('127.0.0.1:5000 - "GET /store/sign-in/[token] HTTP/1.1" '
                                   '200')


def test_links_are_throttled_per_address(store, client, mailoutbox, settings):
    settings.STORE_SIGN_IN_LINKS_PER_HOUR = 2
    for _ in range(2):
        assert client.post("/store/sign-in", {"email": "ada@acme.test"}).status_code == 200
    third = client.post("/store/sign-in", {"email": "ada@acme.test"})
    assert third.status_code == 429 and b"too many sign-in links" in third.content
    assert len(mailoutbox) == 2
    assert client.post("/store/sign-in", {"email": "not-an-address"}).status_code == 400


def test_the_link_returns_only_into_the_store():
    assert accounts.safe_next("/store/account?installation_id=inst_x") == \
        "/store/account?installation_id=inst_x"
    for hostile in ("https://evil.test/", "//evil.test/store/", "/api/license",
                    "/store/..//evil", "/store/\\evil"):
        assert accounts.safe_next(hostile) == "/store/"


def test_where_the_store_is_off_it_does_not_exist(db, client, settings):
    settings.STORE_ISSUER_KEY_FILE = ""
    for path in ("/store/", "/store/account", "/store/licences/lic-1"):
        assert client.get(path).status_code == 404
    assert client.post("/store/sign-in", {"email": "ada@acme.test"}).status_code == 404
    assert client.post("/api/store/stripe/webhook", data="{}",
                       content_type="application/json").status_code == 404
    assert client.post("/api/store/renewals", {"license": "x"},
                       content_type="application/json").status_code == 404
