# SPDX-License-Identifier: Apache-2.0
"""A key or person of one organization never sees or touches another's objects."""

from __future__ import annotations

import pytest

from potluck.accounts import services
from potluck.accounts.models import ApiKey, Membership
from potluck.registry.models import RegisteredModel, Source

pytestmark = pytest.mark.django_db


@pytest.fixture
def globex_objects(other_org):
    key, _ = services.create_api_key(other_org, "globex-secret-key")
    model = RegisteredModel.objects.create(name="globex-llm", organization=other_org,
                                           source=Source.HUGGINGFACE, repo_id="globex/llm")
    membership = Membership.objects.get(organization=other_org)
    return {"key": key, "model": model, "membership": membership}


def test_lists_show_only_the_callers_organization(org, client_for, globex_objects):
    client = client_for(org, ["read"])
    keys = client.get("/api/keys").json()["results"]
    assert {k["name"] for k in keys} == {"test"}
    members = client.get("/api/members").json()["results"]
    assert {m["email"] for m in members} == {"owner@acme.test"}
    models = client.get("/api/models").json()["results"]
    assert "globex-llm" not in {m["name"] for m in models}
    orgs = client.get("/api/orgs").json()["results"]
    assert [o["slug"] for o in orgs] == ["acme"]


@pytest.mark.parametrize("method,path", [
    ("get", "/api/keys/{key}"),
    ("post", "/api/keys/{key}/revoke"),
    ("get", "/api/models/{model}"),
    ("delete", "/api/models/{model}"),
    ("get", "/api/members/{membership}"),
    ("delete", "/api/members/{membership}"),
    ("get", "/api/orgs/globex"),
])
def test_another_orgs_object_answers_404_and_is_untouched(org, client_for, globex_objects,
                                                           method, path):
    client = client_for(org, ["read", "write", "admin"])
    url = path.format(key=globex_objects["key"].pk, model=globex_objects["model"].pk,
                      membership=globex_objects["membership"].pk)
    response = getattr(client, method)(url)
    assert response.status_code == 404, (url, response.status_code)
    assert "globex" not in response.content.decode().lower()
    assert ApiKey.objects.get(pk=globex_objects["key"].pk).revoked_at is None
    assert RegisteredModel.objects.filter(pk=globex_objects["model"].pk).exists()
    assert Membership.objects.filter(pk=globex_objects["membership"].pk).exists()


def test_a_person_cannot_switch_into_an_org_they_do_not_belong_to(org, other_org, user_client):
    client = user_client(org, "owner")
    response = client.get("/api/me", HTTP_X_POTLUCK_ORGANIZATION=other_org.slug)
    assert response.status_code == 404
    assert client.get("/api/me", HTTP_X_POTLUCK_ORGANIZATION=org.slug).status_code == 200


def test_a_person_in_two_orgs_picks_one_by_header(org, other_org, user_client):
    client = user_client(org, "viewer", email="both@example.test")
    Membership.objects.create(organization=other_org, user=client.user, role="admin")
    me = client.get("/api/me", HTTP_X_POTLUCK_ORGANIZATION=other_org.slug).json()
    assert me["organization"]["slug"] == other_org.slug
    assert "admin" in me["capabilities"]
    slugs = {o["slug"] for o in client.get("/api/orgs").json()["results"]}
    assert slugs == {org.slug, other_org.slug}


def test_a_malformed_id_is_404_not_500(org, client_for):
    response = client_for(org, ["read"]).get("/api/keys/not-a-uuid")
    assert response.status_code == 404


def test_unauthenticated_requests_get_401(db):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/models").status_code == 401
    assert APIClient().get("/api/me").status_code == 401
