# SPDX-License-Identifier: Apache-2.0
"""``potluck orgs``, ``potluck users`` and ``potluck keys``."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from rich.console import Console
from rich.table import Table

from potluck.cli.context import CliError, needs_django

console = Console()


def find_org(name: str):  # noqa: ANN201 - returns an Organization, imported late
    from django.db.models import Q
    from django.utils.text import slugify

    from potluck.accounts.models import Organization

    org = Organization.objects.filter(Q(slug=name) | Q(slug=slugify(name)) | Q(name__iexact=name)
                                      ).order_by("slug").first()
    if org is None:
        raise CliError(f"no organization named {name!r} (see `potluck orgs list`)")
    return org


@click.group()
def orgs() -> None:
    """Organizations (tenants)."""


@orgs.command("create")
@click.argument("name")
@click.option("--slug", help="URL name; derived from NAME if omitted.")
@click.option("--owner", help="Email of the first owner (created if unknown).")
@needs_django
def orgs_create(name: str, slug: str | None, owner: str | None) -> None:
    """Create an organization."""
    from django.db import transaction

    from potluck.accounts import services

    with transaction.atomic():
        user = services.get_or_create_user(owner) if owner else None
        org = services.create_organization(name, slug=slug, owner=user)
    click.echo(f"created organization {org.slug} ({org.name})")


@orgs.command("list")
@needs_django
def orgs_list() -> None:
    """List organizations."""
    from django.db.models import Count

    from potluck.accounts.models import Organization

    table = Table("slug", "name", "members", "created")
    for org in Organization.objects.annotate(n=Count("memberships")):
        table.add_row(org.slug, org.name, str(org.n), org.created_at.strftime("%Y-%m-%d"))
    console.print(table)


@orgs.command("quota")
@click.argument("name")
@click.option("--replicas", help="vLLM replicas at once ('default': the server's).")
@click.option("--gpus", help="GPUs its replicas may take ('default': the server's).")
@click.option("--fine-tunes", "fine_tunes",
              help="Fine-tuning jobs at once ('default': the server's).")
@needs_django
def orgs_quota(name: str, replicas: str | None, gpus: str | None,
               fine_tunes: str | None) -> None:
    """Show or set an organization's capacity quotas."""
    from potluck.accounts import quotas

    org = find_org(name)
    changed = []
    for field, text, flag in (("max_replicas", replicas, "--replicas"),
                              ("max_gpus", gpus, "--gpus"),
                              ("max_concurrent_fine_tunes", fine_tunes, "--fine-tunes")):
        if text is None:
            continue
        if text == "default":
            value = None
        elif text.isdigit():
            value = int(text)
        else:
            raise CliError(f"{flag} takes a whole number or 'default', got {text!r}")
        setattr(org, field, value)
        changed.append(field)
    if changed:
        org.save(update_fields=changed)
    for key in (quotas.REPLICAS, quotas.GPUS, quotas.FINE_TUNES):
        found = quotas.quota(org, key)
        click.echo(f"{key}: {found.limit}" + (" (server default)" if found.default else ""))


@click.group()
def users() -> None:
    """People who sign in to the console."""


@users.command("add")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="Organization to join.")
@click.option("--role", default="member", show_default=True,
              type=click.Choice(["owner", "admin", "member", "viewer"]))
@needs_django
def users_add(email: str, org_name: str, role: str) -> None:
    """Add a person to an organization at once (the operator's way; created without a
    password if new). Organization admins invite people instead."""
    from potluck.accounts import services

    membership = services.add_member(find_org(org_name), email, role)
    click.echo(f"{membership.user.email} is now {membership.role} of "
               f"{membership.organization.slug}")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@needs_django
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set a person's password (prompts unless --password-stdin)."""
    from potluck.accounts import services
    from potluck.accounts.models import User

    user = User.objects.filter(username=username).first() or User.objects.filter(
        email__iexact=username).first()
    if user is None:
        raise CliError(f"no user named {username!r}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    services.set_password(user, password)
    click.echo(f"password set for {user.username}")


@users.command("unlock")
@click.argument("username")
@needs_django
def users_unlock(username: str) -> None:
    """Forget a person's failed sign-ins (lifts a sign-in delay at once)."""
    from potluck.accounts import signin
    from potluck.accounts.models import User

    user = User.objects.filter(username=username).first() or User.objects.filter(
        email__iexact=username).first()
    if user is None:
        raise CliError(f"no user named {username!r}")
    signin.unlock(user)
    click.echo(f"failed sign-ins of {user.username} forgotten")


@click.group()
def invitations() -> None:
    """Invitations: people join an organization when they accept."""


def _base_url(url: str | None) -> str:
    from django.conf import settings

    from potluck import env

    return (url or settings.PUBLIC_URL
            or f"http://{env.env_str('POTLUCK_HOST', '127.0.0.1')}:{settings.PORT}")


def _find_invitation(ident: str):  # noqa: ANN202 - an Invitation, imported late
    import uuid

    from potluck.accounts.models import Invitation

    try:
        found = Invitation.objects.filter(pk=uuid.UUID(ident)).select_related(
            "organization").first()
    except ValueError:
        found = None
    if found is None:
        raise CliError(f"no invitation {ident!r} (see `potluck invitations list --org NAME`)")
    return found


@invitations.command("create")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="Organization to join.")
@click.option("--role", default="member", show_default=True,
              type=click.Choice(["owner", "admin", "member", "viewer"]))
