# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): the store's pages (/store/), its API
(/api/store/), ``potluck store`` and its periodic task. Always mounted, so that settings
decide at run time: where no issuer key is configured each answers "not found" (and the
CLI says the store is off). Touches no database and reads no key."""

from __future__ import annotations

from typing import Any

from potluck import extensions


def _pages() -> list[Any]:
    from potluck_enterprise.store.views import routes

    return routes()


def _api() -> list[Any]:
    from potluck_enterprise.store.api import routes

    return routes()


def install() -> None:
    from potluck_enterprise.store import log_redaction
    from potluck_enterprise.store.cli import store_group

    log_redaction.install()
    extensions.site_routes.register("store", _pages, replace=True)
    extensions.api_routes.register("store", _api, replace=True)
    extensions.cli_commands.register("store", store_group, replace=True)
    from potluck.celery_app import app
    from potluck_enterprise.store.tasks import BEAT_SCHEDULE

    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **BEAT_SCHEDULE}
