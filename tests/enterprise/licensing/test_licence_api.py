# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""/api/license: what it shows, who may install, and errors in DRF's shape."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from potluck import extensions
from potluck.accounts.models import Membership, Role, User
from potluck_enterprise.licensing.models import InstalledLicence

STATUS_KEYS = {"installed", "state", "warnings", "seats_used", "seats", "seats_limit",
               "license_id", "licensee", "organization", "features", "issued_at",
               "expires_at", "grace_days", "grace_ends_at", "installed_at", "installed_by",
               "installation_id", "bound_to", "days_left", "expiry_notice", "store_url",
               "online_renewal"}


@pytest.fixture
def operator(org) -> APIClient:
    """The bootstrap admin's kind: a superuser who owns an organization."""
    user = User.objects.create_superuser("root", "root@acme.test", "a-long-password-1")
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_without_a_licence_get_says_none_is_installed(db, clock, org, user_client):
    response = user_client(org, "viewer").get("/api/license")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == STATUS_KEYS
    assert body["installed"] is False
    assert body["state"] == "none"
    assert body["features"] == [] and body["warnings"] == []
    assert body["seats"] is None and body["seats_used"] == 2  # the owner and this viewer


def test_get_shows_licensee_features_seats_expiry_and_warnings(licensed, org, user_client,
                                                               clock):
    licensed(features=["sso", "billing"], seats=10, days=20)  # expiring within 30 days
    body = user_client(org, "member").get("/api/license/").json()
    assert body["installed"] is True
    assert (body["license_id"], body["licensee"], body["organization"]) == (
        "lic-test-0001", "Acme Corp", "Acme")
    assert body["features"] == [
        {"key": "sso", "title": "Single sign-on (OIDC, SAML)", "enabled": True},
        {"key": "billing", "title": "Metered billing", "enabled": True},
    ]
    assert (body["seats_used"], body["seats"], body["seats_limit"]) == (2, 10, 11)
    assert body["issued_at"] == "2026-01-01T00:00:00Z"
    assert body["expires_at"] == "2026-01-21T00:00:00Z"
    assert body["grace_ends_at"] == "2026-02-04T00:00:00Z"
    assert body["state"] == "expiring"
    assert body["warnings"] == ["the licence expires in 19 days, on 2026-01-21"]
    assert body["installed_by"] is None  # installed from the command line


def test_readers_and_keys_with_read_may_get_and_others_may_not(db, org, client_for):
    assert client_for(org, ["read"]).get("/api/license").status_code == 200
    assert client_for(org, ["inference"]).get("/api/license").status_code == 403
    assert APIClient().get("/api/license").status_code in (401, 403)


def test_an_operator_installs_a_licence_and_its_features_switch_on(operator, issuer, clock):
    response = operator.post("/api/license", {"license": issuer.licence(features=["sso"])},
                             format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == STATUS_KEYS
    assert (body["state"], body["installed_by"]) == ("active", "root@acme.test")
    assert extensions.feature_available("sso")
    assert InstalledLicence.objects.get().installed_by.email == "root@acme.test"


def test_put_installs_too_and_replaces_the_licence(operator, issuer, clock):
    operator.post("/api/license", {"license": issuer.licence()}, format="json")
    response = operator.put("/api/license", {"license": issuer.licence(license_id="lic-2")},
                            format="json")
    assert response.status_code == 201
    assert response.json()["license_id"] == "lic-2"
    assert InstalledLicence.objects.count() == 2


def test_the_licence_file_may_be_uploaded(operator, issuer, clock):
    upload = SimpleUploadedFile("acme.license", issuer.licence().encode())
    response = operator.post("/api/license", {"license": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["license_id"] == "lic-test-0001"


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_organization_roles_that_are_not_operators_cannot_install(db, org, user_client, issuer,
                                                                  clock, role):
    client = user_client(org, role, email=f"{role}-person@acme.test")
    response = client.post("/api/license", {"license": issuer.licence()}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "installing a licence changes the whole installation: "
                                         "only a signed-in superuser (an operator) may do it"}
    assert not InstalledLicence.objects.exists()


def test_api_keys_cannot_install_even_with_admin_scope(db, org, client_for, issuer, clock):
    response = client_for(org, ["admin", "read", "write"]).post(
        "/api/license", {"license": issuer.licence()}, format="json")
    assert response.status_code == 403
    assert not InstalledLicence.objects.exists()


def test_a_refused_licence_is_a_400_naming_the_reason(operator, issuer, clock):
    other = issuer.licence().replace(issuer.licence().splitlines()[2], "A" * 64)
    response = operator.post("/api/license", {"license": other}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["license"]
    assert len(response.json()["license"]) == 1
    response = operator.post("/api/license", {"license": "hello"}, format="json")
    assert response.json() == {"license": ["the licence must start with the line "
                                           "-----BEGIN POTLUCK LICENSE-----"]}
    assert not InstalledLicence.objects.exists()
    assert not extensions.feature_available("sso")


def test_a_missing_licence_field_is_a_400_in_drf_shape(operator):
    response = operator.post("/api/license", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {"license": ["This field is required."]}


def test_the_console_sees_the_panel_and_the_licensed_features(licensed, org, user_client):
    client = user_client(org, "viewer")
    before = client.get("/api/extensions").json()
    assert [p["key"] for p in before["panels"]] == ["licence"]
    assert before["panels"][0]["api_path"] == "/api/license"
    assert before["features"] == []
    licensed(features=["sso"])
    after = client.get("/api/extensions").json()
    assert after["features"] == [{"key": "sso", "title": "Single sign-on (OIDC, SAML)"}]


def test_the_schema_describes_the_licence_endpoint(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    # Like the router's routes, /api/license takes an optional trailing slash.
    operations = schema["paths"]["/api/license/"]
    assert {"get", "post", "put"} <= set(operations)
