# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck credits ...``: the operator's and maintainers' commands for contribution
credits (repositories, grants, approvals, the ledger, distributions, statements,
payouts)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date

import click

from potluck.cli.accounts import find_org
from potluck.cli.context import CliError, needs_django


def _ensure_licensed() -> None:
    from potluck_enterprise.credits.api import NOT_LICENSED
    from potluck_enterprise.credits.feature import FEATURE_KEY
    from potluck_enterprise.licensing.gating import gate

    if FEATURE_KEY not in gate.refresh():
        raise CliError(NOT_LICENSED)


def _user(email: str):  # noqa: ANN202 - a User, imported late
    from potluck.accounts.models import User

    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise CliError(f"no user with the email {email!r}")
    return user


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group("credits")
def credits_group() -> None:
    """Contribution credits: repositories, grants, approvals, ledger, pool, payouts."""


# -- repositories ---------------------------------------------------------------------------
@credits_group.group("repos")
def repos() -> None:
    """Repositories whose merged patches earn credits."""


@repos.command("add")
@click.argument("forge", type=click.Choice(["github", "gitlab"]))
@click.argument("full_name")
@click.option("--api-url", default="", help="The forge API's base URL (default: the forge's).")
@click.option("--api-token", default="", envvar="POTLUCK_CREDITS_FORGE_TOKEN",
              help="A read-only API token (reviews, reconcile); or POTLUCK_CREDITS_FORGE_TOKEN.")
@click.option("--project-id", default="", help="GitLab: the project's numeric id.")
@click.option("--base", "base_credits", type=int, default=None, help="Credits per patch.")
@click.option("--weight", "weights", multiple=True, help="LABEL=WEIGHT, e.g. security=3.")
@click.option("--cap", "monthly_cap", type=int, default=None,
              help="Credits per contributor per month (0: none).")
@click.option("--hold-days", type=int, default=None, help="Days before a grant vests.")
@click.option("--maintainer", "maintainers", multiple=True, help="A maintainer's forge login.")
@click.option("--bot", "bots", multiple=True, help="Another bot login to refuse.")
@click.option("--no-approval", is_flag=True, help="Do not require a maintainer's approval.")
@click.option("--no-first-approval", is_flag=True,
              help="Do not hold first-time contributors' first grant for a maintainer.")
@needs_django
def repos_add(forge: str, full_name: str, api_url: str, api_token: str, project_id: str,
              base_credits: int | None, weights: tuple[str, ...], monthly_cap: int | None,
              hold_days: int | None, maintainers: tuple[str, ...], bots: tuple[str, ...],
              no_approval: bool, no_first_approval: bool) -> None:
    """Add a repository; prints its webhook path and secret (shown once)."""
    from potluck_enterprise.credits import repositories

    _ensure_licensed()
    label_weights = {}
    for item in weights:
        label, _, weight = item.partition("=")
        if not weight:
            raise CliError(f"--weight {item}: give LABEL=WEIGHT")
        label_weights[label] = weight
    repository, secret = repositories.create(
        forge, full_name, api_url=api_url, api_token=api_token, project_id=project_id,
        base_credits=base_credits, label_weights=label_weights or None,
        monthly_cap=monthly_cap, hold_days=hold_days, maintainers=list(maintainers) or None,
        bots=list(bots) or None, require_approval=False if no_approval else None,
        first_grant_needs_approval=False if no_first_approval else None)
    data = repositories.as_json(repository)
    click.echo(f"repository {repository} added: {data['id']}", err=True)
    click.echo(f"webhook: POST {data['webhook_path']} with the secret below", err=True)
    click.echo(secret)


@repos.command("list")
@needs_django
def repos_list() -> None:
    """The repositories and their rules, as JSON."""
    from potluck_enterprise.credits import repositories
    from potluck_enterprise.credits.models import Repository

    _ensure_licensed()
    _echo_json([repositories.as_json(r) for r in Repository.objects.all()])


