# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): the pieces that exist with or without a
licence, and the gate that switches licensed features. Touches no database."""

from __future__ import annotations

from potluck import extensions
from potluck_enterprise.licensing import gating
from potluck_enterprise.licensing.api import routes
from potluck_enterprise.licensing.cli import license_group
from potluck_enterprise.licensing.seats import SeatPolicy

LICENCE_PANEL = extensions.ConsolePanel(
    key="licence",
    title="Licence",
    api_path="/api/license",
    order=900,
    description="Licensee, features, seats used of seats, expiry and warnings of the "
                "enterprise licence (or that none is installed).",
)


def install() -> None:
    # replace=True: ready() may run again in one process (tests that reload apps).
    extensions.console_panels.register(LICENCE_PANEL.key, LICENCE_PANEL, replace=True)
    extensions.api_routes.register("license", routes, replace=True)
    extensions.member_policies.register("licence-seats", SeatPolicy(), replace=True)
    extensions.cli_commands.register("license", license_group, replace=True)
    gating.start()
    from potluck.celery_app import app
    from potluck_enterprise.licensing.tasks import BEAT_SCHEDULE

    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **BEAT_SCHEDULE}
