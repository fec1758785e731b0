# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Installing a licence, its history, and its states over time (with a controlled clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from potluck.errors import InvalidInput
from potluck_enterprise.licensing import services
from potluck_enterprise.licensing.format import LicenceError, Reason
from potluck_enterprise.licensing.models import InstalledLicence

pytestmark = pytest.mark.django_db


def test_installing_stores_the_text_and_the_fields(issuer, clock):
    record = services.install(issuer.licence(seats=5, features=["sso"]))
    assert record.active and record.installed_at == clock.now
    assert (record.license_id, record.licensee, record.organization) == (
        "lic-test-0001", "Acme Corp", "Acme")
    assert (record.features, record.seats, record.grace_days) == (["sso"], 5, 14)
    assert record.raw.startswith("-----BEGIN POTLUCK LICENSE-----")
    assert services.current() == record


def test_installing_again_replaces_the_licence_and_keeps_the_history(issuer, clock):
    first = services.install(issuer.licence(license_id="lic-1"))
    clock.advance(hours=1)
    second = services.install(issuer.licence(license_id="lic-2", seats=50))
    first.refresh_from_db()
    assert services.current() == second
    assert not first.active and first.replaced_at == clock.now
    assert [r.license_id for r in services.history()] == ["lic-2", "lic-1"]
    assert InstalledLicence.objects.filter(active=True).count() == 1


def test_the_database_allows_one_active_licence_only(issuer, clock):
    services.install(issuer.licence())
    row = InstalledLicence.objects.get()
    row.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save(force_insert=True)


def test_a_refused_licence_leaves_the_installed_one_in_place(issuer, clock):
    good = services.install(issuer.licence(license_id="lic-good"))
    envelope_text = issuer.licence(license_id="lic-bad").replace("A", "B", 1)
    with pytest.raises(LicenceError):
        services.install(envelope_text)
    with pytest.raises(LicenceError) as caught:
        services.install(issuer.licence(issued_at=clock.now + timedelta(hours=1)))
    assert caught.value.reason is Reason.NOT_YET_VALID
    assert services.current() == good
    assert InstalledLicence.objects.count() == 1


def test_a_licence_past_its_grace_is_not_installed(issuer, clock):
    clock.advance(days=400)  # issued at the epoch for 365 days, 14 days of grace
    with pytest.raises(InvalidInput) as caught:
        services.install(issuer.licence())
    assert caught.value.message == ("the licence lic-test-0001 expired on 2027-01-01 and its "
                                    "grace period ended on 2027-01-15; nothing was installed")
    assert caught.value.field == "license"
    assert services.current() is None


def test_with_nothing_installed_the_status_says_so(db, clock):
    status = services.status()
    assert (status.state, status.licence, status.warnings) == ("none", None, [])
    body = status.as_dict()
    assert body["installed"] is False and body["features"] == [] and body["seats"] is None


def test_states_and_warnings_follow_the_clock(issuer, clock):
    services.install(issuer.licence(days=365, grace_days=14))
    expires = issuer.epoch + timedelta(days=365)

    status = services.status()
    assert (status.state, status.warnings, status.in_force) == ("active", [], True)

    clock.set(expires - timedelta(days=30))
    assert services.status().state == "expiring"
    assert services.status().warnings == ["the licence expires in 30 days, on 2027-01-01"]

    clock.set(expires - timedelta(hours=2))
    assert services.status().warnings == [
        "the licence expires in 1 day, on 2027-01-01: install its renewal now"]

    clock.set(expires)
    status = services.status()
    assert (status.state, status.in_force) == ("grace", True)
    assert status.warnings == ["the licence expired on 2027-01-01; enterprise features stay on "
                               "during the grace period, until 2027-01-15"]

    clock.set(expires + timedelta(days=14))
    status = services.status()
    assert (status.state, status.in_force) == ("expired", False)
    assert status.warnings == ["the licence expired on 2027-01-01 and its grace period ended "
                               "on 2027-01-15: enterprise features are off (their data is kept)"]
    assert services.current() is not None  # the row stays; nothing is deleted


def test_a_licence_without_grace_is_expired_at_its_expiry(issuer, clock):
    services.install(issuer.licence(days=10, grace_days=0))
    clock.set(issuer.epoch + timedelta(days=10))
    assert services.status().state == "expired"


def test_a_row_edited_in_the_database_grants_nothing(issuer, clock):
    services.install(issuer.licence(features=["sso"], seats=5))
    row = InstalledLicence.objects.get()
    # The displayed fields are copies; what counts is the signed text.
    InstalledLicence.objects.filter(pk=row.pk).update(features=["sso", "credits"], seats=500)
    assert services.status().licence.seats == 5
    tampered = row.raw.replace(row.raw.splitlines()[1], row.raw.splitlines()[1][::-1])
    InstalledLicence.objects.filter(pk=row.pk).update(raw=tampered)
    status = services.status()
    assert (status.state, status.licence, status.in_force) == ("invalid", None, False)
    assert status.warnings[0].startswith("the installed licence no longer verifies (")
    assert status.warnings[0].endswith("); enterprise features are off")


def test_a_clock_set_back_before_issue_invalidates_the_licence(issuer, clock):
    services.install(issuer.licence())
    clock.set(issuer.epoch - timedelta(days=1))
    status = services.status()
    assert status.state == "invalid"
    assert "later than this server's clock" in status.warnings[0]


def test_features_unknown_to_this_version_are_listed_off_with_a_warning(issuer, clock):
    services.install(issuer.licence(features=["sso", "teleport"]))
    status = services.status()
    assert status.warnings == ["the licence grants 'teleport', which this version of Potluck "
                               "does not know"]
    assert status.as_dict()["features"] == [
        {"key": "sso", "title": "Single sign-on (OIDC, SAML)", "enabled": True},
        {"key": "teleport", "title": "teleport", "enabled": False},
    ]
