# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Verified email domains (DNS TXT or an operator) and SSO enforcement of password sign-in."""

from __future__ import annotations

import pytest
from dns_server import TxtServer
from rest_framework.test import APIClient
from sso_helpers import make_oidc_connection

from potluck import extensions
from potluck.accounts import services as accounts
from potluck.errors import Conflict
from potluck_enterprise.sso import domains, feature

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-password-4711"


@pytest.fixture
def dns_server(settings):
    server = TxtServer().start()
    settings.SSO_DNS_NAMESERVERS = [server.nameserver]
    yield server
    server.stop()


def test_a_domain_is_verified_by_its_dns_txt_record(org, sso_on, user_client, dns_server):
    admin = user_client(org, "admin")
    created = admin.post("/api/sso/domains", {"domain": "Corp.Test."}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["domain"], body["verified"]) == ("corp.test", False)
    assert body["txt_record_name"] == "_potluck-verification.corp.test"
    verify = f"/api/sso/domains/{body['id']}/verify"

    missing = admin.post(verify, {}, format="json")
    assert missing.status_code == 400
    assert "no TXT record" in missing.json()["domain"][0]

    dns_server.publish("_potluck-verification.corp.test", "potluck-verification=not-ours")
    assert admin.post(verify, {}, format="json").status_code == 400

    dns_server.publish("_potluck-verification.corp.test", body["txt_record_value"])
    verified = admin.post(verify, {}, format="json")
    assert verified.status_code == 200, verified.content
    assert verified.json()["verified"] is True
    assert verified.json()["verification_method"] == "dns"


def test_only_an_operator_verifies_a_domain_without_dns(org, sso_on, user_client):
    admin = user_client(org, "owner", email="boss@acme.test")
    domain = domains.add_domain(org, "corp.test")
    url = f"/api/sso/domains/{domain.pk}/verify"

    refused = admin.post(url, {"method": "operator"}, format="json")
    assert refused.status_code == 403
    assert "operator" in refused.json()["method"][0]

    admin.user.is_superuser = True
    admin.user.save()
    accepted = admin.post(url, {"method": "operator"}, format="json")
    assert accepted.status_code == 200
    assert accepted.json()["verification_method"] == "operator"


def test_a_verified_domain_belongs_to_one_organization(org, other_org, sso_on):
    domains.verify_by_operator(domains.add_domain(org, "corp.test"))
    theirs = domains.add_domain(other_org, "corp.test")  # a claim is harmless until verified

    with pytest.raises(Conflict, match="already verified by another organization"):
        domains.verify_by_operator(theirs)
    theirs.refresh_from_db()
    assert not theirs.is_verified


def test_another_organizations_domain_is_not_found(org, other_org, sso_on, user_client):
    theirs = domains.add_domain(other_org, "globex.test")
    admin = user_client(org, "admin")

    assert admin.get(f"/api/sso/domains/{theirs.pk}").status_code == 404
    assert admin.post(f"/api/sso/domains/{theirs.pk}/verify", {}, format="json"
                      ).status_code == 404
    assert admin.delete(f"/api/sso/domains/{theirs.pk}").status_code == 404
    assert [d["domain"] for d in admin.get("/api/sso/domains").json()["results"]] == []


def test_sso_cannot_be_enforced_for_an_unverified_domain(org, sso_on, user_client):
    admin = user_client(org, "admin")
    domain = domains.add_domain(org, "corp.test")

    response = admin.patch(f"/api/sso/domains/{domain.pk}", {"enforce_sso": True}, format="json")

    assert response.status_code == 400
    assert "verify the domain" in response.json()["enforce_sso"][0]


def _password_user(email: str):
    user = accounts.get_or_create_user(email)
    accounts.set_password(user, PASSWORD)
    return user


def _sign_in(email: str, password: str = PASSWORD):
    return APIClient().post("/api/session", {"email": email, "password": password},
                            format="json")


@pytest.fixture
def enforced(org, idp, corp_domain):
    make_oidc_connection(org, idp)
    return domains.set_enforcement(corp_domain, True)


