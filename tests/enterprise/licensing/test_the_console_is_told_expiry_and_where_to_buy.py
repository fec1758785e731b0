# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""What ``GET /api/license`` tells the console beyond the licence: this installation's id,
the expiry notice (30 days, 7 days, grace, expired) and the store's link for this
installation with the seats in use; none without a store."""

from __future__ import annotations

from datetime import timedelta

from potluck_enterprise.licensing import installation

EXPIRES = "2027-01-01T00:00:00+00:00"


def test_the_expiry_notice_follows_the_clock(licensed, clock, org, user_client):
    from datetime import datetime

    licensed(features=["sso"])
    reader = user_client(org, "viewer")
    expires = datetime.fromisoformat(EXPIRES)
    seen = []
    for moment in (expires - timedelta(days=31), expires - timedelta(days=30),
                   expires - timedelta(days=8), expires - timedelta(days=7),
                   expires - timedelta(hours=1), expires, expires + timedelta(days=14)):
        clock.set(moment)
        body = reader.get("/api/license").json()
        seen.append((body["expiry_notice"], body["days_left"]))
    assert seen == [(None, 31), ("30_days", 30), ("30_days", 8), ("7_days", 7),
                    ("7_days", 1), ("grace", 0), ("expired", 0)]


def test_the_store_link_carries_the_installation_and_seats(licensed, clock, org, user_client,
                                                           settings):
    reader = user_client(org, "viewer")
    settings.LICENSE_STORE_URL = ""
    body = reader.get("/api/license").json()
    assert body["store_url"] is None and body["online_renewal"]["enabled"] is False
    assert body["installation_id"] == installation.current_id()

    settings.LICENSE_STORE_URL = "https://store.example.com/"
    body = reader.get("/api/license").json()
    assert body["store_url"] == ("https://store.example.com/store/?installation_id="
                                 f"{installation.current_id()}&seats=2")
    assert body["online_renewal"] == {"enabled": True, "checked_at": None, "outcome": None}
    settings.LICENSE_ONLINE_RENEWAL = False
    assert reader.get("/api/license").json()["online_renewal"]["enabled"] is False
