# SPDX-License-Identifier: Apache-2.0
"""The console's password sign-in: /api/session and /api/session/providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from potluck import extensions
from potluck.accounts import services
from potluck.errors import Forbidden

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9137"


@pytest.fixture
def alice(org):
    user = services.get_or_create_user("alice@acme.test")
    services.set_password(user, PASSWORD)
    services.add_member(org, "alice@acme.test", "admin")
    return user


def _browser() -> APIClient:
    """A client that enforces CSRF like a browser session does."""
    return APIClient(enforce_csrf_checks=True)


def _csrf(client: APIClient) -> str:
    response = client.get("/api/session")
    assert response.status_code == 200
    return response.cookies["csrftoken"].value


def _sign_in(client: APIClient, **body: str):
    return client.post("/api/session", body, format="json", HTTP_X_CSRFTOKEN=_csrf(client))


def test_get_says_nobody_is_signed_in_and_sets_the_csrf_cookie():
    client = _browser()

    response = client.get("/api/session")

    assert response.status_code == 200
    assert response.json() == {"authenticated": False, "user": None, "organizations": [],
                               "logout_url": "/api/session"}
    assert response.cookies["csrftoken"].value


def test_signing_in_with_email_and_password_starts_a_session_with_orgs_and_roles(alice, org,
                                                                                other_org):
    services.add_member(other_org, "alice@acme.test", "viewer")
    client = _browser()

    response = _sign_in(client, email="Alice@Acme.test", password=PASSWORD)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["authenticated"] is True
    assert body["user"]["email"] == "alice@acme.test"
    assert [(o["slug"], o["role"]) for o in body["organizations"]] == [
        ("acme", "admin"), ("globex", "viewer")]
    assert client.get("/api/session").json()["user"]["email"] == "alice@acme.test"
    assert client.get("/api/me").json()["role"] == "admin"  # the session works for the API


def test_signing_in_with_a_username_works_too(alice):
    response = _sign_in(_browser(), username="alice@acme.test", password=PASSWORD)

    assert response.status_code == 200
    assert response.json()["authenticated"] is True


def test_sign_in_without_the_csrf_token_is_refused(alice):
    client = _browser()
    client.get("/api/session")

    response = client.post("/api/session", {"email": "alice@acme.test", "password": PASSWORD},
                           format="json")

    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")
    assert client.get("/api/session").json()["authenticated"] is False


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(alice):
    wrong = _sign_in(_browser(), email="alice@acme.test", password="not-the-password")
    unknown = _sign_in(_browser(), email="nobody@acme.test", password=PASSWORD)

    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json() == {"non_field_errors": ["invalid email or password"]}


def test_an_inactive_user_cannot_sign_in(alice):
    alice.is_active = False
    alice.save()

    response = _sign_in(_browser(), email="alice@acme.test", password=PASSWORD)

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["invalid email or password"]}


@pytest.mark.parametrize(("body", "field"), [
    ({"password": PASSWORD}, "email"),
    ({"email": "alice@acme.test"}, "password"),
])
def test_a_sign_in_missing_a_field_names_it(alice, body, field):
    response = _sign_in(_browser(), **body)

    assert response.status_code == 400
    assert field in response.json()


def test_signing_out_ends_the_session(alice):
    client = _browser()
    _sign_in(client, email="alice@acme.test", password=PASSWORD)

    refused = client.delete("/api/session")  # a signed-in session needs the CSRF token
    assert refused.status_code == 403
    response = client.delete("/api/session", HTTP_X_CSRFTOKEN=_csrf(client))

    assert response.status_code == 204
    assert client.get("/api/session").json()["authenticated"] is False


class RefuseDomain:
    """An extension's login policy, registered through the public hook."""

    def check_password_login(self, email: str) -> None:
        if email.endswith("@acme.test"):
            raise Forbidden("password sign-in is off for acme.test: use SSO at /sso/acme")


@pytest.fixture
def refusing_policy() -> Iterator[None]:
    extensions.login_policies.register("test-refuse", RefuseDomain())
    yield
    extensions.login_policies.unregister("test-refuse")


def test_a_login_policy_refuses_before_the_password_is_checked(alice, refusing_policy):
    for password in (PASSWORD, "not-the-password"):
        response = _sign_in(_browser(), email="alice@acme.test", password=password)
        assert response.status_code == 403
        assert response.json() == {
            "detail": "password sign-in is off for acme.test: use SSO at /sso/acme"}
    by_username = _sign_in(_browser(), username="alice@acme.test", password=PASSWORD)
    assert by_username.status_code == 403


def test_providers_lists_what_extensions_offer_for_the_email():
    def providers(email: str | None) -> list[extensions.LoginProvider]:
        if email and email.endswith("@acme.test"):
            return [extensions.LoginProvider("sso:acme", "Acme SSO", "/sso/acme/start")]
        return []

    extensions.login_providers.register("test-providers", providers)
    try:
        client = APIClient()
        found = client.get("/api/session/providers", {"email": "bob@acme.test"})
        none = client.get("/api/session/providers", {"email": "bob@else.test"})
    finally:
        extensions.login_providers.unregister("test-providers")

    assert found.status_code == 200
    assert found.json() == {"providers": [
        {"key": "sso:acme", "title": "Acme SSO", "start_url": "/sso/acme/start"}]}
    assert none.json() == {"providers": []}
