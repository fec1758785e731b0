# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Online renewal, the installation's side: fetch a renewed licence from the store.

Where ``POTLUCK_LICENSE_STORE_URL`` is set (and ``POTLUCK_LICENSE_ONLINE_RENEWAL`` is not
off), beat asks the store every ``CHECK_SECONDS`` once the installed licence is within
``RENEW_WITHIN_DAYS`` of its expiry (or in grace): it sends the installed licence (the
credential: the store answers only for a licence it issued) and this installation's id
to ``POST <store>/api/store/renewals``. A licence in the answer is verified like any
other (the issuer key shipped in code, this installation's binding) and installed only
if it is newer than the installed one. An installation that cannot reach the store
pastes the new file instead; nothing else changes. The outcome of the last attempt is
kept on the installation's row and shown in ``GET /api/license``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import httpx
from django.conf import settings

from potluck.errors import PotluckError
from potluck_enterprise.licensing import clock, format, installation, services
from potluck_enterprise.licensing.licence import EXPIRY_WARNING_DAYS, LicenceState
from potluck_enterprise.licensing.models import Installation

log = logging.getLogger(__name__)

RENEW_WITHIN_DAYS = EXPIRY_WARNING_DAYS  # the licence's "expiring" state
CHECK_SECONDS = 3600
TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class RenewalOutcome:
    status: str  # renewed, current, ended, skipped, failed
    detail: str
    license_id: str | None = None


def _record(outcome: RenewalOutcome, now: datetime) -> RenewalOutcome:
    Installation.objects.filter(pk=1).update(
        renewal_checked_at=now, renewal_outcome=f"{outcome.status}: {outcome.detail}"[:500])
    return outcome


def due(now: datetime | None = None) -> bool:
    """Whether beat should ask the store now: configured, a licence installed and near
    its expiry, and the last attempt at least ``CHECK_SECONDS`` ago."""
    now = now or clock.now()
    if not settings.LICENSE_STORE_URL or not settings.LICENSE_ONLINE_RENEWAL:
        return False
    _, licence, state, _ = services.licence_in_effect(now)
    if licence is None or state == LicenceState.ACTIVE:  # ACTIVE: over 30 days left
        return False
    checked = installation.get().renewal_checked_at
    return checked is None or (now - checked).total_seconds() >= CHECK_SECONDS


def renew(now: datetime | None = None, *, client: httpx.Client | None = None
          ) -> RenewalOutcome:
    """Ask the store for a renewal of the installed licence now, and install it if newer.
    Never raises for the store's or the network's failures: the outcome says what
    happened (``failed``, with the reason)."""
    now = now or clock.now()
    base = (settings.LICENSE_STORE_URL or "").rstrip("/")
    if not base:
        return RenewalOutcome("skipped", "no store is configured (POTLUCK_LICENSE_STORE_URL)")
    record, licence, _, _ = services.licence_in_effect(now)
    if record is None or licence is None:
        return RenewalOutcome("skipped", "no verified licence is installed to renew")
    ours = installation.current_id()
    try:
        with client or httpx.Client(timeout=TIMEOUT_SECONDS) as http:
            answer = http.post(f"{base}/api/store/renewals",
                               json={"license": record.raw, "installation_id": ours})
    except httpx.HTTPError as exc:
        return _record(RenewalOutcome("failed", f"the store could not be reached "
                                      f"({exc.__class__.__name__})"), now)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict):
        reason = _reason(body) or f"the store answered {answer.status_code}"
        return _record(RenewalOutcome("failed", reason), now)
    status, detail = str(body.get("status") or ""), str(body.get("detail") or "")[:300]
    text = body.get("license")
    if status != "renewed" or not isinstance(text, str):
        return _record(RenewalOutcome(status or "failed", detail), now)
    try:
        offered = format.verify(text, now=now, installation_id=ours)
    except format.LicenceError as exc:
        return _record(RenewalOutcome("failed", f"the store's licence was refused: "
                                      f"{exc.message}"), now)
    if offered.license_id == licence.license_id or offered.issued_at < licence.issued_at \
            or offered.expires_at < licence.expires_at:
        return _record(RenewalOutcome("current", "the store's licence is not newer"), now)
    try:
        row = services.install(text, now=now, actor="online-renewal")
    except PotluckError as exc:
        return _record(RenewalOutcome("failed", f"the store's licence was not installed: "
                                      f"{exc.message}"), now)
    log.info("licence renewed online: %s replaces %s", row.license_id, licence.license_id)
    return _record(RenewalOutcome("renewed", f"installed {row.license_id}, valid until "
                                  f"{row.expires_at:%Y-%m-%d}", row.license_id), now)


def _reason(body: object) -> str:
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list) and value:
                return str(value[0])[:300]
            if isinstance(value, str):
                return value[:300]
    return ""
