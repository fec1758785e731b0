# SPDX-License-Identifier: Apache-2.0
"""POST /api/keys/playground: the console Playground's key, one per person and org.

Each call gives a fresh one-day, inference-only key and revokes the person's earlier
Playground key in that organization, so a walk through the console leaves one active
key, not one per browser session. Keys the person made by hand, other people's
Playground keys and other organizations' keys are left alone.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from potluck.accounts import services
from potluck.accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def issue(client, org=None):
    headers = {"HTTP_X_POTLUCK_ORGANIZATION": org.slug} if org is not None else {}
    return client.post("/api/keys/playground", **headers)


def test_a_playground_key_is_inference_only_expires_in_a_day_and_works(org, user_client):
    client = user_client(org, "member")
    response = issue(client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "console playground" and body["scopes"] == ["inference"]
    assert body["created_by"] == client.user.email and body["is_active"] is True
    key = ApiKey.objects.get(pk=body["id"])
    assert timedelta(hours=23) < key.expires_at - timezone.now() <= timedelta(days=1)
    assert services.authenticate_api_key(body["key"]) == key
    assert body["key"] not in ApiKey.objects.filter(pk=key.pk).values_list(
        "secret_hash", flat=True)


def test_asking_again_replaces_the_persons_earlier_playground_key(org, user_client):
    client = user_client(org, "member")
    first = issue(client).json()
    second = issue(client).json()
    third = issue(client).json()
    assert len({first["id"], second["id"], third["id"]}) == 3
    active = [k["id"] for k in client.get("/api/keys").json()["results"] if k["is_active"]]
    assert active == [third["id"]]
    assert services.authenticate_api_key(first["key"]) is None
    assert services.authenticate_api_key(second["key"]) is None
    assert services.authenticate_api_key(third["key"]) is not None


def test_other_keys_other_people_and_other_orgs_are_left_alone(org, other_org, user_client):
    alice = user_client(org, "member", email="alice@acme.test")
    bob = user_client(org, "member", email="bob@acme.test")
    services.add_member(other_org, "alice@acme.test", "member")
    # Alice's own long-lived key that happens to have the same name and scope.
    by_hand, _ = services.create_api_key(
        org, "console playground", scopes=["inference"], created_by=alice.user,
        expires_at=timezone.now() + timedelta(days=30))
    bobs = issue(bob).json()
    alices_elsewhere = issue(alice, other_org).json()

    issue(alice, org)
    issue(alice, org)

    by_hand.refresh_from_db()
    assert by_hand.is_active
    assert ApiKey.objects.get(pk=bobs["id"]).is_active
    elsewhere = ApiKey.objects.get(pk=alices_elsewhere["id"])
    assert elsewhere.is_active and elsewhere.organization == other_org
    mine = ApiKey.objects.filter(organization=org, created_by=alice.user,
                                 name="console playground", revoked_at__isnull=True)
    assert mine.count() == 2  # the hand-made one and the newest Playground key


def test_a_viewer_cannot_get_one_and_nothing_is_made(org, user_client):
    client = user_client(org, "viewer")
    response = issue(client)
    assert response.status_code == 403
    assert "inference" in response.json()["detail"]
    assert not ApiKey.objects.filter(organization=org).exists()


def test_an_api_key_cannot_get_one(org, client_for):
    response = issue(client_for(org, ["inference", "write", "read", "admin"]))
    assert response.status_code == 403
    assert ApiKey.objects.filter(organization=org, name="console playground").count() == 0


def test_another_orgs_header_is_404_not_a_key_there(org, other_org, user_client):
    client = user_client(org, "owner")
    response = issue(client, other_org)
    assert response.status_code == 404
    assert not ApiKey.objects.filter(organization=other_org).exists()


def test_signed_out_is_401():
    from rest_framework.test import APIClient

    assert APIClient().post("/api/keys/playground").status_code == 401
