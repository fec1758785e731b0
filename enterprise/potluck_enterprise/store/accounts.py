# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Buyers sign in to the store with an emailed link: no password to keep or leak.

A buyer gives an email address; the store mails a link holding a random token (256
bits). Only the token's SHA-256 is stored; the link works once, for
``POTLUCK_STORE_SIGN_IN_LINK_MINUTES`` (15). Opening the link shows a button, and only
pressing it (a POST, CSRF-checked) signs in: mail scanners that fetch links consume
nothing. Signing in proves the address, which is what "one trial per email domain"
needs. Links are throttled per address (``POTLUCK_STORE_SIGN_IN_LINKS_PER_HOUR``) and per
client address (``LINKS_PER_CLIENT_PER_HOUR``), so the store cannot be used to flood a
mailbox. The signed-in account is a key of the Django session (``SESSION_KEY``), beside
and independent of a console sign-in.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest

from potluck.errors import InvalidInput, PotluckError
from potluck_enterprise.licensing import clock
from potluck_enterprise.store.models import SignInLink, StoreAccount

log = logging.getLogger(__name__)

SESSION_KEY = "potluck_store_account"
LINKS_PER_CLIENT_PER_HOUR = 20


class TooManyLinks(PotluckError):
    status = 429


class LinkRefused(PotluckError):
    """A sign-in link that does not work (unknown, used or expired)."""

    status = 400


def normalise_email(raw: str) -> str:
    """The address, trimmed and lowercased; ``InvalidInput`` if it is not one."""
    email = (raw or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("enter a valid email address", field="email") from None
    return email


def safe_next(path: str) -> str:
    """A path inside the store to return to after signing in (anything else: the
    store's front page)."""
    if path.startswith("/store/") and "//" not in path and "\\" not in path \
            and len(path) <= 500:
        return path
    return "/store/"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(email: str, *, base_url: str, next_path: str = "/store/",
                 client_ip: str | None = None, now: datetime | None = None) -> SignInLink:
    """Make a sign-in link for ``email`` and mail it to that address. ``base_url``: the
    store's origin (``POTLUCK_STORE_PUBLIC_URL``, else the request's). Raises
    ``InvalidInput`` and ``TooManyLinks``; a mail failure raises ``PotluckError`` (503)
    and leaves no usable link."""
    email = normalise_email(email)
    now = now or clock.now()
    hour_ago = now - timedelta(hours=1)
    if SignInLink.objects.filter(email=email, created_at__gte=hour_ago).count() >= \
            settings.STORE_SIGN_IN_LINKS_PER_HOUR:
        raise TooManyLinks("too many sign-in links were sent to this address in the last "
                           "hour: use the latest one, or wait", field="email")
    if client_ip and SignInLink.objects.filter(requested_from=client_ip,
                                               created_at__gte=hour_ago).count() >= \
            LINKS_PER_CLIENT_PER_HOUR:
        raise TooManyLinks("too many sign-in links were asked for from your address in the "
                           "last hour: wait a while", field="email")
    token = secrets.token_urlsafe(32)
    minutes = settings.STORE_SIGN_IN_LINK_MINUTES
    with transaction.atomic():
        link = SignInLink.objects.create(
            email=email, token_hash=_hash(token), next=safe_next(next_path),
            requested_from=client_ip, created_at=now, expires_at=now + timedelta(minutes=minutes))
        url = f"{base_url.rstrip('/')}/store/sign-in/{token}"
        try:
            send_mail(
                subject="Sign in to the Potluck store",
                message=(f"Open this link to sign in to the Potluck store as {email}:\n\n"
                         f"{url}\n\nIt works once, for {minutes} minutes. If you did not "
                         "ask for it, ignore this email.\n"),
                from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email])
        except Exception as exc:
            log.warning("store: a sign-in link could not be mailed (%s)",
                        exc.__class__.__name__)
            error = PotluckError("the sign-in email could not be sent; try again later")
            error.status = 503
            raise error from None
    log.info("store: sign-in link %s mailed", link.pk)
    return link


def pending_link(token: str, now: datetime | None = None) -> SignInLink:
    """The unused, unexpired link of ``token``; ``LinkRefused`` otherwise."""
    now = now or clock.now()
    link = SignInLink.objects.filter(token_hash=_hash(token or "")).first()
    if link is None:
        raise LinkRefused("this sign-in link is not valid: ask for a new one")
    if link.used_at is not None:
        raise LinkRefused("this sign-in link was already used: ask for a new one")
    if link.expires_at <= now:
        raise LinkRefused("this sign-in link has expired: ask for a new one")
    return link


@transaction.atomic
def redeem(token: str, now: datetime | None = None) -> tuple[StoreAccount, str]:
    """Use the link of ``token`` (once): (the account of its address, made on first
    sign-in; the path to return to). Raises ``LinkRefused``."""
    now = now or clock.now()
    link = pending_link(token, now)
    link = SignInLink.objects.select_for_update().get(pk=link.pk)
    if link.used_at is not None:  # the same link pressed twice at once
        raise LinkRefused("this sign-in link was already used: ask for a new one")
    link.used_at = now
    link.save(update_fields=["used_at"])
    account, _ = StoreAccount.objects.get_or_create(email=link.email)
    account.last_sign_in_at = now
    account.save(update_fields=["last_sign_in_at"])
    return account, link.next or "/store/"


def sign_in(request: HttpRequest, account: StoreAccount) -> None:
    request.session.cycle_key()  # a new session id at sign-in (no fixation)
    request.session[SESSION_KEY] = str(account.pk)


def sign_out(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def signed_in(request: HttpRequest) -> StoreAccount | None:
    account_id = request.session.get(SESSION_KEY)
    if not account_id:
        return None
    return StoreAccount.objects.filter(pk=account_id).first()


def forget_old_links(now: datetime | None = None) -> int:
    """Delete sign-in links a day past their expiry (used or not); returns how many."""
    now = now or clock.now()
    deleted, _ = SignInLink.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    return deleted
