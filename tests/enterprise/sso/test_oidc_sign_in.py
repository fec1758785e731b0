# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""OIDC sign-in against a real OpenID Connect provider (Authlib) over HTTP on 127.0.0.1."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sso_helpers import CORP_DOMAIN, follow_to_idp, local_path, make_oidc_connection

from potluck.accounts.models import Membership, Role, User
from potluck_enterprise.sso import domains, services

pytestmark = pytest.mark.django_db

ALICE = {"sub": "alice-1", "email": "alice@corp.test", "email_verified": True,
         "groups": ["engineering", "potluck-admins"]}


def _signed_in_as(browser) -> dict:
    return browser.get("/api/session").json()


def test_first_sign_in_provisions_the_user_with_the_role_of_their_groups(
        org, oidc_connection, sso_on, browser, oidc_sign_in, idp):
    services.add_mapping(org, "potluck-admins", "admin", granted_by_owner=True)
    services.add_mapping(org, "engineering", "member", granted_by_owner=True)

    done = oidc_sign_in(browser, org.slug, ALICE, next_path="/models")

    assert done.status_code == 302
    assert done["Location"] == "/models"
    user = User.objects.get(email="alice@corp.test")
    assert Membership.objects.get(organization=org, user=user).role == Role.ADMIN
    session = _signed_in_as(browser)
    assert session["authenticated"] is True
    assert session["user"]["email"] == "alice@corp.test"
    assert [(o["slug"], o["role"]) for o in session["organizations"]] == [("acme", "admin")]
    assert session["logout_url"] == "/api/sso/logout"
    assert idp.token_requests == 1  # the code was exchanged with the IdP over HTTP


def test_without_a_mapped_group_the_default_role_applies_and_roles_follow_groups_later(
        org, oidc_connection, sso_on, browser, oidc_sign_in):
    oidc_connection.default_role = "viewer"
    oidc_connection.save()
    services.add_mapping(org, "potluck-admins", "admin", granted_by_owner=True)

    oidc_sign_in(browser, org.slug, {**ALICE, "groups": ["sales"]})
    membership = Membership.objects.get(organization=org, user__email="alice@corp.test")
    assert membership.role == Role.VIEWER

    oidc_sign_in(browser, org.slug, {**ALICE, "groups": ["potluck-admins"]})
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_a_callback_whose_state_this_browser_never_sent_is_refused(
        org, oidc_connection, sso_on, browser, idp):
    idp.user = ALICE
    callback = follow_to_idp(browser.get(f"/api/sso/{org.slug}/oidc/start"))
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    forged = f"{parts.path}?code={query['code'][0]}&state=not-the-state-we-sent"

    response = browser.get(forged)

    assert response.status_code == 400
    assert "state mismatch" in response.json()["state"][0]
    assert not User.objects.filter(email="alice@corp.test").exists()


def test_a_callback_in_another_browser_is_refused(org, oidc_connection, sso_on, browser, idp,
                                                  client):
    idp.user = ALICE
    callback = follow_to_idp(browser.get(f"/api/sso/{org.slug}/oidc/start"))

    response = client.get(local_path(callback))  # pytest-django's client: another browser

    assert response.status_code == 400
    assert "state mismatch" in response.json()["state"][0]
    assert _signed_in_as(client)["authenticated"] is False


def test_a_state_is_good_for_one_callback_only(org, oidc_connection, sso_on, browser, idp):
    idp.user = ALICE
    callback = local_path(follow_to_idp(browser.get(f"/api/sso/{org.slug}/oidc/start")))
    assert browser.get(callback).status_code == 302
    browser.post("/api/sso/logout")

    again = browser.get(callback)

    assert again.status_code == 400
    assert "state mismatch" in again.json()["state"][0]


@pytest.mark.parametrize(("fault", "message"), [
    ("bad_signature", "signature does not verify"),
    ("wrong_audience", "another client (audience)"),
    ("expired", "has expired"),
    ("wrong_nonce", "nonce does not match"),
    ("wrong_issuer", "another issuer"),
])
def test_an_id_token_that_fails_a_check_signs_nobody_in(
        org, oidc_connection, sso_on, browser, oidc_sign_in, idp, fault, message):
    idp.faults = {fault}

    response = oidc_sign_in(browser, org.slug, ALICE)

    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert not User.objects.filter(email="alice@corp.test").exists()
    assert _signed_in_as(browser)["authenticated"] is False


