# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): billing's routes, ``potluck billing`` and
its periodic tasks (always; each answers or works only while the licence grants
"billing"; the console panel comes with the feature, see ``feature``). Touches no
database."""

from __future__ import annotations

from typing import Any

from potluck import extensions
from potluck_enterprise.billing.cli import billing_group


def _routes() -> list[Any]:
    from potluck_enterprise.billing.api import routes

    return routes()


def install() -> None:
    # replace=True: ready() may run again in one process (tests that reload apps).
    extensions.api_routes.register("billing", _routes, replace=True)
    extensions.cli_commands.register("billing", billing_group, replace=True)
    from potluck.celery_app import app
    from potluck_enterprise.billing.tasks import BEAT_SCHEDULE

    # Beat reads its schedule after Django is set up (Celery's Django fix-up), so entries
    # added here are scheduled; they are plain names, so a process without them is fine.
    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **BEAT_SCHEDULE}
