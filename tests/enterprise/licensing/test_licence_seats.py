# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Seats = active people with a membership; past the seats adding warns, past the margin
it is refused (through the service, the API and the CLI alike)."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest

from potluck.accounts import services as accounts
from potluck.accounts.models import Membership, User
from potluck.errors import Forbidden
from potluck_enterprise.licensing import services
from potluck_enterprise.licensing.services import SeatWarning


def add(org, email: str, role: str = "member") -> Membership:
    return accounts.add_member(org, email, role)


def test_seats_count_active_people_with_a_membership(db, org, other_org):
    assert services.seats_used() == 2  # the two owners
    add(org, "a@acme.test")
    add(other_org, "a@acme.test")  # one person in two organizations: one seat
    accounts.get_or_create_user("nobody@acme.test")  # no membership: no seat
    assert services.seats_used() == 3
    User.objects.filter(email="a@acme.test").update(is_active=False)
    assert services.seats_used() == 2


def test_past_the_seats_adding_warns_and_past_the_margin_it_is_refused(licensed, org):
    licensed(seats=3)  # margin: max(1, 10%) = 1, so at most 4
    add(org, "two@acme.test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        add(org, "three@acme.test")  # seat 3 of 3: no warning
    with pytest.warns(SeatWarning, match=r"adding four@acme.test uses seat 4 of the licence's "
                                         r"3 \(adding members is refused past 4\)"):
        add(org, "four@acme.test")
    with pytest.raises(Forbidden) as refused:
        add(org, "five@acme.test")
    assert refused.value.message == ("the licence allows 3 seats (at most 4 with its margin) "
                                     "and 4 are in use: remove a member or install a licence "
                                     "with more seats")
    assert refused.value.field == "email"
    assert not User.objects.filter(email="five@acme.test").exists()  # nothing half-written
    status = services.status()
    assert status.seats_used == 4
    assert status.warnings == ["4 people use seats, more than the licence's 3; adding members "
                               "is refused past 4"]


def test_the_margin_is_a_tenth_of_the_seats(licensed, org):
    licensed(seats=30)
    assert services.status().as_dict()["seats_limit"] == 33


def test_someone_who_already_holds_a_seat_can_join_another_org_at_the_limit(
        licensed, org, other_org):
    licensed(seats=1)  # limit 2; two owners hold both
    with pytest.raises(Forbidden):
        add(org, "new@acme.test")
    add(org, "owner@globex.test")  # holds a seat already
    assert Membership.objects.filter(user__email="owner@globex.test").count() == 2


def test_without_a_licence_in_force_there_is_no_seat_limit(licensed, issuer, clock, org):
    for n in range(5):
        add(org, f"before{n}@acme.test")  # no licence installed
    licensed(seats=1, grace_days=0)
    with pytest.raises(Forbidden):
        add(org, "during@acme.test")
    clock.set(issuer.epoch + timedelta(days=365))  # expired, no grace
    add(org, "after@acme.test")
    assert services.seats_used() == 7


def _accept_link(email: str, password: str = "a-long-enough-password-4711"):
    """The invited person (no account yet) accepts by the link mailed to them."""
    import re

    from django.core import mail
    from rest_framework.test import APIClient

    body = [m for m in mail.outbox if m.to == [email]][-1].body
    token = re.search(r"token=([\w-]+)", body).group(1)
    return APIClient().post("/api/invitations/accept", {"token": token, "password": password},
                            format="json")


def test_invitations_take_seats_only_when_accepted_and_past_the_margin_are_refused(
        licensed, org, user_client):
    admin = user_client(org, "admin", email="admin@acme.test")  # seat 2
    licensed(seats=2)  # limit 3
    for email in ("third@acme.test", "fourth@acme.test", "fifth@acme.test"):
        invited = admin.post("/api/members", {"email": email, "role": "member"},
                             format="json")
        assert invited.status_code == 201, invited.json()
    assert services.seats_used() == 2  # pending invitations hold no seat

    with pytest.warns(SeatWarning):
        third = _accept_link("third@acme.test")
    refused = _accept_link("fourth@acme.test")

    assert third.status_code == 200, third.json()
    assert refused.status_code == 403
    assert refused.json() == {"email": ["the licence allows 2 seats (at most 3 with its margin) "
                                        "and 3 are in use: remove a member or install a "
                                        "licence with more seats"]}
    # Nothing half-written: no account, no membership, and the invitation is still open.
    assert not User.objects.filter(email="fourth@acme.test").exists()
    assert not Membership.objects.filter(user__email="fourth@acme.test").exists()
    assert admin.get("/api/invitations", {"status": "pending"}).json()["count"] == 2
    Membership.objects.filter(user__email="third@acme.test").delete()  # a seat frees up
    with pytest.warns(SeatWarning, match="fourth@acme.test uses seat 3"):
        assert _accept_link("fourth@acme.test").status_code == 200