def test_an_address_of_an_unverified_domain_is_refused(
        org, idp, sso_on, browser, oidc_sign_in):
    claimed = domains.add_domain(org, CORP_DOMAIN)  # claimed, never verified
    make_oidc_connection(org, idp)

    response = oidc_sign_in(browser, org.slug, ALICE)

    assert response.status_code == 403
    assert "corp.test is not verified for acme" in response.json()["detail"]
    assert not User.objects.filter(email="alice@corp.test").exists()
    assert not claimed.is_verified


def test_a_user_of_another_organizations_verified_domain_is_refused(
        org, other_org, oidc_connection, sso_on, browser, oidc_sign_in):
    domains.verify_by_operator(domains.add_domain(other_org, "globex.test"))

    response = oidc_sign_in(browser, org.slug, {**ALICE, "email": "hank@globex.test"})

    assert response.status_code == 403
    assert "another organization's verified domain" in response.json()["detail"]
    assert not User.objects.filter(email="hank@globex.test").exists()


def test_a_user_the_idp_places_in_another_organization_is_refused(
        org, idp, corp_domain, sso_on, browser, oidc_sign_in):
    make_oidc_connection(org, idp, org_claim="tenant", org_claim_value="acme-corp")

    refused = oidc_sign_in(browser, org.slug, {**ALICE, "tenant": "globex-corp"})
    assert refused.status_code == 403
    assert "in another organization" in refused.json()["detail"]

    admitted = oidc_sign_in(browser, org.slug, {**ALICE, "tenant": "acme-corp"})
    assert admitted.status_code == 302


def test_an_email_the_idp_has_not_verified_is_refused(
        org, oidc_connection, sso_on, browser, oidc_sign_in):
    response = oidc_sign_in(browser, org.slug, {**ALICE, "email_verified": False})

    assert response.status_code == 400
    assert "not verified this email" in response.json()["detail"]


def test_logout_ends_the_session_and_points_at_the_idps_end_session_endpoint(
        org, oidc_connection, sso_on, browser, oidc_sign_in, idp):
    oidc_sign_in(browser, org.slug, ALICE)

    response = browser.post("/api/sso/logout")

    assert response.status_code == 200
    redirect = urlsplit(response.json()["redirect"])
    assert f"{redirect.scheme}://{redirect.netloc}{redirect.path}" == f"{idp.base_url}/logout"
    params = parse_qs(redirect.query)
    assert params["client_id"] == ["potluck-test-client"]
    assert params["post_logout_redirect_uri"] == ["http://testserver/"]
    assert params["id_token_hint"][0].count(".") == 2  # the ID token the IdP issued
    assert _signed_in_as(browser)["authenticated"] is False


def test_logout_without_an_end_session_endpoint_goes_to_the_console(
        org, corp_domain, sso_on, browser, oidc_sign_in, idp):
    idp.advertise_end_session = False
    make_oidc_connection(org, idp)
    oidc_sign_in(browser, org.slug, ALICE)

    response = browser.post("/api/sso/logout")

    assert response.json()["redirect"] == "/"
    assert _signed_in_as(browser)["authenticated"] is False


def test_with_the_feature_off_the_sso_endpoints_refuse(org, oidc_connection, browser):
    response = browser.get(f"/api/sso/{org.slug}/oidc/start")

    assert response.status_code == 403
    assert "licence" in response.json()["detail"]
    assert browser.get(f"/api/sso/{org.slug}/oidc/callback?state=x&code=y").status_code == 403


def test_an_organization_without_a_connection_has_no_sign_in(org, sso_on, browser):
    response = browser.get(f"/api/sso/{org.slug}/oidc/start")

    assert response.status_code == 404
    assert browser.get("/api/sso/no-such-org/oidc/start").status_code == 404
