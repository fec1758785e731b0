# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The price book: versions, time-of-day windows, organization overrides, and pricing one
usage record into line drafts.

**A version** is the whole book from its ``effective_from`` on (JSON shape, as the CLI and
``POST /api/billing/prices`` take it)::

    {"effective_from": "2026-11-01T00:00:00Z", "currency": "USD", "time_zone": "UTC",
     "default_window": "off-peak", "default_multiplier": "0.5",
     "windows": [{"name": "peak", "days": ["mon", "tue", "wed", "thu", "fri"],
                  "start": "01:00", "end": "04:00", "multiplier": "1"}],
     "models": {"deepseek-chat": {"input": "0.27", "cached_input": "0.07",
                                  "output": "1.10", "fine_tuning": "3.00",
                                  "request_fee": "0"}}}

Prices are per 1M tokens (the request fee per request), as strings. A usage record is
priced by the version in force at its own timestamp and stamped with it.

**Windows** are wall-clock times in the version's IANA ``time_zone`` (``zoneinfo``, the
standard library's binding of the system's tz database), on the listed weekdays. A window
whose end is not after its start crosses midnight: it starts on a listed day and ends the
next day (``"16:30"``-``"00:30"``). Because windows are wall-clock, a window across a DST
change lasts an hour more or less in UTC, as a local customer expects. The first window
that matches wins; outside all, ``default_window`` and ``default_multiplier`` apply. A
window's ``models`` gives per-model multipliers (DeepSeek 2025: V3 50 % off, R1 75 % off).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from potluck.errors import PotluckError
from potluck_enterprise.billing import money
from potluck_enterprise.billing.models import (
    LineKind,
    ModelPrice,
    PricedLine,
    PriceOverride,
    PriceVersion,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {"weekdays": DAYS[:5], "weekends": DAYS[5:], "all": DAYS}
PRICE_FIELDS = ("input", "cached_input", "output", "fine_tuning", "request_fee")
MAX_PRICE = Decimal(1_000_000)


class PriceBookError(PotluckError):
    """A price book, window or override that cannot be used (400, naming the field)."""

    status = 400


def _bad(field_name: str, message: str) -> PriceBookError:
    return PriceBookError(f"{field_name}: {message}", field=field_name)


# -- windows --------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """A time-of-day window: ``days`` are weekday numbers (Monday 0), ``start``/``end``
    minutes after local midnight (``end <= start``: crosses midnight)."""

    name: str
    days: frozenset[int]
    start: int
    end: int
    multiplier: Decimal
    models: dict[str, Decimal] = field(default_factory=dict)

    def matches(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return ((weekday in self.days and minute >= self.start)
                or ((weekday - 1) % 7 in self.days and minute < self.end))

    def multiplier_for(self, model: str) -> Decimal:
        return self.models.get(model, self.multiplier)


def _minutes(value: Any, name: str) -> int:
    try:
        parsed = time.fromisoformat(str(value))
    except ValueError:
        raise _bad(name, f"{value!r} is not a time of day (HH:MM)") from None
    if parsed.second or parsed.microsecond:
        raise _bad(name, "whole minutes only (HH:MM)")
    return parsed.hour * 60 + parsed.minute


def _days(value: Any, name: str) -> frozenset[int]:
    if isinstance(value, str):
        value = list(DAY_GROUPS.get(value.lower(), [value]))
    if not isinstance(value, list) or not value:
        raise _bad(name, 'a list of weekdays ("mon".."sun"), or "weekdays", "weekends", "all"')
    found = set()
    for day in value:
        if not isinstance(day, str) or day.lower()[:3] not in DAYS:
            raise _bad(name, f"{day!r} is not a weekday")
        found.add(DAYS.index(day.lower()[:3]))
    return frozenset(found)


def _multiplier(value: Any, name: str) -> Decimal:
    try:
        return money.decimal(value, field=name, places=money.MULTIPLIER_PLACES,
                             maximum=Decimal(100))
    except money.MoneyError as exc:
        raise PriceBookError(str(exc), field=name) from None


def parse_windows(raw: Any) -> list[Window]:
    """Windows from their JSON form; raises ``PriceBookError`` naming the bad field."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise _bad("windows", "a list of windows")
    windows = []
    for i, item in enumerate(raw):
        where = f"windows[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "an object with name, days, start, end, multiplier")
        name = item.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 40:
            raise _bad(f"{where}.name", "a name of 1 to 40 characters")
        models = item.get("models") or {}
        if not isinstance(models, dict):
            raise _bad(f"{where}.models", "an object of model name -> multiplier")
        windows.append(Window(
            name=name, days=_days(item.get("days"), f"{where}.days"),
            start=_minutes(item.get("start"), f"{where}.start"),
            end=_minutes(item.get("end"), f"{where}.end"),
            multiplier=_multiplier(item.get("multiplier", "1"), f"{where}.multiplier"),
            models={str(m): _multiplier(v, f"{where}.models.{m}") for m, v in models.items()}))
    return windows


def windows_json(windows: list[Window]) -> list[dict[str, Any]]:
    return [{"name": w.name, "days": [DAYS[d] for d in sorted(w.days)],
             "start": f"{w.start // 60:02d}:{w.start % 60:02d}",
             "end": f"{w.end // 60:02d}:{w.end % 60:02d}", "multiplier": str(w.multiplier),
             **({"models": {m: str(v) for m, v in w.models.items()}} if w.models else {})}
            for w in windows]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("time_zone", f"{name!r} is not an IANA time zone") from None


# -- versions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Prices:
    """One model's prices per 1M tokens (``request_fee`` per request); None: not billed."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    fine_tuning: Decimal | None
    request_fee: Decimal


@dataclass(frozen=True)
class Version:
    """An immutable, loaded price version."""

    id: int
    effective_from: datetime
    currency: str
    zone: ZoneInfo
    windows: tuple[Window, ...]
    default_window: str
    default_multiplier: Decimal
    prices: dict[str, Prices]

    def window_at(self, moment: datetime, model: str) -> tuple[str, Decimal]:
        """The window name and multiplier for ``model`` at ``moment`` (aware)."""
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        for window in self.windows:
            if window.matches(local.weekday(), minute):
                return window.name, window.multiplier_for(model)
        return self.default_window, self.default_multiplier


def _price(value: Any, name: str, *, required: bool) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise _bad(name, "required")
        return None
    try:
        return money.decimal(value, field=name, places=money.PRICE_PLACES, maximum=MAX_PRICE)
    except money.MoneyError as exc:
        raise PriceBookError(str(exc), field=name) from None


def _when(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = parse_datetime(str(value)) if value else None
        if moment is None:
            raise _bad(name, f"{value!r} is not an ISO 8601 date and time")
    if timezone.is_naive(moment):
        raise _bad(name, "give a time zone (e.g. 2026-11-01T00:00:00Z)")
    return moment


@transaction.atomic
def create_version(book: dict[str, Any], *, created_by: str = "") -> PriceVersion:
    """A new version from a book (module docstring), effective from its
    ``effective_from`` (default: now). Raises ``PriceBookError`` for a malformed book, a
    currency other than the installation's, two versions at one time, or a start before
    usage that is already priced (the past is never re-priced)."""
    if not isinstance(book, dict):
        raise _bad("book", "a JSON object")
    effective = _when(book.get("effective_from") or timezone.now(), "effective_from")
    code = str(book.get("currency") or money.currency()).upper()
    if code != money.currency():
        raise _bad("currency", f"this installation bills in {money.currency()} "
                   "(POTLUCK_BILLING_CURRENCY); one currency per installation")
    tz_name = str(book.get("time_zone") or "UTC")
    zone(tz_name)
    windows = parse_windows(book.get("windows"))
    default_multiplier = _multiplier(book.get("default_multiplier", "1"), "default_multiplier")
    models = book.get("models")
    if not isinstance(models, dict) or not models:
        raise _bad("models", "an object of model name -> prices")
    PriceVersion.objects.select_for_update().all().exists()  # one writer at a time
    later = PricedLine.objects.filter(usage_at__gte=effective).exists()
    if later:
        raise _bad("effective_from", "usage at or after this time is already priced; a "
                   "price change takes effect from now or later")
    if PriceVersion.objects.filter(effective_from=effective).exists():
        raise _bad("effective_from", "another version starts at exactly this time")
    version = PriceVersion.objects.create(
        effective_from=effective, currency=code, time_zone=tz_name,
        windows=windows_json(windows),
        default_window=str(book.get("default_window") or "standard")[:40],
        default_multiplier=default_multiplier, note=str(book.get("note") or "")[:200],
        created_by=created_by[:254])
    rows = []
    for name, prices in models.items():
        where = f"models.{name}"
        if not isinstance(prices, dict):
            raise _bad(where, "an object of prices")
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise _bad(where, "a model name of 1 to 200 characters")
        unknown = set(prices) - set(PRICE_FIELDS)
        if unknown:
            raise _bad(where, f"unknown field(s) {', '.join(sorted(unknown))}")
        rows.append(ModelPrice(
            version=version, model=name,
            input=_price(prices.get("input"), f"{where}.input", required=True),
            cached_input=_price(prices.get("cached_input"), f"{where}.cached_input",
                                required=False),
            output=_price(prices.get("output"), f"{where}.output", required=True),
            fine_tuning=_price(prices.get("fine_tuning"), f"{where}.fine_tuning",
                               required=False),
            request_fee=_price(prices.get("request_fee"), f"{where}.request_fee",
                               required=False) or Decimal(0)))
    ModelPrice.objects.bulk_create(rows)
    BOOK.invalidate()
    return version


def version_json(version: PriceVersion) -> dict[str, Any]:
    return {
        "id": version.pk, "effective_from": version.effective_from.isoformat(),
        "currency": version.currency, "time_zone": version.time_zone,
        "default_window": version.default_window,
        "default_multiplier": str(version.default_multiplier), "windows": version.windows,
        "note": version.note, "created_by": version.created_by,
        "created_at": version.created_at.isoformat(),
        "models": {p.model: {f: (None if getattr(p, f) is None else str(getattr(p, f)))
                             for f in PRICE_FIELDS} for p in version.prices.all()},
    }


def _load(version: PriceVersion) -> Version:
    prices = {}
    for p in version.prices.all():
        prices[p.model] = Prices(input=p.input, cached_input=p.input if p.cached_input is None
                                 else p.cached_input, output=p.output,
                                 fine_tuning=p.fine_tuning, request_fee=p.request_fee)
    return Version(id=version.pk, effective_from=version.effective_from,
                   currency=version.currency, zone=zone(version.time_zone),
                   windows=tuple(parse_windows(version.windows)),
                   default_window=version.default_window,
                   default_multiplier=version.default_multiplier, prices=prices)


# -- overrides ------------------------------------------------------------------------
@dataclass(frozen=True)
class Override:
    id: int
    model: str
    discount: Decimal
    custom: dict[str, Decimal]
    effective_from: datetime


def create_override(organization: Any, terms: dict[str, Any]) -> PriceOverride:
    """An organization's override from ``effective_from`` (default now): ``model`` (blank
    for all), ``discount`` (a fraction, "0.15"), custom prices (``PRICE_FIELDS``). Raises
    ``PriceBookError``; like versions, it may not start before priced usage."""
    effective = _when(terms.get("effective_from") or timezone.now(), "effective_from")
    try:
        discount = money.decimal(terms.get("discount") or "0", field="discount",
                                 places=money.DISCOUNT_PLACES, maximum=Decimal(1))
    except money.MoneyError as exc:
        raise PriceBookError(str(exc), field="discount") from None
    custom = {f: _price(terms.get(f), f, required=False) for f in PRICE_FIELDS}
    if PricedLine.objects.filter(organization=organization, usage_at__gte=effective).exists():
        raise _bad("effective_from", "this organization's usage at or after this time is "
                   "already priced")
    override = PriceOverride.objects.create(
        organization=organization, model=str(terms.get("model") or "")[:200],
        discount=discount, effective_from=effective, note=str(terms.get("note") or "")[:200],
        **custom)
    BOOK.invalidate()
    return override


# -- the book, cached per process -----------------------------------------------------
class PriceBook:
    """Every version and override, loaded once per process and reloaded when rows are
    added (versions and overrides are append-only, so a loaded one never goes stale)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self.versions: list[Version] = []
        self._starts: list[datetime] = []
        self.overrides: dict[str, list[Override]] = {}
        self.bases: dict[str, str] = {}

    def invalidate(self) -> None:
        self._stamp = None

    def refresh(self) -> PriceBook:
        """Reload if anything was added since the last load (three cheap queries)."""
        from django.db.models import Count, Max

        from potluck.registry.models import RegisteredModel

        stamp = (PriceVersion.objects.aggregate(n=Count("id"), top=Max("id"))["top"],
                 PriceOverride.objects.aggregate(top=Max("id"))["top"],
                 RegisteredModel.objects.filter(base__isnull=False).count())
        if stamp == self._stamp:
            return self
        with self._lock:
            known = {v.id: v for v in self.versions}
            versions = [known.get(v.pk) or _load(v) for v in
                        PriceVersion.objects.order_by("effective_from")
                        .prefetch_related("prices")]
            overrides: dict[str, list[Override]] = {}
            for o in PriceOverride.objects.order_by("-effective_from", "-id"):
                overrides.setdefault(str(o.organization_id), []).append(Override(
                    id=o.pk, model=o.model, discount=o.discount, effective_from=o.effective_from,
                    custom={f: getattr(o, f) for f in PRICE_FIELDS
                            if getattr(o, f) is not None}))
            bases = dict(RegisteredModel.objects.filter(base__isnull=False)
                         .values_list("name", "base__name"))
            self.versions, self.overrides, self.bases = versions, overrides, bases
            self._starts = [v.effective_from for v in versions]
            self._stamp = stamp
        return self

    def version_at(self, moment: datetime) -> Version | None:
        i = bisect.bisect_right(self._starts, moment)
        return self.versions[i - 1] if i else None

    def override_at(self, organization_id: str, model: str, moment: datetime
                    ) -> Override | None:
        general = None
        for o in self.overrides.get(organization_id, ()):  # newest first
            if o.effective_from > moment:
                continue
            if o.model == model:
                return o
            if not o.model and general is None:
                general = o
        return general

    def prices_for(self, version: Version, model: str) -> tuple[str, Prices] | None:
        """(the model whose price applies, its prices): its own, else its base's."""
        found = version.prices.get(model)
        if found is not None:
            return model, found
        base = self.bases.get(model)
        if base is not None and base in version.prices:
            return base, version.prices[base]
        return None


