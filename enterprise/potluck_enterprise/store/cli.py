# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck store ...``: the vendor's commands for the licence store."""

from __future__ import annotations

import json

import click

from potluck.cli.context import CliError, needs_django, read_json_file


def _ensure_on() -> None:
    from potluck_enterprise.store import signing

    if not signing.enabled():
        raise CliError("the licence store is off on this installation: set "
                       "POTLUCK_STORE_ISSUER_KEY_FILE to the issuer's private key file")


def _sync() -> int:
    from potluck_enterprise.billing.stripe_adapter import (
        StripeNotConfigured,
        StripeRejected,
        StripeUnavailable,
    )
    from potluck_enterprise.store import plans

    try:
        return plans.sync_stripe()
    except (StripeNotConfigured, StripeRejected, StripeUnavailable) as exc:
        raise CliError(f"Stripe: {exc}") from None


@click.group("store")
def store_group() -> None:
    """The licence store (the vendor's installation): plans, licences issued, checks."""


@store_group.command("check")
@needs_django
def check() -> None:
    """Check the issuer key (readable, the private half of the shipped public key), the
    Stripe settings and the plans on sale."""
    from django.conf import settings

    from potluck_enterprise.store import signing
    from potluck_enterprise.store.models import Plan, PlanPrice

    _ensure_on()
    signing.check()
    click.echo(f"issuer key: {settings.STORE_ISSUER_KEY_FILE} matches the issuer public "
               "key that Potluck ships")
    click.echo("stripe: " + ("API key set" if settings.STORE_STRIPE_API_KEY else
                             "no API key (POTLUCK_STORE_STRIPE_API_KEY): only trials")
               + ", webhook secret " + ("set" if settings.STORE_STRIPE_WEBHOOK_SECRET else
                                        "missing (POTLUCK_STORE_STRIPE_WEBHOOK_SECRET)"))
    on_sale = PlanPrice.objects.filter(active=True, plan__active=True).exclude(
        stripe_price_id="").count()
    click.echo(f"plans: {Plan.objects.filter(active=True).count()} on sale, {on_sale} "
               "prices at Stripe")


@store_group.group("plans")
def plans_group() -> None:
    """The plans on sale."""


@plans_group.command("set")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--no-stripe", is_flag=True, help="Do not create the Stripe products and "
              "prices now (run `potluck store plans sync` later).")
@needs_django
def plans_set(file: str, no_stripe: bool) -> None:
    """Make the plans those of the JSON document in FILE ("-": standard input)."""
    from potluck_enterprise.store import plans

    _ensure_on()
    kept = plans.set_plans(read_json_file(file))
    click.echo(f"plans on sale: {', '.join(p.key for p in kept)}")
    if not no_stripe:
        click.echo(f"Stripe: {_sync()} new prices created")


@plans_group.command("sync")
@needs_django
def plans_sync() -> None:
    """Create the Stripe products and prices that the plans lack."""
    _ensure_on()
    click.echo(f"Stripe: {_sync()} new prices created")


@plans_group.command("show")
@needs_django
def plans_show() -> None:
    """Print the plans on sale as a plans document (JSON)."""
    from potluck_enterprise.store import plans

    click.echo(json.dumps(plans.document(), indent=2))


@store_group.command("licences")
@click.option("--email", default=None, help="Only this buyer's licences.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@needs_django
def licences(email: str | None, limit: int) -> None:
    """The licences the store issued, newest first."""
    from potluck_enterprise.store.models import IssuedLicence

    rows = IssuedLicence.objects.select_related("account").order_by("-issued_at")
    if email:
        rows = rows.filter(account__email=email.strip().lower())
    for row in rows[:limit]:
        click.echo(f"{row.license_id}  {row.reason:<8}  {row.account.email}  {row.plan_id}  "
                   f"{row.seats} seats  until {row.expires_at:%Y-%m-%d}  "
                   f"{row.installation_id or 'unbound'}")