def test_password_sign_in_for_an_enforced_domain_points_to_sso(org, sso_on, enforced):
    _password_user("alice@corp.test")

    for email, password in [("alice@corp.test", PASSWORD), ("alice@corp.test", "wrong"),
                            ("nobody@corp.test", PASSWORD)]:
        response = _sign_in(email, password)
        assert response.status_code == 403
        assert response.json()["detail"] == (
            "password sign-in is turned off for corp.test: sign in with SSO at "
            "/api/sso/acme/oidc/start")


def test_no_other_password_path_skips_enforcement(org, sso_on, enforced):
    """Issue 19: DRF's browsable-API login signed in with a password where SSO was enforced."""
    from django.contrib.auth import authenticate
    from django.test import Client

    user = _password_user("alice@corp.test")
    user.is_staff = True
    user.save()
    client = Client()

    drf_login = client.post("/api/auth/login/", {"username": "alice@corp.test",
                                                 "password": PASSWORD})
    admin_login = client.post("/admin/login/", {"username": "alice@corp.test",
                                                "password": PASSWORD})

    assert drf_login.status_code == 404
    assert admin_login.status_code == 302 and admin_login["Location"] == "/"
    assert authenticate(username="alice@corp.test", password=PASSWORD) is None
    assert client.get("/api/session").json()["authenticated"] is False
    assert _sign_in("alice@corp.test").status_code == 403  # the one path: SSO enforced


def test_password_sign_in_works_where_sso_is_not_enforced(org, sso_on, idp, corp_domain):
    make_oidc_connection(org, idp)
    _password_user("alice@corp.test")
    _password_user("eve@elsewhere.test")

    assert _sign_in("alice@corp.test").status_code == 200
    assert _sign_in("eve@elsewhere.test").status_code == 200


def test_an_unverified_domain_never_enforces_sso(org, sso_on, idp):
    domain = domains.add_domain(org, "corp.test")
    make_oidc_connection(org, idp)
    domain.enforce_sso = True  # even if the flag were set somehow
    domain.save()
    _password_user("alice@corp.test")

    assert _sign_in("alice@corp.test").status_code == 200
    assert APIClient().get("/api/session/providers?email=alice@corp.test").json() == {
        "providers": []}


def test_enforcement_without_an_enabled_connection_does_not_lock_everyone_out(
        org, sso_on, corp_domain):
    domains.set_enforcement(corp_domain, True)
    _password_user("alice@corp.test")

    assert _sign_in("alice@corp.test").status_code == 200


def test_the_sign_in_page_learns_the_sso_start_url_of_the_email_domain(org, sso_on, enforced):
    response = APIClient().get("/api/session/providers?email=alice@corp.test")

    assert response.status_code == 200
    assert response.json() == {"providers": [{
        "key": "sso:acme:oidc", "title": "Sign in with SSO (Acme)",
        "start_url": "/api/sso/acme/oidc/start"}]}
    assert APIClient().get("/api/session/providers?email=eve@elsewhere.test").json() == {
        "providers": []}


def test_with_the_feature_off_password_sign_in_is_not_blocked(org, sso_on, enforced):
    _password_user("alice@corp.test")
    assert _sign_in("alice@corp.test").status_code == 403

    feature.disable()
    extensions.features.unregister(feature.FEATURE_KEY)

    assert _sign_in("alice@corp.test").status_code == 200
    assert APIClient().get("/api/session/providers?email=alice@corp.test").json() == {
        "providers": []}


def test_a_licence_that_grants_sso_switches_enforcement_on(org, enforced, licensed):
    _password_user("alice@corp.test")
    assert not extensions.feature_available("sso")
    assert _sign_in("alice@corp.test").status_code == 200

    licensed(features=["sso"], days=3650)

    assert extensions.feature_available("sso")
    refused = _sign_in("alice@corp.test")
    assert refused.status_code == 403
    assert "sign in with SSO" in refused.json()["detail"]
