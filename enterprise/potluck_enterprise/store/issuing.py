# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Issuing licences: what a subscription or a trial entitles to, signed once, then mailed.

``reconcile`` is the one way a paid licence comes to exist. It computes the licence a
subscription entitles to now (its plan's features, its seat tier, its installation, an
expiry at the end of the paid period with the plan's grace days) and signs it unless that
very licence exists already (``issue_key``, unique in the database). Every event calls it
under the subscription's row lock, so any number of events, duplicated, late or out of
order, yield each distinct licence once. A subscription whose renewal stopped (cancelled,
refunded, charged back) gets nothing more; its last licence runs to its expiry.

Mail is an outbox: an issued licence has ``emailed_at`` null until Django's mail backend
took the message (a Celery task after commit, and a periodic sweep for any a dead
process or a mail server outage left).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from potluck_enterprise.licensing import clock
from potluck_enterprise.licensing.licence import FORMAT_VERSION, Licence
from potluck_enterprise.store import signing
from potluck_enterprise.store.models import IssuedLicence, Plan, StoreAccount, StoreSubscription

log = logging.getLogger(__name__)

# Licences say they were issued this long before the store's clock: an installation
# whose clock runs a few minutes behind would otherwise refuse a licence fresh from the
# store as "issued later than this server's clock".
CLOCK_SKEW_MARGIN = timedelta(minutes=10)


def new_licence_id() -> str:
    return f"lic-{uuid.uuid4().hex[:20]}"


def _issue_key(owner: str, features: list[str], seats: int, installation_id: str,
               expires_at: datetime) -> str:
    text = "|".join([owner, ",".join(sorted(features)), str(seats), installation_id,
                     expires_at.isoformat()])
    return hashlib.sha256(text.encode()).hexdigest()


def _sign(*, licensee: str, plan: Plan, seats: int, installation_id: str,
          issued_at: datetime, expires_at: datetime, grace_days: int) -> tuple[str, str]:
    licence = Licence(
        version=FORMAT_VERSION, license_id=new_licence_id(), licensee=licensee,
        organization=licensee, features=tuple(plan.features), seats=seats,
        issued_at=issued_at.replace(microsecond=0),
        expires_at=expires_at.replace(microsecond=0), grace_days=grace_days,
        installation_id=installation_id or None)
    return licence.license_id, signing.sign(licence)


def create_licence(*, account: StoreAccount, plan: Plan, seats: int, installation_id: str,
                   licensee: str, expires_at: datetime, grace_days: int, reason: str,
                   issue_key: str, subscription: StoreSubscription | None = None,
                   trial: object | None = None, source_event: str = "",
                   now: datetime | None = None) -> IssuedLicence:
    """Sign and store one licence (call inside the transaction that decided it); the
    email goes out after commit. Raises ``signing.StoreUnavailable`` (nothing stored)."""
    issued_at = (now or clock.now()) - CLOCK_SKEW_MARGIN
    license_id, raw = _sign(licensee=licensee, plan=plan, seats=seats,
                            installation_id=installation_id, issued_at=issued_at,
                            expires_at=expires_at, grace_days=grace_days)
    row = IssuedLicence.objects.create(
        license_id=license_id, account=account, subscription=subscription, trial=trial,
        reason=reason, issue_key=issue_key, raw=raw, plan=plan, features=list(plan.features),
        seats=seats, installation_id=installation_id, issued_at=issued_at.replace(microsecond=0),
        expires_at=expires_at.replace(microsecond=0), grace_days=grace_days,
        source_event=source_event)
    log.info("store: issued licence %s (%s) for account %s: plan=%s seats=%d expires=%s "
             "bound=%s", license_id, reason, account.pk, plan.key, seats,
             row.expires_at.isoformat(), bool(installation_id))
    transaction.on_commit(lambda: mail_later([license_id]))
    return row


def reconcile(sub: StoreSubscription, *, source_event: str = "",
              now: datetime | None = None) -> IssuedLicence | None:
    """Issue the licence ``sub`` entitles to now, unless it exists already; returns the
    new licence or None. Call with ``sub`` locked (``select_for_update``)."""
    if sub.renewal_stopped or sub.paid_through is None:
        return None
    if sub.status in ("canceled", "incomplete_expired"):
        return None
    plan = sub.price.plan
    latest = sub.licences.order_by("-expires_at", "-created_at").first()
    expires_at = sub.paid_through if latest is None else max(sub.paid_through,
                                                             latest.expires_at)
    expires_at = expires_at.replace(microsecond=0)
    seats = sub.price.seats
    key = _issue_key(f"subscription:{sub.pk}", list(plan.features), seats,
                     sub.installation_id, expires_at)
    if IssuedLicence.objects.filter(issue_key=key).exists():
        return None
    if latest is None:
        reason = IssuedLicence.Reason.PURCHASE
    elif expires_at > latest.expires_at:
        reason = IssuedLicence.Reason.RENEWAL
    else:
        reason = IssuedLicence.Reason.CHANGE
    return create_licence(
        account=sub.account, plan=plan, seats=seats, installation_id=sub.installation_id,
        licensee=sub.licensee, expires_at=expires_at, grace_days=plan.grace_days,
        reason=reason, issue_key=key, subscription=sub, source_event=source_event, now=now)


def trial_issue_key(domain: str) -> str:
    return hashlib.sha256(f"trial:{domain}".encode()).hexdigest()


# -- mail ------------------------------------------------------------------------------

def store_url(path: str = "/store/") -> str:
    base = (settings.STORE_PUBLIC_URL or settings.PUBLIC_URL or "").rstrip("/")
    return f"{base}{path}"


def licence_message(row: IssuedLicence) -> EmailMessage:
    when = row.expires_at.strftime("%Y-%m-%d")
    binding = (f"It is bound to installation {row.installation_id}." if row.installation_id
               else "It is not bound to an installation (it works on any).")
    body = (
        f"Your Potluck Enterprise licence {row.license_id} is attached ({row.plan.title}: "
        f"{', '.join(row.features) or 'no features'}; {row.seats} seats; valid until {when}, "
        f"then {row.grace_days} days of grace).\n{binding}\n\n"
        "To install it: open your Potluck console as an operator, go to Enterprise, and "
        "upload or paste the file under \"Install a licence\" (or run "
        f"`potluck license install {row.filename}`).\n\n"
        f"Your licences and subscriptions: {store_url('/store/account')}\n")
    message = EmailMessage(
        subject=f"Your Potluck Enterprise licence {row.license_id}", body=body,
        from_email=settings.DEFAULT_FROM_EMAIL, to=[row.account.email])
    message.attach(row.filename, row.raw, "text/plain")
    return message


def deliver_pending(ids: list[str] | None = None) -> int:
    """Email every issued licence not mailed yet (or the given ones); returns how many
    went out. A failure is logged (its class only) and left for the next sweep."""
    sent = 0
    pending = IssuedLicence.objects.filter(emailed_at__isnull=True)
    if ids is not None:
        pending = pending.filter(license_id__in=ids)
    for license_id in list(pending.values_list("license_id", flat=True)[:200]):
        with transaction.atomic():
            row = (IssuedLicence.objects.select_for_update(skip_locked=True)
                   .select_related("account", "plan")
                   .filter(license_id=license_id, emailed_at__isnull=True).first())
            if row is None:
                continue
            try:
                licence_message(row).send()
            except Exception as exc:
                log.warning("store: the email with licence %s was not sent (%s); retried "
                            "later", license_id, exc.__class__.__name__)
                continue
            row.emailed_at = timezone.now()
            row.save(update_fields=["emailed_at"])
            sent += 1
    return sent


def mail_later(ids: list[str]) -> None:
    try:
        from potluck_enterprise.store.tasks import send_licence_mail

        send_licence_mail.delay(ids)
    except Exception as exc:  # the broker is away: the periodic sweep sends them
        log.warning("store: licence mail not queued (%s)", exc.__class__.__name__)
