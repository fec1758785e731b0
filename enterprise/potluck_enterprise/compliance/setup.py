# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Called once from the enterprise app's ready(): compliance's and the audit log's routes,
CLI groups and console panels (always; each answers only while the licence grants
"compliance"), and their periodic tasks. Touches no database."""

from __future__ import annotations

from typing import Any

from potluck import extensions
from potluck_enterprise.audit.cli import audit_group
from potluck_enterprise.compliance.cli import compliance_group

PANELS = (
    extensions.ConsolePanel(
        key="compliance-profiles", title="Compliance profiles",
        api_path="/api/compliance/profiles", order=500,
        description="Detectors and their actions per direction, topic rules, the "
                    "disclaimer and retention of each profile."),
    extensions.ConsolePanel(
        key="compliance-variants", title="Compliance variants",
        api_path="/api/compliance/variants", order=510,
        description="Variants, their builds and model cards (gate scores, suite, base, "
                    "adapter, failing cases)."),
    extensions.ConsolePanel(
        key="audit-log", title="Audit log", api_path="/api/audit/entries", order=520,
        description="The organization's hash-chained audit log, and its signed "
                    "checkpoints."),
)


def _routes() -> list[Any]:
    from potluck_enterprise.compliance.api import routes

    return routes()


def install() -> None:
    # replace=True: ready() may run again in one process (tests that reload apps).
    extensions.api_routes.register("compliance", _routes, replace=True)
    extensions.cli_commands.register("compliance", compliance_group, replace=True)
    extensions.cli_commands.register("audit", audit_group, replace=True)
    for panel in PANELS:
        extensions.console_panels.register(panel.key, panel, replace=True)
    from potluck_enterprise.audit import tasks  # noqa: F401  (periodic checkpoints, purge)
