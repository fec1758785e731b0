# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck compliance``: profiles, variants and their builds (the operator's commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from potluck import env
from potluck.cli.context import CliError, needs_django


def _licensed() -> None:
    from potluck import extensions
    from potluck_enterprise.compliance.api import NOT_LICENSED
    from potluck_enterprise.compliance.feature import FEATURE_KEY
    from potluck_enterprise.licensing.gating import gate

    gate.refresh()
    if not extensions.feature_available(FEATURE_KEY):
        raise CliError(NOT_LICENSED)


def _default_api_base() -> str:
    return env.env_str("POTLUCK_COMPLIANCE_GATEWAY_URL") or (
        f"http://{env.env_str('POTLUCK_HOST', '127.0.0.1')}:"
        f"{env.env_int('POTLUCK_PORT', 8000)}/v1")


@click.group("compliance")
def compliance_group() -> None:
    """Compliance variants: profiles, builds (fine-tune, gate, publish), model cards."""


@compliance_group.command("profiles")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def list_profiles(org_slug: str) -> None:
    """List the organization's profiles and the built-in ones."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.compliance import services

    _licensed()
    for item in services.list_profiles(get_organization(org_slug)):
        origin = "built-in" if item["builtin"] else f"version {item['version']}"
        click.echo(f"{item['key']}: {item['spec']['title']} ({origin})")


@compliance_group.command("show-profile")
@click.argument("key")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def show_profile(key: str, org_slug: str) -> None:
    """Print a profile's spec as JSON (edit it and give it back to edit-profile)."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.compliance import services

    _licensed()
    for item in services.list_profiles(get_organization(org_slug)):
        if item["key"] == key:
            click.echo(json.dumps(item["spec"], indent=2))
            return
    raise CliError(f"no compliance profile {key!r}")


@compliance_group.command("edit-profile")
@click.argument("key")
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def edit_profile(key: str, spec_file: Path, org_slug: str) -> None:
    """Create or replace profile KEY from SPEC_FILE (JSON); variants using it follow."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.compliance import services

    _licensed()
    try:
        spec = json.loads(spec_file.read_text())
    except json.JSONDecodeError as exc:
        raise CliError(f"{spec_file} is not JSON: {exc}") from None
    profile = services.save_profile(get_organization(org_slug), key, spec,
                                    based_on=key if key in _builtins() else "")
    click.echo(f"{profile.key} is at version {profile.version}")


def _builtins() -> list[str]:
    from potluck_enterprise.compliance.profiles import builtin_keys

    return builtin_keys()


@compliance_group.command("build")
@click.argument("profile")
@click.option("--base", "base_name", required=True, help="The base model (registered).")
@click.option("--org", "org_slug", default="default", show_default=True,
              help="The organization that owns the variant.")
@click.option("--name", default="", help="The variant's name (default: BASE:PROFILE).")
@click.option("--gateway", "api_base", default=_default_api_base,
              show_default="http://$POTLUCK_HOST:$POTLUCK_PORT/v1",
              help="The /v1 base URL the gate calls (POTLUCK_COMPLIANCE_GATEWAY_URL).")
@click.option("--no-tune", is_flag=True, help="Skip the fine-tune: guardrails on the base.")
@needs_django
def build(profile: str, base_name: str, org_slug: str, name: str, api_base: str,
          no_tune: bool) -> None:
    """Build a variant: fine-tune the recipe, run the gate, publish if it passes.

    Exit status 0 when published; 1 (with the failing cases) when not.
    """
    from potluck.accounts.services import get_organization
    from potluck_enterprise.compliance import build as builder
    from potluck_enterprise.compliance.models import VariantState

    _licensed()
    variant = builder.run(get_organization(org_slug), profile, base_name, api_base=api_base,
                          tune=not no_tune, name=name,
                          say=lambda line: click.echo(line, err=True))
    if variant.state != VariantState.PUBLISHED:
        raise CliError(f"{variant.name} was not published: {variant.error}")
    click.echo(variant.name)


@compliance_group.command("variants")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def list_variants(org_slug: str) -> None:
    """List the organization's variants and builds."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.compliance.models import Variant

    _licensed()
    for row in Variant.objects.for_org(get_organization(org_slug)).select_related("profile"):
        when = row.published_at or row.created_at
        click.echo(f"{row.name}\t{row.state}\t{row.profile.key} v{row.profile.version}\t"
                   f"{when:%Y-%m-%d %H:%M}\t{row.id}")


@compliance_group.command("card")
@click.argument("name")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def card(name: str, org_slug: str) -> None:
    """Print the model card (JSON) of the latest build of variant NAME."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.compliance import services
    from potluck_enterprise.compliance.models import Variant

    _licensed()
    row = (Variant.objects.for_org(get_organization(org_slug)).filter(name=name)
           .select_related("profile", "base", "model").order_by("-created_at").first())
    if row is None:
        raise CliError(f"no variant named {name!r}")
    json.dump(services.model_card(row), sys.stdout, indent=2)
    click.echo()
