# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): credits' routes, ``potluck credits``,
its periodic tasks and billing's ``invoice_paid`` receiver (always; each works only while
the licence grants "credits"). Touches no database."""

from __future__ import annotations

from typing import Any

from potluck import extensions


def _routes() -> list[Any]:
    from potluck_enterprise.credits.api import routes

    return routes()


def install() -> None:
    from potluck.celery_app import app
    from potluck_enterprise.billing.signals import invoice_paid
    from potluck_enterprise.credits.cli import credits_group
    from potluck_enterprise.credits.revenue import on_invoice_paid
    from potluck_enterprise.credits.tasks import BEAT_SCHEDULE

    extensions.api_routes.register("credits", _routes, replace=True)
    extensions.cli_commands.register("credits", credits_group, replace=True)
    invoice_paid.connect(on_invoice_paid, weak=False, dispatch_uid="credits-revenue-share")
    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **BEAT_SCHEDULE}