@repos.command("set")
@click.argument("repository")
@click.option("--base", "base_credits", type=int, default=None, help="Credits per patch.")
@click.option("--weight", "weights", multiple=True,
              help="LABEL=WEIGHT (replaces every weight when given).")
@click.option("--cap", "monthly_cap", type=int, default=None)
@click.option("--hold-days", type=int, default=None)
@click.option("--maintainer", "maintainers", multiple=True,
              help="A maintainer's login (replaces the list when given).")
@click.option("--approval/--no-approval", "require_approval", default=None)
@click.option("--first-approval/--no-first-approval", "first_grant_needs_approval",
              default=None)
@click.option("--active/--inactive", default=None, help="Inactive: webhooks answer 404.")
@needs_django
def repos_set(repository: str, base_credits: int | None, weights: tuple[str, ...],
              monthly_cap: int | None, hold_days: int | None, maintainers: tuple[str, ...],
              require_approval: bool | None, first_grant_needs_approval: bool | None,
              active: bool | None) -> None:
    """Change a repository's rules (what is not given stays)."""
    from potluck_enterprise.credits import repositories, services

    _ensure_licensed()
    repo = services.find_repository(repository)
    label_weights = dict(w.partition("=")[::2] for w in weights) or None
    repositories.update(repo, base_credits=base_credits, label_weights=label_weights,
                        monthly_cap=monthly_cap, hold_days=hold_days,
                        maintainers=list(maintainers) or None,
                        require_approval=require_approval,
                        first_grant_needs_approval=first_grant_needs_approval)
    if active is not None:
        repo.active = active
        repo.save(update_fields=["active"])
    _echo_json(repositories.as_json(repo))


@repos.command("rotate-secret")
@click.argument("repository")
@needs_django
def repos_rotate(repository: str) -> None:
    """A new webhook secret for REPOSITORY (printed once; the old one stops working)."""
    from potluck_enterprise.credits import repositories, services

    _ensure_licensed()
    click.echo(repositories.rotate_secret(services.find_repository(repository)))


# -- grants ------------------------------------------------------------------------------------
@credits_group.command("grant")
@click.option("--repo", "repository", required=True, help="Repository id or owner/name.")
@click.option("--number", type=int, required=True, help="The patch's number.")
@click.option("--author", required=True, help="The author's forge login.")
@click.option("--author-id", required=True, help="The author's forge account id.")
@click.option("--by", required=True, help="Your (the maintainer's) forge login.")
@click.option("--title", default="")
@click.option("--label", "labels", multiple=True)
@needs_django
def grant(repository: str, number: int, author: str, author_id: str, by: str, title: str,
          labels: tuple[str, ...]) -> None:
    """Record a merged patch that arrived by other means (the rules apply)."""
    from potluck_enterprise.credits import services

    _ensure_licensed()
    made = services.grant_manually(services.find_repository(repository), number=number,
                                   author_id=author_id, author_login=author, by=by,
                                   title=title, labels=list(labels))
    click.echo(f"grant {made.pk}: {made.status} {made.amount} credits {made.reason}".rstrip())


@credits_group.command("queue")
@needs_django
def queue() -> None:
    """Grants waiting for a maintainer's approval."""
    from potluck_enterprise.credits.models import Grant, GrantStatus

    _ensure_licensed()
    for g in Grant.objects.filter(status=GrantStatus.AWAITING_APPROVAL).select_related(
            "repository", "forge_account").order_by("created_at"):
        click.echo(f"{g.pk}\t{g.repository}#{g.number}\t{g.forge_account.login}\t"
                   f"{g.amount}\t{g.title}")


