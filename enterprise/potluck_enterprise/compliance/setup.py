# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): compliance's and the audit log's routes
and CLI groups (always; each answers only while the licence grants "compliance"), and
their periodic tasks. Touches no database. (The console panels come and go with the
licence: ``feature.py``.)"""

from __future__ import annotations

from typing import Any

from potluck import extensions
from potluck_enterprise.audit.cli import audit_group
from potluck_enterprise.compliance.cli import compliance_group


def _routes() -> list[Any]:
    from potluck_enterprise.compliance.api import routes

    return routes()


def install() -> None:
    # replace=True: ready() may run again in one process (tests that reload apps).
    extensions.api_routes.register("compliance", _routes, replace=True)
    extensions.cli_commands.register("compliance", compliance_group, replace=True)
    extensions.cli_commands.register("audit", audit_group, replace=True)
    from potluck_enterprise.audit import tasks  # noqa: F401  (periodic checkpoints, purge)
