# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The admin API for SSO connections and group -> role mappings; secrets at rest."""

from __future__ import annotations

import pytest
from django.db import connection as db
from oidc_provider import CLIENT_ID, CLIENT_SECRET

from potluck_enterprise import crypto
from potluck_enterprise.sso import services
from potluck_enterprise.sso.models import OidcConnection, SamlConnection

pytestmark = pytest.mark.django_db

OIDC = "/api/sso/connections/oidc"
SAML = "/api/sso/connections/saml"


def _raw(sql: str, *params: object) -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _oidc_body(idp, **extra: object) -> dict:
    return {"discovery_url": idp.discovery_url, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "groups_claim": "groups", **extra}


def test_an_admin_sets_up_oidc_and_the_secret_is_never_returned_nor_stored_in_clear(
        org, sso_on, idp, user_client):
    admin = user_client(org, "admin")

    created = admin.put(OIDC, _oidc_body(idp), format="json")

    assert created.status_code == 200, created.content
    body = created.json()
    assert "client_secret" not in body
    assert CLIENT_SECRET not in created.content.decode()
    assert body["has_client_secret"] is True
    assert body["redirect_uri"] == "http://testserver/api/sso/acme/oidc/callback"
    assert body["start_url"] == "/api/sso/acme/oidc/start"
    assert body["scopes"] == ["openid", "email", "profile"]
    assert CLIENT_SECRET not in admin.get(OIDC).content.decode()
    [(stored,)] = _raw("SELECT client_secret_encrypted FROM potluck_enterprise_oidcconnection")
    assert CLIENT_SECRET not in stored
    assert crypto.decrypt(stored) == CLIENT_SECRET


def test_updating_oidc_without_a_secret_keeps_the_old_one(org, sso_on, idp, user_client):
    admin = user_client(org, "admin")
    admin.put(OIDC, _oidc_body(idp), format="json")

    updated = admin.patch(OIDC, {"default_role": "viewer"}, format="json")

    assert updated.status_code == 200
    connection = OidcConnection.objects.for_org(org).get()
    assert (connection.default_role, connection.client_secret) == ("viewer", CLIENT_SECRET)


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"client_secret": None}, "client_secret", "a client secret is needed"),
    ({"client_secret": ""}, "client_secret", "may not be blank"),
    ({"discovery_url": "http://idp.example/.well-known/openid-configuration"},
     "discovery_url", "https"),
    ({"scopes": ["email"]}, "scopes", "openid"),
    ({"default_role": "emperor"}, "default_role", "not a valid choice"),
])
def test_a_bad_oidc_connection_is_refused_and_nothing_is_saved(
        org, sso_on, idp, user_client, body, field, message):
    admin = user_client(org, "admin")

    sent = {k: v for k, v in {**_oidc_body(idp), **body}.items() if v is not None}
    response = admin.put(OIDC, sent, format="json")

    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert not OidcConnection.objects.for_org(org).exists()


def test_a_discovery_url_that_does_not_answer_is_refused(org, sso_on, idp, user_client):
    admin = user_client(org, "admin")

    response = admin.put(OIDC, _oidc_body(
        idp, discovery_url=f"{idp.base_url}/no-such-document"), format="json")

    assert response.status_code == 400
    assert "HTTP 404" in response.json()["discovery_url"][0]


