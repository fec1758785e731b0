# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Linking a forge account to a Potluck user, by a proof the user controls.

Two proofs:

- **OAuth**: the user signs in to the forge (GitHub's web application flow, GitLab's
  OAuth 2 authorization code flow); the forge tells us their account id (``GET /user``
  with the token). ``state`` is signed (Django's signing, 10 minutes) with the user id,
  so a callback cannot link someone else's session.
- **A one-time token** (``potluck-link-`` + 32 hex, stored hashed, valid
  ``POTLUCK_CREDITS_LINK_TOKEN_MINUTES``): the user puts it in their forge profile (bio,
  name or website) or in the body of a pull request they opened on a configured
  repository; we read it back through the forge's API.

A forge account links to one user only, once (an operator may link by hand with
``potluck credits link``). Linking makes the user's personal organization and their
wallet (``wallet:user:<id>``, which that organization spends) and vests what was held.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from potluck.accounts import services as accounts
from potluck.accounts.models import Organization, User
from potluck.errors import Conflict, Forbidden, InvalidInput
from potluck_enterprise.credits import forges, grants, ledger
from potluck_enterprise.credits.models import Forge, ForgeAccount, LinkToken, Repository

TOKEN_PREFIX = "potluck-link-"
_TOKEN = re.compile(r"potluck-link-[0-9a-f]{32}")
_STATE_SALT = "potluck-credits-oauth"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _forge(value: str) -> str:
    if value not in Forge.values:
        raise InvalidInput(f"forge must be one of {', '.join(Forge.values)}", field="forge")
    return value


def personal_organization(user: User) -> Organization:
    """The user's personal organization (made with their first link)."""
    wallet = ledger.contributor_wallet(user.pk)
    if wallet is not None and wallet.organization_id:
        return Organization.objects.get(pk=wallet.organization_id)
    base = re.sub(r"[^a-z0-9-]+", "-", (user.email.split("@")[0] or "user").lower())[:40]
    slug = f"{base.strip('-') or 'user'}-credits"
    n = 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base.strip('-') or 'user'}-credits-{n}"
    org = accounts.create_organization(f"{user.email} (credits)", slug=slug, owner=user)
    ledger.open_contributor_wallet(user.pk, org.pk)
    return org


def link(user: User, forge: str, person: forges.Person, *, how: str) -> ForgeAccount:
    """Link ``person`` (proved by ``how``: oauth, token, operator) to ``user``. Raises
    ``Conflict`` if the account is another user's, ``Forbidden`` for a bot account."""
    if person.is_bot:
        raise Forbidden("bot accounts cannot hold credits")
    with transaction.atomic():
        account = grants.forge_account(_forge(forge), person)
        account = ForgeAccount.objects.select_for_update().get(pk=account.pk)
        if account.user_id is not None and account.user_id != user.pk:
            raise Conflict(f"the {forge} account {account.login!r} is linked to another "
                           "user; an account can be linked to one user only")
        personal_organization(user)
        if account.user_id is None:
            account.user, account.linked_at, account.linked_by = user, timezone.now(), how
            account.save(update_fields=["user", "linked_at", "linked_by"])
    grants.vest_due(forge_account_id=account.pk)
    return account


# -- one-time tokens ----------------------------------------------------------------------
def issue_token(user: User, forge: str, login: str) -> str:
    """A fresh one-time token for ``login`` on ``forge``; shown once."""
    login = login.strip()
    if not login:
        raise InvalidInput("give your forge login", field="login")
    raw = TOKEN_PREFIX + secrets.token_hex(16)
    LinkToken.objects.create(user=user, forge=_forge(forge), login=login,
                             token_hash=_hash(raw), expires_at=timezone.now() + timedelta(
                                 minutes=settings.CREDITS_LINK_TOKEN_MINUTES))
    return raw


def verify_token(user: User, forge: str, login: str, *, repository_id: str | None = None,
                 number: int | None = None) -> ForgeAccount:
    """Find the user's token in the login's forge profile (or in pull request ``number``
    of the repository, opened by that login) and link. Raises ``Forbidden`` when no live
    token of this user is there, ``forges.ForgeUnavailable`` when the forge is away."""
    now = timezone.now()
    live = {t.token_hash: t for t in LinkToken.objects.filter(
        user=user, forge=_forge(forge), login__iexact=login.strip(), used_at__isnull=True,
        expires_at__gt=now)}
    if not live:
        raise Forbidden("no live link token for that login: make one first")
    if repository_id:
        repository = Repository.objects.filter(pk=repository_id, forge=forge).first()
        if repository is None or number is None:
            raise InvalidInput("name a configured repository and a pull request number",
                               field="repository")
        person, text = _pull_text(repository, number)
    else:
        person, text = forges.profile_text(forge, login)
    if person.login.lower() != login.strip().lower():
        raise Forbidden("that pull request was not opened by that login")
    for raw in _TOKEN.findall(text):
        token = live.get(_hash(raw))
        if token is not None:
            if LinkToken.objects.filter(pk=token.pk, used_at__isnull=True).update(
                    used_at=now) != 1:
                break
            return link(user, forge, person, how="token")
    raise Forbidden("the token was not found there (or has expired)")


