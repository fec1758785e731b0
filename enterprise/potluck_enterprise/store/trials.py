# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Free trials: no card, a plan's trial seats for its trial days, one per email domain.

The address is proven (the buyer signed in through a link mailed to it), and the
``Trial`` table's primary key is the domain, so a second trial for ``acme.com`` is refused
by the database whatever races. Addresses at public mail providers (``PUBLIC_MAIL_DOMAINS``)
get no trial: one trial for every ``gmail.com`` user would be none for anyone, and one
per address would be unlimited. A trial licence has no grace period and is not renewed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from potluck.errors import Conflict, InvalidInput
from potluck_enterprise.licensing import clock
from potluck_enterprise.store import issuing
from potluck_enterprise.store.checkout import clean_installation_id, clean_licensee
from potluck_enterprise.store.models import IssuedLicence, Plan, StoreAccount, Trial

PUBLIC_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
    "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
    "yandex.ru", "yandex.com", "mail.ru", "qq.com", "163.com", "126.com", "zoho.com",
    "fastmail.com", "tutanota.com", "hey.com",
})


def start(account: StoreAccount, plan_key: str, *, installation_id: str = "",
          licensee: str = "", now: datetime | None = None) -> IssuedLicence:
    """Start the trial of ``plan_key`` for the account's domain and issue its licence
    (bound to ``installation_id`` when given). Raises ``InvalidInput`` (no such trial, a
    public mail domain, a malformed id) or ``Conflict`` (the domain had its trial)."""
    now = now or clock.now()
    plan = Plan.objects.filter(key=plan_key, active=True).first()
    if plan is None or not plan.has_trial:
        raise InvalidInput(f"there is no free trial of {plan_key!r}", field="plan")
    domain = account.domain
    if domain in PUBLIC_MAIL_DOMAINS:
        raise InvalidInput(f"trials are for company addresses; {domain} is a public mail "
                           "provider: sign in with your work address", field="email")
    installation_id = clean_installation_id(installation_id)
    licensee = clean_licensee(licensee or account.licensee or domain)
    with transaction.atomic():
        try:
            with transaction.atomic():
                trial = Trial.objects.create(domain=domain, account=account, plan=plan,
                                             created_at=now)
        except IntegrityError:
            taken = Trial.objects.filter(domain=domain).first()
            since = f" on {taken.created_at:%Y-%m-%d}" if taken else ""
            raise Conflict(f"{domain} already had its free trial{since}: one per email domain. "
                           "Buy a plan to go on", field="plan") from None
        if account.licensee != licensee:
            account.licensee = licensee
            account.save(update_fields=["licensee"])
        return issuing.create_licence(
            account=account, plan=plan, seats=plan.trial_seats,
            installation_id=installation_id, licensee=licensee,
            expires_at=now + timedelta(days=plan.trial_days), grace_days=0,
            reason=IssuedLicence.Reason.TRIAL, issue_key=issuing.trial_issue_key(domain),
            trial=trial, now=now)
