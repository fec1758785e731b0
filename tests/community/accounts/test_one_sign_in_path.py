# SPDX-License-Identifier: Apache-2.0
"""A password is checked in one place, POST /api/session, which runs the login policies
and the throttle: DRF's browsable-API login and Django's admin login no longer sign
anyone in (issue 19: /api/auth/login/ skipped SSO enforcement)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import authenticate
from django.test import Client
from rest_framework.test import APIClient

from potluck import extensions
from potluck.accounts import services
from potluck.errors import Forbidden

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9137"


class RefuseDomain:
    """An extension's login policy (e.g. SSO enforced for a domain)."""

    def check_password_login(self, email: str) -> None:
        if email.endswith("@acme.test"):
            raise Forbidden("password sign-in is off for acme.test: use SSO")


@pytest.fixture
def refusing_policy() -> Iterator[None]:
    extensions.login_policies.register("test-refuse", RefuseDomain())
    yield
    extensions.login_policies.unregister("test-refuse")


@pytest.fixture
def boss(org):
    """A superuser and staff member of acme.test: the account an attacker wants most."""
    user = services.get_or_create_user("boss@acme.test")
    user.is_staff = user.is_superuser = True
    user.save()
    services.set_password(user, PASSWORD)
    services.add_member(org, "boss@acme.test", "owner")
    return user


def test_the_browsable_api_login_is_gone(boss, refusing_policy):
    client = Client()
    page = client.get("/api/auth/login/")
    posted = client.post("/api/auth/login/", {"username": "boss@acme.test",
                                              "password": PASSWORD})
    assert page.status_code == posted.status_code == 404
    assert client.get("/api/session").json()["authenticated"] is False


def test_the_admin_sends_people_to_the_console_to_sign_in(boss, refusing_policy):
    client = Client()
    admin = client.get("/admin/")
    login_page = client.get("/admin/login/?next=/admin/")
    posted = client.post("/admin/login/", {"username": "boss@acme.test",
                                           "password": PASSWORD, "next": "/admin/"})
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")
    assert login_page.status_code == posted.status_code == 302
    assert login_page["Location"] == posted["Location"] == "/"
    assert client.get("/admin/").status_code == 302  # still not signed in
    assert client.get("/api/session").json()["authenticated"] is False


def test_a_password_checked_anywhere_else_is_refused(boss):
    assert authenticate(username="boss@acme.test", password=PASSWORD) is None
    assert boss.check_password(PASSWORD)  # the password itself is right


def test_the_one_path_runs_the_login_policies(boss, refusing_policy):
    response = APIClient().post("/api/session", {"email": "boss@acme.test",
                                                 "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "password sign-in is off for acme.test: use SSO"}


def test_a_signed_in_staff_member_still_reaches_the_admin(boss):
    client = APIClient()
    signed_in = client.post("/api/session", {"email": "boss@acme.test",
                                             "password": PASSWORD}, format="json")
    assert signed_in.status_code == 200
    assert client.get("/admin/").status_code == 200