@credits_group.command("approve")
@click.argument("grant_id", type=int)
@click.option("--by", default="operator", help="Who approves (recorded).")
@click.option("--reject", is_flag=True, help="Reject instead.")
@needs_django
def approve(grant_id: int, by: str, reject: bool) -> None:
    """Approve (or --reject) a grant waiting for a maintainer."""
    from potluck_enterprise.credits import grants

    _ensure_licensed()
    made = grants.decide(grant_id, approve=not reject, by=by)
    click.echo(f"grant {made.pk}: {made.status}")


@credits_group.command("revert")
@click.argument("grant_id", type=int)
@click.option("--by", default="operator", help="What reverted it (recorded).")
@needs_django
def revert(grant_id: int, by: str) -> None:
    """Claw back a grant whose patch was reverted by other means."""
    from potluck_enterprise.credits import grants
    from potluck_enterprise.credits.models import Grant

    _ensure_licensed()
    found = Grant.objects.filter(pk=grant_id).first()
    if found is None:
        raise CliError(f"no grant {grant_id}")
    click.echo(f"grant {grant_id}: {grants.revert(found, by=by).status}")


@credits_group.command("vest")
@needs_django
def vest() -> None:
    """Vest every grant whose hold has passed (beat does this every minute)."""
    from potluck_enterprise.credits import grants

    _ensure_licensed()
    click.echo(f"{grants.vest_due()} grant(s) vested")


@credits_group.command("reconcile")
@click.option("--repo", "repository", default=None, help="One repository (default: all).")
@click.option("--days", type=int, default=None, help="How far back (default: the setting).")
@needs_django
def reconcile(repository: str | None, days: int | None) -> None:
    """Grant merged patches that no webhook delivery brought."""
    from django.conf import settings

    from potluck_enterprise.credits import services, webhooks
    from potluck_enterprise.credits.models import Repository

    _ensure_licensed()
    repos_ = [services.find_repository(repository)] if repository else list(
        Repository.objects.filter(active=True))
    for repo in repos_:
        made = webhooks.reconcile(repo, days or settings.CREDITS_RECONCILE_DAYS)
        click.echo(f"{repo}: {len(made)} new grant(s)")


# -- identities and wallets ------------------------------------------------------------------
@credits_group.command("link")
@click.argument("email")
@click.option("--forge", type=click.Choice(["github", "gitlab"]), required=True)
@click.option("--login", required=True)
@click.option("--id", "external_id", required=True, help="The forge's account id.")
@needs_django
def link(email: str, forge: str, login: str, external_id: str) -> None:
    """Operator: link a forge account to a user you verified yourself."""
    from potluck_enterprise.credits import forges, identity

    _ensure_licensed()
    user = _user(email)
    account = identity.link(user, forge, forges.Person(external_id, login), how="operator")
    org = identity.personal_organization(user)
    click.echo(f"{account.forge}:{account.login} linked to {user.email}; personal "
               f"organization {org.slug}")


@credits_group.command("give")
@click.argument("credits", type=int)
@click.option("--org", "org_name", required=True)
@click.option("--reference", default="", help="Makes a retried command post once.")
@needs_django
def give(credits: int, org_name: str, reference: str) -> None:
    """Operator: give an organization CREDITS."""
    from potluck_enterprise.credits import services

    _ensure_licensed()
    org = find_org(org_name)
    balance = services.give_organization(org, credits, reference=reference)
    click.echo(f"{org.slug}: {balance} credits")


@credits_group.command("balance")
@click.option("--org", "org_name", default=None)
@click.option("--user", "email", default=None)
@needs_django
def balance(org_name: str | None, email: str | None) -> None:
    """A wallet's balance in credits (an organization's, or a contributor's)."""
    from potluck_enterprise.credits import ledger

    _ensure_licensed()
    if bool(org_name) == bool(email):
        raise CliError("give --org or --user")
    account = ledger.org_wallet(find_org(org_name).pk) if org_name else \
        ledger.contributor_wallet(_user(email).pk)
    click.echo(str(ledger.balance(account)))


