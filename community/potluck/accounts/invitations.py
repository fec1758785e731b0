# SPDX-License-Identifier: Apache-2.0
"""Membership by consent: an organization invites an email; the person accepts or not.

Why invitations (as GitHub, GitLab and Slack do) rather than adding people directly:
an organization's admin must not be able to enrol an existing person (another
organization's owner, the installation's superuser) without their consent, nor create
an installation-wide account for an address they do not control. So:

- ``invite`` records an ``Invitation`` (email, role, expiry) and mails the address a
  link with a secret token. No account and no membership exist yet; the admin never
  sees the token (an admin who could accept by link could open an account in someone
  else's name and sign in as them later).
- A person who already has an account signs in and accepts it (``accept``; they see
  their invitations with ``received``). The link alone never accepts for an existing
  account.
- A new person accepts by the link (``accept_with_token``), choosing their password:
  only then is their account created, for the invited address. Where a login policy
  refuses passwords for that address (SSO enforced), they sign in with SSO instead (just
  in time provisioning creates the account) and accept signed in.
- Member policies (the enterprise licence's seats) run on acceptance, so a pending
  invitation takes no seat. Declining and revoking end an invitation; so does expiry
  (``POTLUCK_INVITATION_DAYS``).

The operator (``potluck users add``) still adds people directly, and SSO provisions the
users of an organization's verified domains: both are trusted to vouch for an address.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck import extensions
from potluck.accounts.models import Invitation, Membership, Organization, Role, User
from potluck.accounts.services import clean_email, clean_role
from potluck.errors import Conflict, Forbidden, InvalidInput, NotFound

log = logging.getLogger(__name__)

ACCEPT_PATH = "/invitations"  # the console's page: ?token=... to accept or decline
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@dataclass(frozen=True)
class Sent:
    """An invitation and how its email went: ``sent``, ``not_configured`` or ``failed``."""

    invitation: Invitation
    delivery: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def accept_url(token: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}{ACCEPT_PATH}?token={token}"


def email_configured() -> bool:
    """Whether invitations can be mailed: an SMTP host, or another mail backend."""
    return bool(settings.EMAIL_HOST) or settings.EMAIL_BACKEND != SMTP_BACKEND


def _new_token(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _hash(token)
    return token


@transaction.atomic
def invite(org: Organization, email: str, role: str, *, invited_by: User | None,
           granted_by_owner: bool) -> tuple[Invitation, str]:
    """Record an invitation of ``email`` to ``org`` with ``role``: (invitation, token).
    An open invitation of that address to ``org`` is replaced (its link stops working).

    Raises ``InvalidInput`` (a bad email or role), ``Forbidden`` (field ``role``: only an
    owner invites an owner), ``Conflict`` (field ``email``: already a member).
    """
    clean = clean_email(email)
    role_ = clean_role(role)
    if role_ == Role.OWNER and not granted_by_owner:
        raise Forbidden("only an owner can make another owner", field="role")
    if Membership.objects.filter(organization=org, user__email__iexact=clean).exists():
        raise Conflict(f"{clean} is already a member", field="email")
    now = timezone.now()
    Invitation.objects.for_org(org).open().filter(email=clean).update(revoked_at=now)
    invitation = Invitation(organization=org, email=clean, role=role_, invited_by=invited_by,
                            created_at=now,
                            expires_at=now + timedelta(days=settings.INVITATION_DAYS))
    token = _new_token(invitation)
    try:
        with transaction.atomic():
            invitation.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent invitation of the same address won
        raise Conflict(f"{clean} was just invited; try again", field="email") from exc
    log.info("invitation %s: %s invited to %s as %s", invitation.pk, clean, org.slug, role_)
    return invitation, token


def send(invitation: Invitation, token: str, base_url: str) -> str:
    """Mail the invitation's link to its address, once it is committed; returns the
    delivery: ``sent``, ``not_configured`` (no mail settings) or ``failed``."""
    if not email_configured():
        return "not_configured"
    inviter = invitation.invited_by.email if invitation.invited_by else "an administrator"
    body = (f"{inviter} invites you to join {invitation.organization.name} on Potluck as "
            f"{invitation.role}.\n\nAccept or decline: {accept_url(token, base_url)}\n\n"
            f"The invitation expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. If you "
            "did not expect it, ignore this email.\n")
    try:
        send_mail(f"Join {invitation.organization.name} on Potluck", body,
                  settings.DEFAULT_FROM_EMAIL, [invitation.email])
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("invitation %s: the email could not be sent (%s)", invitation.pk,
                    exc.__class__.__name__)
        return "failed"
    return "sent"


def invite_and_send(org: Organization, email: str, role: str, *, invited_by: User | None,
                    granted_by_owner: bool, base_url: str) -> Sent:
    """``invite``, then ``send`` (outside its transaction: only a stored invitation is
    mailed)."""
    invitation, token = invite(org, email, role, invited_by=invited_by,
                               granted_by_owner=granted_by_owner)
    return Sent(invitation, send(invitation, token, base_url))


def new_link(invitation: Invitation, base_url: str) -> str:
    """A fresh acceptance link for an open invitation (the operator's CLI); the old link
    stops working."""
    if invitation.status != "pending":
        raise Conflict(f"the invitation is {invitation.status}")
    token = _new_token(invitation)
    invitation.save(update_fields=["token_hash"])
    return accept_url(token, base_url)


def revoke(invitation: Invitation) -> Invitation:
    if invitation.status != "pending" and invitation.status != "expired":
        raise Conflict(f"the invitation is already {invitation.status}")
    Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    invitation.refresh_from_db()
    return invitation


def received(user: User):  # noqa: ANN201 - a QuerySet of Invitation
    """The pending invitations to ``user``'s email, in every organization."""
    return (Invitation.objects.pending().filter(email__iexact=user.email)
            .select_related("organization", "invited_by"))


def _locked_pending(queryset) -> Invitation:  # noqa: ANN001
    invitation = queryset.select_for_update().select_related("organization").first()
    if invitation is None:
        raise NotFound("no such invitation")
    if invitation.status != "pending":
        raise Conflict(f"the invitation is {invitation.status}")
    return invitation


def _join(invitation: Invitation, user: User) -> Membership:
    existing = Membership.objects.filter(organization=invitation.organization, user=user).first()
    if existing is None:
        # The member policies (seats) are asked now, not when the invitation was sent.
        extensions.check_member_policies(invitation.organization, user.email, invitation.role)
        existing = Membership.objects.create(organization=invitation.organization, user=user,
                                             role=invitation.role)
    Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now(),
                                                       accepted_by=user)
    log.info("invitation %s accepted by user %s", invitation.pk, user.pk)
    return existing