def test_an_admin_sets_up_saml_and_the_sp_key_is_generated_and_encrypted(
        org, sso_on, user_client, saml_idp):
    admin = user_client(org, "admin")

    created = admin.put(SAML, {"idp_metadata_xml": saml_idp.metadata_xml()}, format="json")

    assert created.status_code == 200, created.content
    body = created.json()
    assert body["idp_entity_id"] == "https://idp.corp.test/saml/metadata"
    assert body["sp_entity_id"] == "http://testserver/api/sso/acme/saml/metadata"
    assert body["acs_url"] == "http://testserver/api/sso/acme/saml/acs"
    assert body["want_assertions_signed"] is True
    assert body["sp_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in created.content.decode()
    [(stored,)] = _raw("SELECT sp_private_key_encrypted FROM potluck_enterprise_samlconnection")
    assert "PRIVATE KEY" not in stored
    assert crypto.decrypt(stored).startswith("-----BEGIN PRIVATE KEY-----")


def test_a_new_sp_key_pair_replaces_the_old_one(org, sso_on, user_client, saml_idp):
    admin = user_client(org, "admin")
    first = admin.put(SAML, {"idp_metadata_xml": saml_idp.metadata_xml()}, format="json").json()

    second = admin.post(f"{SAML}/regenerate-key")

    assert second.status_code == 200
    assert second.json()["sp_certificate"] != first["sp_certificate"]


@pytest.mark.parametrize(("xml", "message"), [
    ("<not-xml", "not well-formed"),
    ('<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>',
     "no identity provider"),
])
def test_bad_idp_metadata_is_refused(org, sso_on, user_client, xml, message):
    response = user_client(org, "admin").put(SAML, {"idp_metadata_xml": xml}, format="json")

    assert response.status_code == 400
    assert message in response.json()["idp_metadata_xml"][0]
    assert not SamlConnection.objects.for_org(org).exists()


def test_only_admins_manage_sso_and_only_their_own_organizations(
        org, other_org, sso_on, idp, user_client):
    user_client(org, "admin").put(OIDC, _oidc_body(idp), format="json")

    member = user_client(org, "member").get(OIDC)
    assert member.status_code == 403
    assert user_client(other_org, "admin").get(OIDC).status_code == 404


def test_with_the_feature_off_the_admin_api_refuses(org, idp, user_client):
    admin = user_client(org, "admin")

    for response in (admin.get(OIDC), admin.put(OIDC, _oidc_body(idp), format="json"),
                     admin.get("/api/sso/domains"), admin.get("/api/sso/role-mappings")):
        assert response.status_code == 403
        assert "licence" in response.json()["detail"]
    assert not OidcConnection.objects.exists()


def test_group_mappings_to_owner_are_an_owners_decision(org, other_org, sso_on, user_client):
    admin, owner = user_client(org, "admin"), user_client(org, "owner", email="boss@acme.test")
    url = "/api/sso/role-mappings"

    assert admin.post(url, {"group": "eng", "role": "member"}, format="json").status_code == 201
    refused = admin.post(url, {"group": "root", "role": "owner"}, format="json")
    assert refused.status_code == 403
    created = owner.post(url, {"group": "root", "role": "owner"}, format="json")
    assert created.status_code == 201
    duplicate = owner.post(url, {"group": "eng", "role": "admin"}, format="json")
    assert duplicate.status_code == 409
    assert admin.delete(f"{url}/{created.json()['id']}").status_code == 403

    assert sorted(m["group"] for m in admin.get(url).json()["results"]) == ["eng", "root"]
    outsider = user_client(other_org, "owner")
    assert outsider.get(url).json()["results"] == []
    assert outsider.delete(f"{url}/{created.json()['id']}").status_code == 404


def test_secrets_stay_readable_across_a_secret_key_rotation(org, sso_on, idp, settings,
                                                            saml_idp, user_client):
    admin = user_client(org, "admin")
    admin.put(OIDC, _oidc_body(idp), format="json")
    admin.put(SAML, {"idp_metadata_xml": saml_idp.metadata_xml()}, format="json")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert OidcConnection.objects.for_org(org).get().client_secret == CLIENT_SECRET
    assert services.rotate_secrets() == 2
    assert services.rotate_secrets() == 0

    settings.SECRET_KEY_FALLBACKS = []
    assert OidcConnection.objects.for_org(org).get().client_secret == CLIENT_SECRET
    assert "PRIVATE KEY" in SamlConnection.objects.for_org(org).get().sp_private_key
    settings.SECRET_KEY = old_key
    with pytest.raises(crypto.DecryptionError):
        _ = OidcConnection.objects.for_org(org).get().client_secret