@credits_group.command("ledger")
@click.option("--check", is_flag=True, help="Verify every invariant; exit 1 on a problem.")
@click.option("--account", "code", default=None, help="One account's history by its code.")
@needs_django
def ledger_cmd(check: bool, code: str | None) -> None:
    """Account balances (or one account's history), or --check the invariants."""
    from potluck_enterprise.credits import ledger
    from potluck_enterprise.credits.models import LedgerAccount

    _ensure_licensed()
    if check:
        problems = ledger.verify()
        for p in problems:
            click.echo(f"{p.what}: {p.detail}")
        if problems:
            raise CliError(f"{len(problems)} problem(s) in the ledger")
        click.echo("the ledger is sound: every transaction sums to zero, every balance "
                   "equals its legs")
        return
    if code:
        account = LedgerAccount.objects.filter(code=code).first()
        if account is None:
            raise CliError(f"no account {code!r}")
        _echo_json(list(ledger.history(account, 200)))
        return
    for account in LedgerAccount.objects.all():
        click.echo(f"{account.code}\t{account.commodity}\t{account.balance}")


# -- the pool ---------------------------------------------------------------------------------
@credits_group.command("distribute")
@click.option("--period", default=None, help="A day of the period (default: the last one over).")
@click.option("--open-period", is_flag=True, help="Distribute a period that is not over yet.")
@needs_django
def distribute(period: str | None, open_period: bool) -> None:
    """Distribute the community pool for a period (once)."""
    from datetime import timedelta

    from django.utils import timezone

    from potluck_enterprise.credits import revenue

    _ensure_licensed()
    try:
        day = date.fromisoformat(period) if period else \
            revenue.period_of(timezone.localdate())[0] - timedelta(days=1)
    except ValueError:
        raise CliError(f"--period {period}: give a day, YYYY-MM-DD") from None
    dist = revenue.distribute(day, allow_open=open_period)
    click.echo(f"{dist.period_start}: pool {dist.pool}, distributed {dist.distributed}, "
               f"carried {dist.residue} ({dist.currency} minor units)")


@credits_group.command("statement")
@click.argument("email")
@needs_django
def statement(email: str) -> None:
    """A contributor's statement (shares per period, owed, paid) as JSON."""
    from potluck_enterprise.credits import revenue

    _ensure_licensed()
    _echo_json(revenue.statement(_user(email).pk))


@credits_group.group("payouts")
def payouts_group() -> None:
    """Paying contributors what distributions owe them."""


@payouts_group.command("export")
@click.option("--out", default="-", help="A file (default: standard output).")
@needs_django
def payouts_export(out: str) -> None:
    """The payout CSV: who is owed what."""
    from potluck_enterprise.credits import payouts

    _ensure_licensed()
    rows = payouts.export_rows()
    handle = sys.stdout if out == "-" else open(out, "w", newline="", encoding="utf-8")  # noqa: SIM115
    try:
        csv.writer(handle).writerows(rows)
    finally:
        if handle is not sys.stdout:
            handle.close()


@payouts_group.command("connect")
@click.argument("email")
@click.argument("stripe_account")
@needs_django
def payouts_connect(email: str, stripe_account: str) -> None:
    """Record a contributor's Stripe Connect account (acct_...)."""
    from potluck_enterprise.credits.models import PayoutAccount

    _ensure_licensed()
    if not stripe_account.startswith("acct_"):
        raise CliError("a Stripe Connect account id starts with acct_")
    PayoutAccount.objects.update_or_create(user=_user(email),
                                           defaults={"stripe_account_id": stripe_account})
    click.echo(f"{email} is paid to {stripe_account}")


@payouts_group.command("send")
@needs_django
def payouts_send() -> None:
    """Transfer what is owed to contributors with a Stripe Connect account."""
    from potluck_enterprise.credits import payouts

    _ensure_licensed()
    made = payouts.pay_out()
    click.echo(f"{len(made)} payout(s) made, {sum(p.amount for p in made)} minor units")
