# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck sso``: the operator's SSO commands (verify a domain without DNS, rotate keys)."""

from __future__ import annotations

import click

from potluck.cli.context import CliError, needs_django


@click.group("sso")
def sso_group() -> None:
    """Single sign-on: email domains and the encryption of stored SSO secrets."""


@sso_group.command("domains")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def list_domains(org_slug: str) -> None:
    """List an organization's email domains and how to verify them."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.sso import domains
    from potluck_enterprise.sso.models import EmailDomain

    org = get_organization(org_slug)
    rows = list(EmailDomain.objects.for_org(org))
    if not rows:
        click.echo(f"{org.slug} has claimed no email domain")
    for row in rows:
        state = f"verified ({row.verification_method})" if row.is_verified else "unverified"
        enforced = ", SSO enforced" if row.enforce_sso else ""
        click.echo(f"{row.domain}: {state}{enforced}")
        if not row.is_verified:
            click.echo(f"  TXT {domains.txt_record_name(row)} \"{domains.txt_record_value(row)}\"")


@sso_group.command("verify-domain")
@click.argument("domain")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@needs_django
def verify_domain(domain: str, org_slug: str) -> None:
    """Mark DOMAIN verified for the organization, on the operator's word (no DNS check).

    The organization must have claimed it first (POST /api/sso/domains).
    """
    from potluck.accounts.services import get_organization
    from potluck_enterprise.sso import domains
    from potluck_enterprise.sso.models import EmailDomain

    org = get_organization(org_slug)
    name = domains.clean_domain(domain)
    row = EmailDomain.objects.for_org(org).filter(domain=name).first()
    if row is None:
        raise CliError(f"{org.slug} has not claimed {name}; an admin adds it first")
    domains.verify_by_operator(row)
    click.echo(f"{name} is verified for {org.slug}")


@sso_group.command("rotate-secrets")
@needs_django
def rotate_secrets() -> None:
    """Re-encrypt stored SSO secrets under the current SECRET_KEY (after a key change,
    with the old key kept in SECRET_KEY_FALLBACKS until this has run)."""
    from potluck_enterprise.sso import services

    changed = services.rotate_secrets()
    click.echo(f"re-encrypted {changed} secret{'s' if changed != 1 else ''}")
