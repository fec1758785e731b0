# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): mounts SSO's routes and the operator's
``potluck sso`` commands (always; each view answers only while the licence grants "sso").
Touches no database."""

from __future__ import annotations

from typing import Any

from potluck import extensions
from potluck_enterprise.sso.cli import sso_group


def _routes() -> list[Any]:
    from potluck_enterprise.sso.api import routes

    return routes()


def install() -> None:
    # replace=True: ready() may run again in one process (tests that reload apps).
    extensions.api_routes.register("sso", _routes, replace=True)
    extensions.cli_commands.register("sso", sso_group, replace=True)
