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


def test_the_api_refuses_past_the_margin_in_drf_shape(licensed, org, user_client):
    admin = user_client(org, "admin", email="admin@acme.test")  # seat 2
    licensed(seats=2)  # limit 3
    with pytest.warns(SeatWarning):
        created = admin.post("/api/members", {"email": "third@acme.test", "role": "member"},
                             format="json")
    assert created.status_code == 201, created.json()
    refused = admin.post("/api/members", {"email": "fourth@acme.test", "role": "member"},
                         format="json")
    assert refused.status_code == 403
    assert refused.json() == {"email": ["the licence allows 2 seats (at most 3 with its margin) "
                                        "and 3 are in use: remove a member or install a "
                                        "licence with more seats"]}
    assert not Membership.objects.filter(user__email="fourth@acme.test").exists()
