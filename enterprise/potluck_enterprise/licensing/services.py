# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""What licensing does: install a licence, say where it stands, count and guard seats.

The licence belongs to the installation, so nothing here is org-scoped: seats count
every active person with a membership in any organization.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal

from potluck import extensions
from potluck.accounts.models import User
from potluck.errors import Forbidden, InvalidInput
from potluck_enterprise.licensing import clock, format, installation
from potluck_enterprise.licensing.licence import (
    EXPIRY_URGENT_DAYS,
    KNOWN_FEATURES,
    Licence,
    LicenceState,
)
from potluck_enterprise.licensing.models import Installation, InstalledLicence

log = logging.getLogger(__name__)

# Sent after a licence is installed (in the installing process); the gate re-evaluates.
licence_changed = Signal()

NO_LICENCE = "none"  # state when nothing is installed
INVALID = "invalid"  # state when the stored licence no longer verifies


class SeatWarning(UserWarning):
    """Adding a member took the installation past its licensed seats (within the margin)."""


@dataclass(frozen=True)
class LicenceStatus:
    record: InstalledLicence | None
    licence: Licence | None  # None when nothing is installed or it no longer verifies
    state: str  # a LicenceState value, NO_LICENCE or INVALID
    seats_used: int
    checked_at: datetime
    installation: Installation
    warnings: list[str] = field(default_factory=list)

    @property
    def expiry_notice(self) -> str | None:
        """``30_days`` within 30 days of expiry, ``7_days`` within 7, ``grace`` once
        expired (features on until the grace ends), ``expired`` after; else None."""
        licence = self.licence
        if licence is None:
            return None
        if self.state in (LicenceState.GRACE, LicenceState.EXPIRED):
            return self.state
        if self.state == LicenceState.EXPIRING:
            left = licence.expires_at - self.checked_at
            return "7_days" if left.total_seconds() <= EXPIRY_URGENT_DAYS * 86400 else "30_days"
        return None

    def store_link(self) -> str | None:
        """The store's page for this installation (``POTLUCK_LICENSE_STORE_URL``), with
        its installation id and the seats in use; None when no store is configured."""
        base = (settings.LICENSE_STORE_URL or "").rstrip("/")
        if not base:
            return None
        query = urlencode({"installation_id": self.installation.installation_id,
                           "seats": max(1, self.seats_used)})
        return f"{base}/store/?{query}"

    @property
    def in_force(self) -> bool:
        return self.licence is not None and LicenceState(self.state).in_force

    def as_dict(self) -> dict[str, Any]:
        """The shape of ``GET /api/license`` and ``potluck license show --json``."""
        licence, record = self.licence, self.record
        body: dict[str, Any] = {
            "installed": record is not None,
            "state": self.state,
            "warnings": self.warnings,
            "seats_used": self.seats_used,
            "seats": licence.seats if licence else None,
            "seats_limit": licence.seats + licence.seat_margin() if licence else None,
            "license_id": None, "licensee": None, "organization": None, "features": [],
            "issued_at": None, "expires_at": None, "grace_days": None, "grace_ends_at": None,
            "installed_at": None, "installed_by": None,
            "installation_id": self.installation.installation_id,
            "bound_to": None, "days_left": None, "expiry_notice": self.expiry_notice,
            "store_url": self.store_link(),
            "online_renewal": {
                "enabled": bool(settings.LICENSE_STORE_URL and settings.LICENSE_ONLINE_RENEWAL),
                "checked_at": self.installation.renewal_checked_at,
                "outcome": self.installation.renewal_outcome or None,
            },
        }
        if record is not None:
            body.update(installed_at=record.installed_at,
                        installed_by=record.installed_by.email if record.installed_by else None)
        if licence is not None:
            body.update(
                license_id=licence.license_id, licensee=licence.licensee,
                organization=licence.organization, issued_at=licence.issued_at,
                expires_at=licence.expires_at, grace_days=licence.grace_days,
                grace_ends_at=licence.grace_ends_at, bound_to=licence.installation_id,
                days_left=_days_until(licence.expires_at, self.checked_at),
                features=[{"key": key, "title": KNOWN_FEATURES.get(key, key),
                           "enabled": self.in_force and key in KNOWN_FEATURES}
                          for key in licence.features],
            )
        return body


def current() -> InstalledLicence | None:
    """The installed licence's row, verified or not."""
    return InstalledLicence.objects.filter(active=True).select_related("installed_by").first()


def history() -> list[InstalledLicence]:
    return list(InstalledLicence.objects.all())


def _now(now: datetime | None) -> datetime:
    return now if now is not None else clock.now()


@transaction.atomic
def _store(text: str, licence: Licence, by: User | None, now: datetime) -> InstalledLicence:
    # Lock the active row so two installs in a race replace one another in order.
    previous = list(InstalledLicence.objects.select_for_update().filter(active=True))
    InstalledLicence.objects.filter(pk__in=[p.pk for p in previous]).update(
        active=False, replaced_at=now)
    return InstalledLicence.objects.create(
        raw=text, license_id=licence.license_id, format_version=licence.version,
        licensee=licence.licensee, organization=licence.organization,
        features=list(licence.features), seats=licence.seats, issued_at=licence.issued_at,
        expires_at=licence.expires_at, grace_days=licence.grace_days, installed_at=now,
        installed_by=by, active=True,
    )


