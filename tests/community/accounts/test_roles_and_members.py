# SPDX-License-Identifier: Apache-2.0
"""Roles decide what a person may do; an organization always keeps an owner."""

from __future__ import annotations

import pytest

from potluck.accounts import services
from potluck.accounts.models import Membership, Organization

pytestmark = pytest.mark.django_db


def test_adding_a_member_by_email_invites_them(org, user_client):
    """The person joins when they accept (tests/community/accounts/test_invitations.py)."""
    admin = user_client(org, "admin")
    response = admin.post("/api/members", {"email": "New.Person@Acme.test", "role": "member"},
                          format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["email"], body["role"], body["status"]) == (
        "new.person@acme.test", "member", "pending")
    assert not Membership.objects.filter(organization=org,
                                         user__email="new.person@acme.test").exists()


def test_a_member_cannot_add_members(org, user_client):
    member = user_client(org, "member")
    response = member.post("/api/members", {"email": "x@acme.test", "role": "viewer"},
                           format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(user__email="x@acme.test").exists()


def test_a_viewer_reads_but_cannot_write(org, user_client):
    viewer = user_client(org, "viewer")
    assert viewer.get("/api/members").status_code == 200
    assert viewer.post("/api/keys", {"name": "k"}, format="json").status_code == 403


def test_only_an_owner_makes_owners(org, user_client):
    admin = user_client(org, "admin")
    target = user_client(org, "member", email="m@acme.test")
    membership = Membership.objects.get(user=target.user, organization=org)
    response = admin.patch(f"/api/members/{membership.pk}", {"role": "owner"}, format="json")
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == "member"
    owner = user_client(org, "owner", email="owner@acme.test")
    response = owner.patch(f"/api/members/{membership.pk}", {"role": "owner"}, format="json")
    assert response.status_code == 200
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_the_last_owner_can_be_neither_demoted_nor_removed(org, user_client):
    owner = user_client(org, "owner", email="owner@acme.test")
    only_owner = Membership.objects.get(organization=org, role="owner")
    demote = owner.patch(f"/api/members/{only_owner.pk}", {"role": "admin"}, format="json")
    assert demote.status_code == 409
    remove = owner.delete(f"/api/members/{only_owner.pk}")
    assert remove.status_code == 409
    assert Membership.objects.get(pk=only_owner.pk).role == "owner"


def test_a_bad_role_is_a_400_naming_the_field(org, user_client):
    response = user_client(org, "admin").post(
        "/api/members", {"email": "y@acme.test", "role": "god"}, format="json")
    assert response.status_code == 400
    assert "role" in response.json()


def test_a_duplicate_organization_is_refused_and_nothing_is_half_written(org):
    users_before = set(Membership.objects.values_list("user__email", flat=True))
    with pytest.raises(services.Conflict):
        services.create_organization("Acme", owner=services.get_or_create_user("z@x.test"))
    assert Organization.objects.filter(slug="acme").count() == 1
    assert set(Membership.objects.values_list("user__email", flat=True)) == users_before


def test_people_create_organizations_and_own_them(user_client, org):
    client = user_client(org, "member", email="founder@new.test")
    response = client.post("/api/orgs", {"name": "New Venture"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["slug"] == "new-venture"
    assert Membership.objects.get(organization__slug="new-venture").role == "owner"
    bad = client.post("/api/orgs", {"name": "x", "slug": "Not A Slug!"}, format="json")
    assert bad.status_code == 400 and "slug" in bad.json()


def test_keys_cannot_create_organizations(org, client_for):
    response = client_for(org, ["read", "write", "admin"]).post(
        "/api/orgs", {"name": "Shadow"}, format="json")
    assert response.status_code == 403
    assert not Organization.objects.filter(slug="shadow").exists()
