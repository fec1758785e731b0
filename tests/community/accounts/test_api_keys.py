# SPDX-License-Identifier: Apache-2.0
"""API keys: stored hashed, shown once, revocable, expiring, scoped."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from potluck.accounts import services
from potluck.accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_only_a_hash_and_a_lookup_prefix_are_stored(org):
    key, secret = services.create_api_key(org, "ci")
    row = ApiKey.objects.get(pk=key.pk)
    assert secret.startswith(f"pot_{row.lookup}_")
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(getattr(row, f.attname)) for f in ApiKey._meta.fields)
    assert secret not in stored
    assert secret.split("_", 2)[2] not in stored


def test_a_key_authenticates_and_records_last_use(org):
    key, secret = services.create_api_key(org, "ci")
    response = _bearer(secret).get("/api/me")
    assert response.status_code == 200, response.content
    assert response.json()["organization"]["slug"] == org.slug
    assert response.json()["api_key"] == key.display_prefix
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize("mangle", [
    lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # right lookup, wrong secret
    lambda s: "pot_" + "x" * 12 + "_" + s.split("_", 2)[2],  # unknown lookup
    lambda s: "sk-" + s,  # not our format at all
])
def test_a_wrong_key_is_refused_with_401(org, mangle):
    _, secret = services.create_api_key(org, "ci")
    response = _bearer(mangle(secret)).get("/api/me")
    assert response.status_code == 401


def test_a_revoked_key_stops_working_at_once(org):
    key, secret = services.create_api_key(org, "ci")
    client = _bearer(secret)
    assert client.get("/api/me").status_code == 200
    services.revoke_api_key(key)
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_expired_key_is_refused(org):
    key, secret = services.create_api_key(org, "ci", expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _bearer(secret).get("/api/me").status_code == 401


def test_the_secret_is_shown_once_at_creation_and_never_listed(org, client_for):
    client = client_for(org, ["inference", "read", "write"])
    created = client.post("/api/keys", {"name": "deploy bot", "scopes": ["inference"]},
                          format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["key"]
    assert _bearer(secret).get("/api/me").status_code == 200  # who-am-I needs no scope
    assert _bearer(secret).get("/api/models").status_code == 403  # inference-only: no reads
    listing = client.get("/api/keys").content.decode()
    one = client.get(f"/api/keys/{created.json()['id']}").content.decode()
    assert secret not in listing and secret not in one
    assert created.json()["prefix"] in listing


def test_a_key_cannot_grant_more_than_its_maker_holds(org, client_for):
    client = client_for(org, ["read", "write"])
    response = client.post("/api/keys", {"name": "escalate", "scopes": ["admin"]}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["scopes"][0]
    assert not ApiKey.objects.filter(name="escalate").exists()


def test_revoking_through_the_api(org, client_for, user_client):
    admin = user_client(org, "admin")
    created = admin.post("/api/keys", {"name": "temp"}, format="json").json()
    revoked = admin.post(f"/api/keys/{created['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["is_active"] is False
    assert _bearer(created["key"]).get("/api/me").status_code == 401


def test_a_member_cannot_revoke_someone_elses_key(org, user_client):
    admin = user_client(org, "admin")
    created = admin.post("/api/keys", {"name": "admins"}, format="json").json()
    member = user_client(org, "member")
    response = member.post(f"/api/keys/{created['id']}/revoke")
    assert response.status_code == 403
    assert ApiKey.objects.get(pk=created["id"]).revoked_at is None


def test_a_key_may_revoke_the_keys_it_made_and_only_an_admin_key_any_other(org, client_for):
    """Issue 13.8: a key with the scopes to create a key got 403 revoking the key it had
    just created, because keys created by keys recorded no creator."""
    maker = client_for(org, ["read", "write", "inference"])
    made = maker.post("/api/keys", {"name": "child", "scopes": ["inference"]},
                      format="json").json()
    assert ApiKey.objects.get(pk=made["id"]).created_by_key is not None
    stranger = client_for(org, ["read", "write", "inference"])
    other = stranger.post("/api/keys", {"name": "other", "scopes": ["inference"]},
                          format="json").json()
    assert maker.post(f"/api/keys/{other['id']}/revoke").status_code == 403  # not its own
    assert maker.post(f"/api/keys/{made['id']}/revoke").status_code == 200
    assert ApiKey.objects.get(pk=made["id"]).revoked_at is not None
    admin_key = client_for(org, ["read", "write", "admin"])
    assert admin_key.post(f"/api/keys/{other['id']}/revoke").status_code == 200


def test_unknown_scope_is_a_400_naming_the_field(org, client_for):
    response = client_for(org, ["read", "write"]).post(
        "/api/keys", {"name": "x", "scopes": ["root"]}, format="json")
    assert response.status_code == 400
    assert "scopes" in response.json()


def test_an_expiry_in_the_past_is_refused(org):
    with pytest.raises(services.InvalidInput) as info:
        services.create_api_key(org, "old", expires_at=timezone.now() - timedelta(days=1))
    assert info.value.field == "expires_at"
