# SPDX-License-Identifier: Apache-2.0
"""Membership by consent (issue 19): an org admin could enrol any existing person
(another org's owner, the installation's superuser) without their consent, and any new
email created an installation-wide account. Now an admin invites; the person accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from potluck import extensions
from potluck.accounts import services
from potluck.accounts.models import Invitation, Membership, User
from potluck.errors import Forbidden

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9137"


@pytest.fixture
def admin(org, user_client):
    return user_client(org, "admin", email="admin@acme.test")


def _token_of(email: str) -> str:
    """The token in the last invitation mailed to ``email``."""
    sent = [m for m in mail.outbox if m.to == [email]]
    assert sent, f"no invitation mailed to {email}"
    return re.search(r"/invitations\?token=([\w-]+)", sent[-1].body).group(1)


def _as(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_admin_cannot_enrol_another_orgs_owner_or_the_superuser(org, other_org, admin):
    superuser, _ = services.bootstrap_admin()  # the installation's operator account
    for email in ("owner@globex.test", superuser.email):
        response = admin.post("/api/members", {"email": email, "role": "admin"},
                              format="json")
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "pending"
        assert response.json()["email"] == email
    assert not Membership.objects.filter(organization=org,
                                         user__email="owner@globex.test").exists()
    assert not Membership.objects.filter(organization=org, user=superuser).exists()
    listed = {m["email"] for m in admin.get("/api/members").json()["results"]}
    assert "owner@globex.test" not in listed and superuser.email not in listed


def test_a_new_email_creates_no_account_until_the_person_accepts(org, admin):
    response = admin.post("/api/invitations", {"email": "New.Person@Else.test",
                                               "role": "member"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.person@else.test" and body["delivery"] == "sent"
    assert "token" not in body and _token_of("new.person@else.test") not in str(body)
    assert not User.objects.filter(email__iexact="new.person@else.test").exists()

    token = _token_of("new.person@else.test")
    person = APIClient(enforce_csrf_checks=True)
    csrf = person.get("/api/session").cookies["csrftoken"].value
    shown = person.get("/api/invitations/token", {"token": token}).json()
    assert shown["organization"]["slug"] == "acme" and shown["has_account"] is False
    accepted = person.post("/api/invitations/accept", {"token": token, "password": PASSWORD},
                           format="json", HTTP_X_CSRFTOKEN=csrf)

    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["organization"]["slug"] == "acme"
    user = User.objects.get(email="new.person@else.test")
    assert user.check_password(PASSWORD)
    assert Membership.objects.get(organization=org, user=user).role == "member"
    assert person.get("/api/session").json()["user"]["email"] == "new.person@else.test"
    assert Invitation.objects.get(pk=body["id"]).status == "accepted"


def test_an_existing_person_sees_and_accepts_an_invitation_signed_in(org, other_org, admin):
    invited = admin.post("/api/invitations", {"email": "owner@globex.test", "role": "viewer"},
                         format="json").json()
    globex_owner = User.objects.get(email="owner@globex.test")
    them = _as(globex_owner)

    received = them.get("/api/invitations/received").json()["results"]
    accepted = them.post(f"/api/invitations/received/{invited['id']}/accept")

    assert [(r["organization"]["slug"], r["role"]) for r in received] == [("acme", "viewer")]
    assert accepted.status_code == 200, accepted.content
    assert Membership.objects.get(organization=org, user=globex_owner).role == "viewer"
    assert them.get("/api/invitations/received").json()["results"] == []
    again = them.post(f"/api/invitations/received/{invited['id']}/accept")
    assert again.status_code == 409


def test_the_link_alone_never_accepts_for_an_existing_account(org, other_org, admin,
                                                              user_client):
    admin.post("/api/invitations", {"email": "owner@globex.test"}, format="json")
    token = _token_of("owner@globex.test")

    anonymous = APIClient().post("/api/invitations/accept",
                                 {"token": token, "password": "attacker-chosen-pw-77"},
                                 format="json")
    someone_else = admin.post("/api/invitations/accept", {"token": token}, format="json")

    assert anonymous.status_code == 403
    assert anonymous.json() == {"detail": "owner@globex.test has an account: sign in, "
                                          "then accept"}
    assert someone_else.status_code == 403
    owner = User.objects.get(email="owner@globex.test")
    assert not owner.check_password("attacker-chosen-pw-77")
    assert not Membership.objects.filter(organization=org, user=owner).exists()
    accepted = _as(owner).post("/api/invitations/accept", {"token": token}, format="json")
    assert accepted.status_code == 200
    assert Membership.objects.filter(organization=org, user=owner).exists()


def test_declining_by_the_link_or_signed_in_ends_the_invitation(org, other_org, admin):
    first = admin.post("/api/invitations", {"email": "owner@globex.test"},
                       format="json").json()
    declined = _as(User.objects.get(email="owner@globex.test")).post(
        f"/api/invitations/received/{first['id']}/decline")
    admin.post("/api/invitations", {"email": "stranger@else.test"}, format="json")
    by_link = APIClient().post("/api/invitations/decline",
                               {"token": _token_of("stranger@else.test")}, format="json")

    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert by_link.status_code == 200 and by_link.json()["status"] == "declined"
    assert not Membership.objects.filter(organization=org,
                                         user__email="owner@globex.test").exists()
    assert not User.objects.filter(email="stranger@else.test").exists()
    late = APIClient().post("/api/invitations/accept", {"token": _token_of(
        "stranger@else.test"), "password": PASSWORD}, format="json")
    assert late.status_code == 409 and late.json() == {"detail": "the invitation is declined"}


def test_revoked_and_expired_invitations_cannot_be_accepted(org, admin):
    revoked = admin.post("/api/invitations", {"email": "a@else.test"}, format="json").json()
    admin.post("/api/invitations", {"email": "b@else.test"}, format="json")
    gone = admin.delete(f"/api/invitations/{revoked['id']}")
    Invitation.objects.filter(email="b@else.test").update(
        expires_at=timezone.now() - timedelta(seconds=1))

    for email, state in (("a@else.test", "revoked"), ("b@else.test", "expired")):
        response = APIClient().post("/api/invitations/accept", {
            "token": _token_of(email), "password": PASSWORD}, format="json")
        assert response.status_code == 409
        assert response.json() == {"detail": f"the invitation is {state}"}
    assert gone.status_code == 200 and gone.json()["status"] == "revoked"
    assert not User.objects.filter(email__in=["a@else.test", "b@else.test"]).exists()
    listed = admin.get("/api/invitations", {"status": "expired"}).json()["results"]
    assert [i["email"] for i in listed] == ["b@else.test"]


def test_inviting_again_replaces_the_open_invitation_and_its_link(org, admin):
    admin.post("/api/invitations", {"email": "c@else.test"}, format="json")
    old = _token_of("c@else.test")
    admin.post("/api/invitations", {"email": "c@else.test", "role": "viewer"}, format="json")

    stale = APIClient().post("/api/invitations/accept", {"token": old, "password": PASSWORD},
                             format="json")
    fresh = APIClient().post("/api/invitations/accept", {
        "token": _token_of("c@else.test"), "password": PASSWORD}, format="json")

    assert stale.status_code == 409
    assert fresh.status_code == 200 and fresh.json()["role"] == "viewer"


@pytest.mark.parametrize(("role", "body", "status"), [
    ("member", {"email": "x@else.test"}, 403),  # only admins invite
    ("admin", {"email": "x@else.test", "role": "owner"}, 403),  # only owners make owners
    ("admin", {"email": "admin@acme.test"}, 409),  # already a member
    ("admin", {"email": "not-an-email"}, 400),
])
def test_who_may_invite_whom(org, user_client, role, body, status):
    client = user_client(org, role, email=f"{role}@acme.test")
    assert client.post("/api/invitations", body, format="json").status_code == status
    assert not Invitation.objects.filter(email="x@else.test").exists()


def test_invitations_belong_to_their_organization(org, other_org, admin, user_client):
    mine = admin.post("/api/invitations", {"email": "d@else.test"}, format="json").json()
    theirs = user_client(other_org, "owner", email="owner@globex.test")

    assert theirs.get("/api/invitations").json()["results"] == []
    assert theirs.get(f"/api/invitations/{mine['id']}").status_code == 404
    assert theirs.delete(f"/api/invitations/{mine['id']}").status_code == 404
    # ... and only the invited address answers one.
    assert theirs.post(f"/api/invitations/received/{mine['id']}/accept").status_code == 404


def test_an_api_key_cannot_answer_invitations(org, client_for):
    response = client_for(org, ["read", "write", "admin"]).get("/api/invitations/received")
    assert response.status_code == 403


class RefuseDomain:
    def check_password_login(self, email: str) -> None:
        if email.endswith("@sso.test"):
            raise Forbidden("password sign-in is off for sso.test: use SSO")


@pytest.fixture
def sso_enforced() -> Iterator[None]:
    extensions.login_policies.register("test-sso", RefuseDomain())
    yield
    extensions.login_policies.unregister("test-sso")


def test_where_passwords_are_refused_the_link_opens_no_password_account(org, admin,
                                                                        sso_enforced):
    admin.post("/api/invitations", {"email": "e@sso.test"}, format="json")
    response = APIClient().post("/api/invitations/accept", {
        "token": _token_of("e@sso.test"), "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "password sign-in is off for sso.test: use SSO"}
    assert not User.objects.filter(email="e@sso.test").exists()


def test_a_weak_or_missing_password_opens_no_account(org, admin):
    admin.post("/api/invitations", {"email": "f@else.test"}, format="json")
    token = _token_of("f@else.test")
    missing = APIClient().post("/api/invitations/accept", {"token": token}, format="json")
    weak = APIClient().post("/api/invitations/accept", {"token": token, "password": "123"},
                            format="json")
    assert missing.status_code == 400 and "password" in missing.json()
    assert weak.status_code == 400 and "password" in weak.json()
    assert not User.objects.filter(email="f@else.test").exists()


@override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                   EMAIL_HOST="")
def test_without_mail_settings_the_operator_hands_out_the_link(org, admin, live_env):
    invited = admin.post("/api/invitations", {"email": "g@else.test"}, format="json").json()
    assert invited["delivery"] == "not_configured"

    done = subprocess.run([sys.executable, "-m", "potluck", "invitations", "link",
                           invited["id"], "--url", "https://potluck.example"], env=live_env,
                          capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith("https://potluck.example/invitations?token=")
    accepted = APIClient().post("/api/invitations/accept", {
        "token": link.split("token=")[1], "password": PASSWORD}, format="json")
    assert accepted.status_code == 200, accepted.content


def test_the_operator_still_adds_people_directly_from_the_cli(org, live_env):
    done = subprocess.run([sys.executable, "-m", "potluck", "users", "add", "h@else.test",
                           "--org", org.slug, "--role", "viewer"], env=live_env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert Membership.objects.get(organization=org, user__email="h@else.test").role == "viewer"