def install(text: str | bytes, *, by: User | None = None, now: datetime | None = None,
            actor: str | None = None) -> InstalledLicence:
    """Verify ``text`` and make it the installed licence; the previous one becomes history.

    Refuses (``LicenceError``) anything that does not verify (a licence bound to another
    installation included), and a licence whose grace period has already ended:
    installing it would only switch features off. ``actor`` names who installed it in
    the audit trail when no person did (default ``operator``; online renewal says so).
    """
    now = _now(now)
    licence = format.verify(text, now=now, installation_id=installation.current_id())
    if licence.state_at(now) is LicenceState.EXPIRED:
        raise InvalidInput(
            f"the licence {licence.license_id} expired on {_day(licence.expires_at)} and its "
            f"grace period ended on {_day(licence.grace_ends_at)}; nothing was installed",
            field="license")
    clean = text.decode() if isinstance(text, bytes) else text
    record = _store(clean.strip() + "\n", licence, by, now)
    log.info("licence installed: id=%s licensee=%s features=%s seats=%d expires=%s",
             licence.license_id, licence.licensee, ",".join(licence.features),
             licence.seats, licence.expires_at.isoformat())
    licence_changed.send(sender=InstalledLicence, record=record)
    # After the signal: a licence that grants "compliance" has switched the audit log on.
    extensions.record_admin_event(
        "licence.installed", actor=f"user:{by.id}" if by else (actor or "operator"),
        target=f"licence:{licence.license_id}",
        details={"licensee": licence.licensee, "features": sorted(licence.features),
                 "seats": licence.seats, "expires_at": licence.expires_at.isoformat()})
    return record


def licence_in_effect(now: datetime | None = None
                      ) -> tuple[InstalledLicence | None, Licence | None, str, str | None]:
    """(row, verified licence, state, why it no longer verifies) at ``now``.

    The stored text is verified again each time, so an edited row or a clock set back
    before ``issued_at`` grants nothing.
    """
    now = _now(now)
    record = current()
    if record is None:
        return None, None, NO_LICENCE, None
    try:
        licence = format.verify(record.raw, now=now, installation_id=installation.current_id())
    except format.LicenceError as exc:
        return record, None, INVALID, exc.message
    return record, licence, licence.state_at(now).value, None


def seats_used() -> int:
    """Active people with a membership in any organization."""
    return User.objects.filter(is_active=True, memberships__isnull=False).distinct().count()


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _days_until(moment: datetime, now: datetime) -> int:
    return max(0, math.ceil((moment - now).total_seconds() / 86400))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _warnings(licence: Licence | None, state: str, used: int, invalid_reason: str | None,
              now: datetime) -> list[str]:
    if state == INVALID:
        return [f"the installed licence no longer verifies ({invalid_reason}); enterprise "
                "features are off"]
    if licence is None:
        return []
    found: list[str] = []
    if state == LicenceState.EXPIRING:
        days = _days_until(licence.expires_at, now)
        urgent = days <= EXPIRY_URGENT_DAYS
        found.append(f"the licence expires in {_plural(days, 'day')}, on "
                     f"{_day(licence.expires_at)}"
                     + (": install its renewal now" if urgent else ""))
    elif state == LicenceState.GRACE:
        found.append(f"the licence expired on {_day(licence.expires_at)}; enterprise features "
                     f"stay on during the grace period, until {_day(licence.grace_ends_at)}")
    elif state == LicenceState.EXPIRED:
        found.append(f"the licence expired on {_day(licence.expires_at)} and its grace period "
                     f"ended on {_day(licence.grace_ends_at)}: enterprise features are off "
                     "(their data is kept)")
    if used > licence.seats:
        limit = licence.seats + licence.seat_margin()
        found.append(f"{used} people use seats, more than the licence's {licence.seats}; "
                     f"adding members is refused past {limit}")
    found.extend(f"the licence grants {feature!r}, which this version of Potluck does not "
                 "know" for feature in licence.unknown_features)
    return found


def status(now: datetime | None = None) -> LicenceStatus:
    now = _now(now)
    record, licence, state, invalid_reason = licence_in_effect(now)
    used = seats_used()
    return LicenceStatus(record=record, licence=licence, state=state, seats_used=used,
                         checked_at=now, installation=installation.get(),
                         warnings=_warnings(licence, state, used, invalid_reason, now))


def _takes_a_new_seat(email: str) -> bool:
    return not User.objects.filter(email__iexact=email.strip(), is_active=True,
                                   memberships__isnull=False).exists()


def check_seat_for(email: str, now: datetime | None = None) -> None:
    """Before ``email`` joins an organization: warn past the seats, refuse past the margin.

    No licence in force (none installed, expired past grace) means no seat limit: the
    community edition has none.
    """
    _, licence, state, _ = licence_in_effect(now)
    if licence is None or not LicenceState(state).in_force or not _takes_a_new_seat(email):
        return
    used = seats_used()
    limit = licence.seats + licence.seat_margin()
    if used + 1 > limit:
        raise Forbidden(
            f"the licence allows {licence.seats} seats (at most {limit} with its margin) and "
            f"{used} are in use: remove a member or install a licence with more seats",
            field="email")
    if used + 1 > licence.seats:
        message = (f"adding {email} uses seat {used + 1} of the licence's {licence.seats} "
                   f"(adding members is refused past {limit})")
        log.warning("licence seats exceeded: %s", message)
        warnings.warn(message, SeatWarning, stacklevel=2)
