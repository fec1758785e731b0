# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck billing ...``: the operator's commands for metered billing."""

from __future__ import annotations

import csv
import json
import sys

import click

from potluck.cli.accounts import find_org
from potluck.cli.context import CliError, needs_django, read_json_file


def _ensure_licensed() -> None:
    from potluck_enterprise.billing.api import NOT_LICENSED
    from potluck_enterprise.billing.feature import FEATURE_KEY
    from potluck_enterprise.licensing.gating import gate

    if FEATURE_KEY not in gate.refresh():
        raise CliError(NOT_LICENSED)


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        click.echo("  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i])
                             for i, cell in enumerate(row)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


@click.group("billing")
def billing_group() -> None:
    """Metered billing: prices, budgets, spend, Stripe, costs and the cost-vs-revenue report."""


# -- prices -----------------------------------------------------------------------------
@billing_group.group("prices")
def prices() -> None:
    """The versioned price book."""


@prices.command("set")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@needs_django
def prices_set(file: str) -> None:
    """Add a price version from a JSON book in FILE ("-": standard input)."""
    from potluck_enterprise.billing import pricebook

    _ensure_licensed()
    version = pricebook.create_version(read_json_file(file), created_by="cli")
    click.echo(f"price version {version.pk} in force from {version.effective_from.isoformat()} "
               f"({version.prices.count()} models, {version.currency})")


@prices.command("show")
@click.option("--json", "as_json", is_flag=True, help="Every version, as the API gives it.")
@needs_django
def prices_show(as_json: bool) -> None:
    """Show the price versions (newest first)."""
    from potluck_enterprise.billing import pricebook
    from potluck_enterprise.billing.models import PriceVersion

    _ensure_licensed()
    versions = [pricebook.version_json(v) for v in
                PriceVersion.objects.prefetch_related("prices")]
    if as_json:
        click.echo(json.dumps(versions, indent=2))
        return
    if not versions:
        click.echo("no prices yet: add a book with `potluck billing prices set FILE`")
    for v in versions:
        click.echo(f"version {v['id']} from {v['effective_from']} ({v['currency']}, windows in "
                   f"{v['time_zone']}: {', '.join(w['name'] for w in v['windows']) or 'none'})")
        rows = [["model", "input/1M", "cached/1M", "output/1M", "fine-tune/1M", "per request"]]
        for model, p in v["models"].items():
            rows.append([model, p["input"], p["cached_input"] or p["input"], p["output"],
                         p["fine_tuning"] or "-", p["request_fee"] or "0"])
        _table(rows)


@billing_group.command("override")
@click.option("--org", "org_name", required=True)
@click.option("--model", default="", help="One model (default: all models).")
@click.option("--discount", default="0", help='A fraction: "0.15" is 15 % off.')
@click.option("--input", "input_price", help="A custom input price per 1M tokens.")
@click.option("--cached-input")
@click.option("--output")
@click.option("--effective", help="ISO 8601 time with a zone (default: now).")
@needs_django
def override(org_name: str, model: str, discount: str, input_price: str | None,
             cached_input: str | None, output: str | None, effective: str | None) -> None:
    """Give an organization negotiated terms (a discount and/or custom prices)."""
    from potluck_enterprise.billing import pricebook

    _ensure_licensed()
    row = pricebook.create_override(find_org(org_name), {
        "model": model, "discount": discount, "input": input_price,
        "cached_input": cached_input, "output": output, "effective_from": effective})
    click.echo(f"override {row.pk} for {org_name} from {row.effective_from.isoformat()}")


# -- budgets and spend ------------------------------------------------------------------
@billing_group.command("budget")
@click.option("--org", "org_name", required=True)
@click.option("--key", "key_prefix", help="An API key's prefix (pot_...): a key's budget.")
@click.option("--period", type=click.Choice(["day", "month"]), required=True)
@click.option("--soft", help="Soft limit (an alert), in the currency.")
@click.option("--hard", help="Hard limit (requests refused), in the currency.")
@click.option("--email", "emails", multiple=True, help="Who gets the alert emails.")
@click.option("--webhook", default="", help="A URL that gets each alert as signed JSON.")
@needs_django
def budget(org_name: str, key_prefix: str | None, period: str, soft: str | None,
           hard: str | None, emails: tuple[str, ...], webhook: str) -> None:
    """Set (create or replace) a daily or monthly budget of an organization or key."""
    from potluck.accounts.models import ApiKey
    from potluck_enterprise.billing import budgets
    from potluck_enterprise.billing.models import Budget

    _ensure_licensed()
    org = find_org(org_name)
    key = None
    if key_prefix:
        key = ApiKey.objects.filter(organization=org,
                                    lookup=key_prefix.removeprefix("pot_")[:16]).first()
        if key is None:
            raise CliError(f"no API key {key_prefix!r} in {org_name}")
    existing = Budget.objects.filter(organization=org, api_key=key, period=period).first()
    saved, secret = budgets.save_budget(org, {
        "period": period, "api_key": key, "soft_limit": soft, "hard_limit": hard,
        "emails": list(emails), "webhook_url": webhook}, existing)
    click.echo(f"{budgets.describe(saved)}: soft {saved.soft_limit or '-'}, "
               f"hard {saved.hard_limit or '-'}")
    if secret:
        click.echo(f"webhook signing secret (shown once): {secret}")


@billing_group.command("spend")
@click.option("--org", "org_name", required=True)
@click.option("--start", help="First day (default: the first of this month).")
@click.option("--end", help="Last day (default: today).")
@click.option("--group-by", default="day,model", show_default=True)
@click.option("--csv", "as_csv", is_flag=True)
@needs_django
def spend_cmd(org_name: str, start: str | None, end: str | None, group_by: str,
              as_csv: bool) -> None:
    """Priced spend so far, grouped by day, model, key and/or kind."""
    from potluck_enterprise.billing import selectors
    from potluck_enterprise.billing.api import SpendQuery

    _ensure_licensed()
    query = SpendQuery(data={k: v for k, v in {"start": start, "end": end,
                                               "group_by": group_by}.items() if v})
    if not query.is_valid():
        field, errors = next(iter(query.errors.items()))
        raise CliError(f"{field}: {errors[0]}")
    data = query.validated_data
    rows = selectors.spend_rows(find_org(org_name), data["start"], data["end"],
                                data["group_by"])
    columns = [g for g in selectors.GROUPS if g in data["group_by"]] + [
        "amount_display", "quantity", "lines"]
    table = [columns, *[[str(r.get(c) if r.get(c) is not None else "-") for c in columns]
                        for r in rows]]
    if as_csv:
        csv.writer(sys.stdout).writerows(table)
    else:
        _table(table)


# -- Stripe -----------------------------------------------------------------------------
@billing_group.group("stripe")
def stripe_group() -> None:
    """Stripe: set up the meter, link organizations, send meter events now."""


@stripe_group.command("setup")
@needs_django
def stripe_setup() -> None:
    """Create (or find) the meter that usage is sent to; prints its id."""
    from potluck_enterprise.billing.stripe_adapter import (
        StripeBilling,
        StripeNotConfigured,
        StripeRejected,
        StripeUnavailable,
    )

    _ensure_licensed()
    try:
        meter = StripeBilling.from_settings().ensure_meter()
    except (StripeNotConfigured, StripeUnavailable, StripeRejected) as exc:
        raise CliError(str(exc)) from None
    click.echo(f"meter {meter}: create a metered price on it (1 unit = 1 minor unit of the "
               "currency) and set POTLUCK_BILLING_STRIPE_PRICE_ID to subscribe new customers")


@stripe_group.command("link")
@click.option("--org", "org_name", required=True)
@click.option("--customer", default="", help="An existing customer id (default: created "
              "on first use).")
@needs_django
def stripe_link_cmd(org_name: str, customer: str) -> None:
    """Link an organization to a Stripe customer."""
    from potluck_enterprise.billing import stripe_link

    _ensure_licensed()
    account = stripe_link.link(find_org(org_name), customer)
    target = account.stripe_customer_id or "a customer created on first use"
    click.echo(f"{org_name} linked to {target}")


@stripe_group.command("send")
@needs_django
def stripe_send() -> None:
    """Send due meter events now (the beat task does this every 2 s)."""
    from potluck_enterprise.billing import outbox
    from potluck_enterprise.billing.stripe_adapter import StripeNotConfigured

    _ensure_licensed()
    try:
        result = outbox.send_due()
    except StripeNotConfigured as exc:
        raise CliError(str(exc)) from None
    click.echo(f"sent {result.sent} events in {result.calls} calls; {result.failed_calls} "
               f"failed; {result.expired} too old (alerts made)")
    if result.failed_calls:
        sys.exit(1)


# -- costs and the report ---------------------------------------------------------------
@billing_group.group("costs")
def costs_group() -> None:
    """What an hour of each node type costs (versioned), and nodes' types."""


@costs_group.command("set")
@click.argument("node_type")
@click.argument("hourly_cost")
@click.option("--per", type=click.Choice(["gpu", "replica"]), default="gpu", show_default=True)
@click.option("--effective", help="ISO 8601 time with a zone (default: now).")
@needs_django
def costs_set(node_type: str, hourly_cost: str, per: str, effective: str | None) -> None:
    """Set NODE_TYPE's cost per GPU-hour (or replica-hour) from now (or --effective)."""
    from potluck_enterprise.billing import costs

    _ensure_licensed()
    row = costs.set_cost(node_type, hourly_cost, per=per, effective_from=effective)
    click.echo(f"{row.node_type}: {row.hourly_cost} per {row.per}-hour from "
               f"{row.effective_from.isoformat()}")


@costs_group.command("assign")
@click.argument("node")
@click.argument("node_type")
@needs_django
def costs_assign(node: str, node_type: str) -> None:
    """Give NODE (by name) the type NODE_TYPE."""
    from potluck_enterprise.billing import costs

    _ensure_licensed()
    costs.assign(node, node_type)
    click.echo(f"{node}: {node_type}")


@costs_group.command("list")
@needs_django
def costs_list() -> None:
    """Nodes with their types, and every cost."""
    from potluck_enterprise.billing import costs
    from potluck_enterprise.billing.models import NodeTypeCost

    _ensure_licensed()
    for name, node_type in costs.node_types_by_name().items():
        click.echo(f"node {name}: {node_type}")
    for c in NodeTypeCost.objects.all():
        click.echo(f"{c.node_type}: {c.hourly_cost} per {c.per}-hour from "
                   f"{c.effective_from.isoformat()}")


@billing_group.command("report")
@click.option("--month", help="YYYY-MM (default: this month).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@needs_django
def report_cmd(month: str | None, fmt: str) -> None:
    """Cost vs revenue per day and model for a month (DeepSeek's layout)."""
    from django.utils import timezone

    from potluck_enterprise.billing import report, spend

    _ensure_licensed()
    month = month or timezone.now().astimezone(spend.billing_zone()).strftime("%Y-%m")
    try:
        start, end = report.month_range(month)
    except ValueError:
        raise CliError(f"--month: {month!r} is not YYYY-MM") from None
    built = report.build(start, end)
    if fmt == "json":
        click.echo(json.dumps(built.as_dict(), indent=2))
    elif fmt == "csv":
        csv.writer(sys.stdout).writerows(report.table(built))
    else:
        click.echo(f"Cost vs revenue, {month} ({built.currency}, days in "
                   f"{spend.billing_zone().key})")
        _table(report.table(built))
