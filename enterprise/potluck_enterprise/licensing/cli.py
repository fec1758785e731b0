# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck license install FILE`` and ``potluck license show`` (the operator's commands)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from potluck.cli.context import CliError, needs_django
from potluck_enterprise.licensing.format import MAX_TEXT_BYTES
from potluck_enterprise.licensing.gating import RECHECK_SECONDS


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def _print_status(body: dict[str, Any]) -> None:
    if not body["installed"]:
        click.echo("no licence installed: this is the community edition")
        click.echo(f"{'installation:':<14}{body['installation_id']}")
        if body["store_url"]:
            click.echo(f"{'buy:':<14}{body['store_url']}")
        return
    features = ", ".join(
        f["key"] + ("" if f["enabled"] else " (off)") for f in body["features"]) or "none"
    lines = [
        ("installation", body["installation_id"]),
        ("licence", body["license_id"] or "-"),
        ("licensee", body["licensee"] or "-"),
        ("organization", body["organization"] or "-"),
        ("state", body["state"]),
        ("features", features),
        ("seats", f"{body['seats_used']} used of {body['seats']}" if body["seats"] else "-"),
        ("issued", _when(body["issued_at"])),
        ("expires", _when(body["expires_at"])),
        ("grace until", _when(body["grace_ends_at"])),
        ("bound to", body["bound_to"] or "any installation"),
        ("installed", _when(body["installed_at"])
         + (f" by {body['installed_by']}" if body["installed_by"] else "")),
    ]
    for label, value in lines:
        click.echo(f"{label + ':':<14}{value}")
    for warning in body["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@click.group("license")
def license_group() -> None:
    """The enterprise licence: install one, see what it grants."""


@license_group.command("install")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@needs_django
def install(file: str) -> None:
    """Install the licence in FILE ("-" reads standard input); it replaces the current one."""
    from potluck_enterprise.licensing import services

    try:
        if file == "-":
            text = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
        else:
            with open(file, "rb") as handle:
                text = handle.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    record = services.install(text)
    click.echo(f"installed licence {record.license_id} for {record.licensee}; running "
               f"processes apply it within {RECHECK_SECONDS:g} seconds")
    _print_status(services.status().as_dict())


@license_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as GET /api/license.")
@needs_django
def show(as_json: bool) -> None:
    """Show the installed licence: licensee, features, seats, expiry and warnings."""
    from potluck_enterprise.licensing import services

    body = services.status().as_dict()
    if as_json:
        click.echo(json.dumps(body, default=lambda v: v.isoformat(), indent=2))
        return
    _print_status(body)


@license_group.command("renew")
@needs_django
def renew() -> None:
    """Ask the licence store (POTLUCK_LICENSE_STORE_URL) for a renewed licence now."""
    from potluck_enterprise.licensing import renewal

    outcome = renewal.renew()
    if outcome.status in ("failed", "skipped"):
        raise CliError(f"no renewal: {outcome.detail}")
    click.echo(f"{outcome.status}: {outcome.detail}")
