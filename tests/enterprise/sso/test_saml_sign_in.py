# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SAML 2.0 sign-in with assertions that pysaml2's IdP ``Server`` signs through xmlsec1."""

from __future__ import annotations

import defusedxml.ElementTree as SafeET
import pytest
from saml_idp import IDP_ENTITY_ID

from potluck import extensions
from potluck.accounts.models import Membership, Role, User
from potluck_enterprise.sso import domains, feature, services
from potluck_enterprise.sso.models import SeenAssertion

pytestmark = pytest.mark.django_db

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
ACS = "/api/sso/acme/saml/acs"


def _start(browser, next_path: str = "") -> str:
    response = browser.get("/api/sso/acme/saml/start" + (f"?next={next_path}" if next_path else ""))
    assert response.status_code == 302, response.content
    return response["Location"]


def _session(browser) -> dict:
    return browser.get("/api/session").json()


def test_the_sp_metadata_names_the_acs_and_requires_signed_assertions(
        org, saml_connection, browser):
    response = browser.get("/api/sso/acme/saml/metadata")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/samlmetadata+xml"
    root = SafeET.fromstring(response.content)
    assert root.get("entityID") == "http://testserver/api/sso/acme/saml/metadata"
    sp = root.find(f"{{{MD}}}SPSSODescriptor")
    assert sp.get("WantAssertionsSigned") == "true"
    assert sp.get("AuthnRequestsSigned") == "true"
    acs = sp.find(f"{{{MD}}}AssertionConsumerService")
    assert acs.get("Location") == "http://testserver/api/sso/acme/saml/acs"
    assert sp.find(f"{{{MD}}}KeyDescriptor") is not None
    assert b"PRIVATE KEY" not in response.content


def test_a_signed_assertion_provisions_the_user_with_the_role_of_their_groups(
        org, saml_connection, saml_idp, browser):
    services.add_mapping(org, "potluck-admins", "admin", granted_by_owner=True)
    redirect = _start(browser, next_path="/keys")
    assert redirect.startswith("https://idp.corp.test/saml/sso?")

    form = saml_idp.respond(redirect, "bob@corp.test", groups=["potluck-admins", "staff"])
    response = browser.post(ACS, form)

    assert response.status_code == 302, response.content
    assert response["Location"] == "/keys"
    user = User.objects.get(email="bob@corp.test")
    assert Membership.objects.get(organization=org, user=user).role == Role.ADMIN
    session = _session(browser)
    assert session["user"]["email"] == "bob@corp.test"
    assert [(o["slug"], o["role"]) for o in session["organizations"]] == [("acme", "admin")]
    assert SeenAssertion.objects.filter(idp_entity_id=IDP_ENTITY_ID).count() == 1


def test_without_a_mapped_group_the_connections_default_role_applies(
        org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "carol@corp.test", groups=["staff"])

    assert browser.post(ACS, form).status_code == 302
    assert Membership.objects.get(organization=org,
                                  user__email="carol@corp.test").role == Role.MEMBER


def _refused(browser, form, status: int, message: str, field: str = "detail") -> None:
    response = browser.post(ACS, form)
    assert response.status_code == status, response.content
    body = response.json()
    assert message in (body["detail"] if field == "detail" else body[field][0])
    assert _session(browser)["authenticated"] is False


def test_an_assertion_altered_after_signing_is_refused(org, saml_connection, saml_idp,
                                                       browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test")
    forged = saml_idp.tamper(form, "bob@corp.test", "ceo@corp.test")

    _refused(browser, forged, 400, "signature is not valid")
    assert not User.objects.filter(email__in=["bob@corp.test", "ceo@corp.test"]).exists()


def test_an_assertion_signed_with_a_key_not_in_the_idp_metadata_is_refused(
        org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test", rogue_key=True)

    _refused(browser, form, 400, "signature is not valid")


def test_an_unsigned_assertion_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test", sign_assertion=False)

    _refused(browser, form, 400, "signature is not valid")


def test_an_assertion_for_another_audience_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test",
                            audience="https://other-sp.example/metadata")

    _refused(browser, form, 400, "another service provider (audience)")


def test_an_expired_assertion_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test", issued_minutes_ago=30)

    _refused(browser, form, 400, "expired")


def test_an_assertion_for_another_recipient_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test",
                            destination="https://other-sp.example/saml/acs")

    _refused(browser, form, 400, "addressed to another service provider (Destination)")


def test_a_replayed_assertion_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test")
    assert browser.post(ACS, form).status_code == 302
    browser.post("/api/sso/logout")

    _refused(browser, form, 400, "already used (replay)")


def test_a_response_to_a_request_potluck_never_sent_is_refused(
        org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test", in_response_to="id-made-up")

    _refused(browser, form, 400, "does not answer a sign-in started here")


def test_an_unsolicited_response_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test", in_response_to=None)

    _refused(browser, form, 400, "does not answer a sign-in started here")


def test_a_response_posted_from_another_browser_is_refused(
        org, saml_connection, saml_idp, browser, client):
    form = saml_idp.respond(_start(browser), "bob@corp.test")

    _refused(client, form, 400, "state mismatch", field="RelayState")


def test_a_changed_relay_state_is_refused(org, saml_connection, saml_idp, browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test")

    _refused(browser, {**form, "RelayState": "something-else"}, 400, "state mismatch",
             field="RelayState")


def test_an_address_of_an_unverified_domain_is_refused(org, saml_connection, saml_idp,
                                                       browser):
    form = saml_idp.respond(_start(browser), "dave@elsewhere.test")

    _refused(browser, form, 403, "elsewhere.test is not verified for acme")
    assert not User.objects.filter(email="dave@elsewhere.test").exists()


def test_a_user_of_another_organizations_verified_domain_is_refused(
        org, other_org, saml_connection, saml_idp, browser):
    domains.verify_by_operator(domains.add_domain(other_org, "globex.test"))
    form = saml_idp.respond(_start(browser), "hank@globex.test")

    _refused(browser, form, 403, "another organization's verified domain")
    assert not Membership.objects.filter(organization=org, user__email="hank@globex.test"
                                         ).exists()


def test_a_user_the_idp_places_in_another_organization_is_refused(
        org, saml_connection, saml_idp, browser):
    saml_connection.org_claim = "tenant"
    saml_connection.org_claim_value = "acme-corp"
    saml_connection.save()
    form = saml_idp.respond(_start(browser), "bob@corp.test", extra={"tenant": ["globex"]})

    _refused(browser, form, 403, "in another organization")


def test_with_the_feature_off_every_saml_endpoint_refuses(org, saml_connection, saml_idp,
                                                           browser):
    form = saml_idp.respond(_start(browser), "bob@corp.test")
    feature.disable()
    extensions.features.unregister(feature.FEATURE_KEY)

    for response in (browser.get("/api/sso/acme/saml/metadata"),
                     browser.get("/api/sso/acme/saml/start"), browser.post(ACS, form)):
        assert response.status_code == 403
        assert "licence" in response.json()["detail"]
    assert not User.objects.filter(email="bob@corp.test").exists()
