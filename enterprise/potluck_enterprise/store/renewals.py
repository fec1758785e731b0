# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Online renewal, the store's side: an installation shows the licence it has, and gets
the newest one of the same subscription and binding.

The licence itself is the credential: it must verify against the issuer key and be one
this store issued. A licence bound to an installation is answered only for that
installation id. Answers (``Renewal.status``): ``renewed`` (a newer licence, its text),
``current`` (nothing newer yet; the subscription renews), ``ended`` (it will not renew:
a trial, a cancellation, a refund or a chargeback; the detail says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from potluck.errors import InvalidInput, NotFound
from potluck_enterprise.licensing import clock, format
from potluck_enterprise.store.issuing import CLOCK_SKEW_MARGIN
from potluck_enterprise.store.models import IssuedLicence


@dataclass(frozen=True)
class Renewal:
    status: str  # renewed, current, ended
    licence: IssuedLicence | None  # the newer licence when renewed
    detail: str


_STOPPED = {"canceled": "the subscription was cancelled",
            "refund": "the payment was refunded", "dispute": "the payment was disputed"}


def renewal_for(text: str, installation_id: str, now: datetime | None = None) -> Renewal:
    """What the store has for the holder of licence ``text`` on ``installation_id``.
    Raises ``format.LicenceError`` (400), ``InvalidInput`` or ``NotFound``."""
    now = (now or clock.now()) + CLOCK_SKEW_MARGIN
    licence = format.verify(text, now=now, installation_id=installation_id or None)
    if licence.bound and not installation_id:
        raise InvalidInput("give the installation id this licence is bound to",
                           field="installation_id")
    row = IssuedLicence.objects.select_related("subscription").filter(
        license_id=licence.license_id).first()
    if row is None:
        raise NotFound("this licence was not issued by this store", field="license")
    sub = row.subscription
    if sub is None:
        return Renewal("ended", None, "a trial licence is not renewed: buy a plan in the store")
    newest = (sub.licences.filter(installation_id=row.installation_id)
              .order_by("-expires_at", "-created_at").first())
    if newest is not None and newest.pk != row.pk:  # the latest expiry, the latest made
        return Renewal("renewed", newest, f"licence {newest.license_id} replaces "
                       f"{row.license_id}")
    if sub.renewal_stopped or not sub.renews:
        why = _STOPPED.get(sub.renewal_stopped, "the subscription does not renew")
        return Renewal("ended", None, f"{why}: this licence runs to its expiry and is not "
                       "renewed")
    return Renewal("current", None, "no newer licence yet: the store issues one when the "
                   "next period is paid")