@transaction.atomic
def accept(invitation_id: object, user: User) -> Membership:
    """``user`` (signed in) accepts an invitation to their own email address."""
    invitation = _locked_pending(Invitation.objects.filter(pk=invitation_id,
                                                           email__iexact=user.email))
    return _join(invitation, user)


@transaction.atomic
def decline(invitation_id: object, user: User) -> Invitation:
    invitation = _locked_pending(Invitation.objects.filter(pk=invitation_id,
                                                           email__iexact=user.email))
    Invitation.objects.filter(pk=invitation.pk).update(declined_at=timezone.now())
    invitation.refresh_from_db()
    return invitation


def _by_token(token: str):  # noqa: ANN202 - a QuerySet of Invitation
    if not token or len(token) > 200:
        raise NotFound("no such invitation", field="token")
    return Invitation.objects.filter(token_hash=_hash(token))


@transaction.atomic
def accept_with_token(token: str, *, password: str | None,
                      signed_in: User | None) -> tuple[Membership, User]:
    """Accept by the emailed link: signed in as the invited address, or, for an address
    with no account yet, creating its account with ``password``.

    Raises ``NotFound`` (unknown token), ``Conflict`` (answered or expired), ``Forbidden``
    (signed in as someone else; the address has an account: sign in first; a login policy
    refuses passwords for it), ``InvalidInput`` (a missing or weak password).
    """
    invitation = _locked_pending(_by_token(token))
    existing = User.objects.filter(email__iexact=invitation.email).first()
    if signed_in is not None and signed_in.email.lower() != invitation.email:
        raise Forbidden(f"this invitation is for {invitation.email}; sign out first")
    if existing is not None:
        if signed_in is None or signed_in.pk != existing.pk:
            raise Forbidden(f"{invitation.email} has an account: sign in, then accept")
        return _join(invitation, existing), existing
    extensions.check_login_policies(invitation.email)  # e.g. SSO enforced: no password
    if not password:
        raise InvalidInput("choose a password for your new account", field="password")
    user = User(username=invitation.email, email=invitation.email)
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    user.save()
    return _join(invitation, user), user


@transaction.atomic
def decline_with_token(token: str) -> Invitation:
    invitation = _locked_pending(_by_token(token))
    Invitation.objects.filter(pk=invitation.pk).update(declined_at=timezone.now())
    invitation.refresh_from_db()
    return invitation


def peek(token: str) -> Invitation:
    """The pending invitation a link is for (its page shows org, role and whether the
    address has an account), or NotFound / Conflict."""
    invitation = _by_token(token).select_related("organization", "invited_by").first()
    if invitation is None:
        raise NotFound("no such invitation", field="token")
    if invitation.status != "pending":
        raise Conflict(f"the invitation is {invitation.status}")
    return invitation