@click.option("--url", help="The console's public address (default: POTLUCK_PUBLIC_URL).")
@needs_django
def invitations_create(email: str, org_name: str, role: str, url: str | None) -> None:
    """Invite EMAIL; prints the link to accept (also mailed when mail is configured)."""
    from potluck.accounts import invitations as service

    invitation, token = service.invite(find_org(org_name), email, role, invited_by=None,
                                       granted_by_owner=True)
    delivery = service.send(invitation, token, _base_url(url))
    click.echo(f"invited {invitation.email} to {invitation.organization.slug} as "
               f"{invitation.role} (email: {delivery}); the link, valid until "
               f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC:", err=True)
    click.echo(service.accept_url(token, _base_url(url)))


@invitations.command("list")
@click.option("--org", "org_name", required=True)
@click.option("--all", "show_all", is_flag=True, help="Include answered and revoked ones.")
@needs_django
def invitations_list(org_name: str, show_all: bool) -> None:
    """List an organization's open invitations."""
    from potluck.accounts.models import Invitation

    found = Invitation.objects.for_org(find_org(org_name)).select_related("invited_by")
    table = Table("id", "email", "role", "status", "invited by", "expires")
    for invitation in found if show_all else found.open():
        table.add_row(str(invitation.pk), invitation.email, invitation.role, invitation.status,
                      invitation.invited_by.email if invitation.invited_by else "operator",
                      invitation.expires_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@invitations.command("link")
@click.argument("invitation_id", metavar="ID")
@click.option("--url", help="The console's public address (default: POTLUCK_PUBLIC_URL).")
@needs_django
def invitations_link(invitation_id: str, url: str | None) -> None:
    """Print a new link for an open invitation (the previous link stops working)."""
    from potluck.accounts import invitations as service

    click.echo(service.new_link(_find_invitation(invitation_id), _base_url(url)))


@invitations.command("revoke")
@click.argument("invitation_id", metavar="ID")
@needs_django
def invitations_revoke(invitation_id: str) -> None:
    """Revoke an invitation: its link stops working."""
    from potluck.accounts import invitations as service

    revoked = service.revoke(_find_invitation(invitation_id))
    click.echo(f"revoked the invitation of {revoked.email} to {revoked.organization.slug}")


@click.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organization the key acts in.")
@click.option("--name", required=True, help="A name to recognise the key by.")
@click.option("--scope", "scopes", multiple=True,
              type=click.Choice(["inference", "read", "write", "admin"]),
              help="Repeat for several; default: inference, read, write.")
@click.option("--expires-in-days", type=click.IntRange(min=1), help="Expire after N days.")
@needs_django
def keys_create(org_name: str, name: str, scopes: tuple[str, ...],
                expires_in_days: int | None) -> None:
    """Create a key; the secret is printed once, as the last line."""
    from django.utils import timezone

    from potluck.accounts import services

    expires = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    key, secret = services.create_api_key(find_org(org_name), name,
                                          scopes=list(scopes) or None, expires_at=expires)
    click.echo(f"created key {key.name} ({key.display_prefix}) with scopes "
               f"{', '.join(key.scopes)}; store the secret now, it is not shown again:",
               err=True)
    click.echo(secret)


@keys.command("list")
@click.option("--org", "org_name", required=True)
@needs_django
def keys_list(org_name: str) -> None:
    """List an organization's keys (never their secrets)."""
    from potluck.accounts.selectors import api_keys

    table = Table("prefix", "name", "scopes", "created", "last used", "state")
    for key in api_keys(find_org(org_name)):
        state = "active" if key.is_active else ("revoked" if key.revoked_at else "expired")
        table.add_row(key.display_prefix, key.name, ",".join(key.scopes),
                      key.created_at.strftime("%Y-%m-%d"),
                      key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "-",
                      state)
    console.print(table)


@keys.command("revoke")
@click.argument("prefix")
@click.option("--org", "org_name", required=True)
@needs_django
def keys_revoke(prefix: str, org_name: str) -> None:
    """Revoke a key by its prefix (pot_XXXXXXXXXXXX)."""
    from potluck.accounts import services
    from potluck.accounts.selectors import api_keys

    lookup = prefix.removeprefix("pot_")
    key = api_keys(find_org(org_name)).filter(lookup=lookup).first()
    if key is None:
        raise CliError(f"no key {prefix!r} in {org_name}")
    services.revoke_api_key(key)
    click.echo(f"revoked {key.display_prefix} ({key.name})")