BOOK = PriceBook()


# -- pricing --------------------------------------------------------------------------
@dataclass(frozen=True)
class LineDraft:
    """A line before it is written (see ``PricedLine``)."""

    kind: str
    quantity: int
    unit: str
    unit_price: Decimal
    list_unit_price: Decimal
    multiplier: Decimal
    discount: Decimal
    amount: Decimal
    list_amount: Decimal
    priced_model: str
    version_id: int
    window: str
    override_id: int | None


TOKENS = "1M tokens"
REQUEST = "request"


def price_usage(book: PriceBook, organization_id: str, model: str, moment: datetime, *,
                prompt_tokens: int = 0, cached_tokens: int = 0, completion_tokens: int = 0,
                requests: int = 0, training_tokens: int = 0) -> list[LineDraft]:
    """The lines for this usage, exact (``money.exact``); empty when no version is in
    force at ``moment`` or the model (and its base) has no price. Zero quantities make
    no line."""
    version = book.version_at(moment)
    if version is None:
        return []
    found = book.prices_for(version, model)
    if found is None:
        return []
    priced_model, prices = found
    window, multiplier = version.window_at(moment, priced_model)
    override = book.override_at(organization_id, model, moment) or (
        book.override_at(organization_id, priced_model, moment) if priced_model != model
        else None)
    discount = override.discount if override else Decimal(0)
    cached = min(cached_tokens, prompt_tokens)
    wanted = [(LineKind.INPUT, prompt_tokens - cached, "input", TOKENS),
              (LineKind.CACHED_INPUT, cached, "cached_input", TOKENS),
              (LineKind.OUTPUT, completion_tokens, "output", TOKENS),
              (LineKind.REQUEST, requests, "request_fee", REQUEST),
              (LineKind.TRAINING, training_tokens, "fine_tuning", TOKENS)]
    drafts = []
    with money.exact():
        for kind, quantity, price_field, unit in wanted:
            if quantity <= 0:
                continue
            list_price = getattr(prices, price_field)
            if list_price is None:
                continue
            base = override.custom.get(price_field, list_price) if override else list_price
            if price_field == "cached_input" and override and "cached_input" not in \
                    override.custom and "input" in override.custom:
                base = override.custom["input"]
            unit_price = base * multiplier * (1 - discount)
            per = money.TOKENS_PER_UNIT if unit == TOKENS else Decimal(1)
            drafts.append(LineDraft(
                kind=kind, quantity=quantity, unit=unit, unit_price=unit_price,
                list_unit_price=list_price, multiplier=multiplier, discount=discount,
                amount=quantity * unit_price / per, list_amount=quantity * list_price / per,
                priced_model=priced_model, version_id=version.id, window=window,
                override_id=override.id if override else None))
    return drafts


def line_id(usage_id: str, kind: str) -> str:
    """The priced line's id (and Stripe identifier): stable for (usage id, kind)."""
    digest = hashlib.sha256(f"{usage_id}\x00{kind}".encode()).hexdigest()
    return "pl_" + digest[:32]