def _pull_text(repository: Repository, number: int) -> tuple[forges.Person, str]:
    base = forges.api_base(repository)
    if repository.forge == Forge.GITHUB:
        pr = forges.get_json(f"{base}/repos/{repository.full_name}/pulls/{number}",
                             headers=forges._headers(repository))
        user = pr.get("user") or {}
        return (forges.Person(str(user.get("id")), str(user.get("login")),
                              user.get("type") == "Bot"), str(pr.get("body") or ""))
    project = repository.project_id or requests.utils.quote(repository.full_name, safe="")
    mr = forges.get_json(f"{base}/projects/{project}/merge_requests/{number}",
                         headers=forges._headers(repository))
    author = mr.get("author") or {}
    return (forges.Person(str(author.get("id")), str(author.get("username")),
                          bool(author.get("bot"))), str(mr.get("description") or ""))


# -- OAuth ----------------------------------------------------------------------------------
def _oauth(forge: str) -> tuple[str, str, str, str]:
    """(client id, secret, authorize URL, token URL) of the forge's OAuth app."""
    if forge == Forge.GITHUB:
        base = settings.CREDITS_GITHUB_OAUTH_URL.rstrip("/")
        return (settings.CREDITS_GITHUB_CLIENT_ID, settings.CREDITS_GITHUB_CLIENT_SECRET,
                f"{base}/login/oauth/authorize", f"{base}/login/oauth/access_token")
    base = settings.CREDITS_GITLAB_URL.rstrip("/")
    return (settings.CREDITS_GITLAB_CLIENT_ID, settings.CREDITS_GITLAB_CLIENT_SECRET,
            f"{base}/oauth/authorize", f"{base}/oauth/token")


def oauth_start(user: User, forge: str, redirect_uri: str) -> str:
    """Where to send the browser to sign in to the forge."""
    client_id, _, authorize, _ = _oauth(_forge(forge))
    if not client_id:
        raise Forbidden(f"linking by {forge} sign-in is not set up on this installation: "
                        "use a one-time token instead")
    state = signing.dumps({"u": user.pk, "f": forge, "n": secrets.token_hex(8)},
                          salt=_STATE_SALT)
    params: dict[str, Any] = {"client_id": client_id, "redirect_uri": redirect_uri,
                              "state": state}
    params.update({"scope": "read:user"} if forge == Forge.GITHUB else
                  {"scope": "read_user", "response_type": "code"})
    return f"{authorize}?{urlencode(params)}"


def oauth_finish(user: User, forge: str, code: str, state: str, redirect_uri: str
                 ) -> ForgeAccount:
    """Exchange the code, read the account, link it. Raises ``Forbidden`` for a state
    that is not this user's (or too old) or a code the forge refuses."""
    try:
        data = signing.loads(state, salt=_STATE_SALT, max_age=600)
    except signing.BadSignature:
        raise Forbidden("the sign-in went stale or was not started here") from None
    if data.get("u") != user.pk or data.get("f") != forge:
        raise Forbidden("the sign-in was started by someone else")
    client_id, secret, _, token_url = _oauth(forge)
    body = {"client_id": client_id, "client_secret": secret, "code": code,
            "redirect_uri": redirect_uri}
    if forge == Forge.GITLAB:
        body["grant_type"] = "authorization_code"
    try:
        answer = requests.post(token_url, data=body, headers={"Accept": "application/json"},
                               timeout=settings.CREDITS_FORGE_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise forges.ForgeUnavailable(f"{forge} sign-in: {exc.__class__.__name__}") from exc
    token = (answer.json() if answer.ok else {}).get("access_token")
    if not token:
        raise Forbidden(f"{forge} did not accept the sign-in")
    if forge == Forge.GITHUB:
        me = forges.get_json(f"{settings.CREDITS_GITHUB_API_URL.rstrip('/')}/user",
                             headers={"Authorization": f"Bearer {token}",
                                      "Accept": "application/vnd.github+json"})
        person = forges.Person(str(me["id"]), str(me["login"]), me.get("type") == "Bot")
    else:
        me = forges.get_json(f"{settings.CREDITS_GITLAB_URL.rstrip('/')}/api/v4/user",
                             headers={"Authorization": f"Bearer {token}"})
        person = forges.Person(str(me["id"]), str(me["username"]), bool(me.get("bot")))
    return link(user, forge, person, how="oauth")
