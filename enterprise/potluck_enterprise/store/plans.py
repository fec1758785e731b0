# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's plans: set from one JSON document, mirrored as Stripe products and prices.

::

    {"currency": "USD",
     "plans": [{"key": "team", "title": "Team", "features": ["sso", "billing"],
                "grace_days": 14, "trial": {"days": 14, "seats": 5},
                "prices": [{"seats": 10, "month": 9900, "year": 99000},
                           {"seats": 50, "month": 39900, "year": 399000}]}]}

Amounts are integer minor units per term (9900 = 99.00 USD a month). A seat tier sells
up to ``seats`` seats. ``set_plans`` is all or nothing; a changed amount makes a new price
(Stripe prices are immutable) and retires the old one, which still maps the
subscriptions that pay it; a plan left out is retired (not sold, still honoured).
``sync_stripe`` then creates what Stripe lacks (idempotently).
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from potluck.errors import InvalidInput
from potluck_enterprise.licensing.format import MAX_GRACE_DAYS, MAX_SEATS
from potluck_enterprise.licensing.licence import KNOWN_FEATURES
from potluck_enterprise.store.models import Plan, PlanPrice, Term
from potluck_enterprise.store.stripe_store import StoreStripe

_KEY = re.compile(r"^[a-z][a-z0-9-]{0,49}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
MAX_AMOUNT = 10**12
# Stripe's zero-decimal currencies: the store shows amounts with two decimals, so it sells
# in the others (ISO 4217 exponent 2).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG",
                          "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, field="plans")


def _int(value: Any, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"{what} must be a whole number from {low} to {high}")
    return value


def _plan(spec: Any, index: int) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise _bad(f"plans[{index}] must be an object")
    key = spec.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise _bad(f"plans[{index}].key: lowercase letters, digits and '-' (e.g. team)")
    where = f"plan {key!r}"
    title = spec.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 100:
        raise _bad(f"{where}: a title of 1 to 100 characters")
    features = spec.get("features")
    if not isinstance(features, list) or not features or \
            any(f not in KNOWN_FEATURES for f in features) or len(set(features)) != len(features):
        raise _bad(f"{where}: features, a list of distinct names from "
                   f"{', '.join(KNOWN_FEATURES)}")
    trial = spec.get("trial") or {}
    if not isinstance(trial, dict):
        raise _bad(f"{where}: trial is {{\"days\": N, \"seats\": N}}")
    prices = spec.get("prices")
    if not isinstance(prices, list) or not prices:
        raise _bad(f"{where}: prices, a list of seat tiers")
    tiers: dict[tuple[int, str], int] = {}
    for tier in prices:
        if not isinstance(tier, dict):
            raise _bad(f"{where}: each price is {{\"seats\": N, \"month\": amount, "
                       "\"year\": amount}}")
        seats = _int(tier.get("seats"), f"{where}: seats", 1, MAX_SEATS)
        terms = [t for t in Term.values if t in tier]
        if not terms or set(tier) - {"seats", *Term.values}:
            raise _bad(f"{where}, {seats} seats: give month and/or year amounts only")
        for term in terms:
            if (seats, term) in tiers:
                raise _bad(f"{where}: {seats} seats per {term} is priced twice")
            tiers[(seats, term)] = _int(tier[term], f"{where}, {seats} seats per {term}", 1,
                                        MAX_AMOUNT)
    return {
        "key": key, "title": title.strip(), "features": list(features),
        "grace_days": _int(spec.get("grace_days", 14), f"{where}: grace_days", 0,
                           MAX_GRACE_DAYS),
        "trial_days": _int(trial.get("days", 0), f"{where}: trial days", 0, 90),
        "trial_seats": _int(trial.get("seats", 0), f"{where}: trial seats", 0, MAX_SEATS),
        "tiers": tiers,
    }


def parse(document: Any) -> tuple[str, list[dict[str, Any]]]:
    """(currency, plans) of a plans document; ``InvalidInput`` naming what is wrong."""
    if not isinstance(document, dict):
        raise _bad("the plans document is a JSON object with currency and plans")
    currency = document.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise _bad("currency: an ISO 4217 code such as USD")
    if currency.upper() in ZERO_DECIMAL:
        raise _bad(f"currency: the store sells in currencies with cents; {currency.upper()} "
                   "has none")
    plans = document.get("plans")
    if not isinstance(plans, list) or not plans:
        raise _bad("plans: a non-empty list")
    parsed = [_plan(p, i) for i, p in enumerate(plans)]
    keys = [p["key"] for p in parsed]
    if len(set(keys)) != len(keys):
        raise _bad("two plans have the same key")
    return currency.upper(), parsed


@transaction.atomic
def set_plans(document: Any) -> list[Plan]:
    """Make the store's plans those of ``document`` (see the module); returns them."""
    currency, parsed = parse(document)
    kept: list[Plan] = []
    for order, spec in enumerate(parsed):
        plan, _ = Plan.objects.select_for_update().get_or_create(
            key=spec["key"], defaults={"title": spec["title"]})
        plan.title, plan.features = spec["title"], spec["features"]
        plan.grace_days = spec["grace_days"]
        plan.trial_days, plan.trial_seats = spec["trial_days"], spec["trial_seats"]
        plan.order, plan.active = order, True
        plan.save()
        current = {(p.seats, p.term): p for p in
                   PlanPrice.objects.select_for_update().filter(plan=plan, active=True)}
        for (seats, term), amount in spec["tiers"].items():
            old = current.pop((seats, term), None)
            if old is not None and old.amount == amount and old.currency == currency:
                continue
            if old is not None:
                PlanPrice.objects.filter(pk=old.pk).update(active=False)
            PlanPrice.objects.create(plan=plan, seats=seats, term=term, amount=amount,
                                     currency=currency)
        PlanPrice.objects.filter(pk__in=[p.pk for p in current.values()]).update(active=False)
        kept.append(plan)
    Plan.objects.exclude(key__in=[p.key for p in kept]).update(active=False)
    return kept


def sync_stripe(client: StoreStripe | None = None) -> int:
    """Create the Stripe product of each active plan and the price of each active tier
    that has none yet; returns how many prices were created."""
    client = client or StoreStripe.from_settings()
    made = 0
    for plan in Plan.objects.filter(active=True):
        if not plan.stripe_product_id:
            plan.stripe_product_id = client.ensure_product(plan)
            Plan.objects.filter(pk=plan.pk).update(stripe_product_id=plan.stripe_product_id)
        for price in plan.prices.filter(active=True, stripe_price_id=""):
            stripe_id = client.ensure_price(price, plan.stripe_product_id)
            PlanPrice.objects.filter(pk=price.pk).update(stripe_price_id=stripe_id)
            made += 1
    return made


def catalogue() -> list[dict[str, Any]]:
    """The plans on sale, each with its tiers per term: what the store's page lists."""
    out = []
    for plan in Plan.objects.filter(active=True).prefetch_related("prices"):
        prices = [p for p in plan.prices.all() if p.active and p.stripe_price_id]
        out.append({
            "plan": plan,
            "features": [KNOWN_FEATURES.get(f, f) for f in plan.features],
            "terms": {term: sorted((p for p in prices if p.term == term),
                                   key=lambda p: p.seats) for term in Term.values},
            "prices": sorted(prices, key=lambda p: (p.seats, p.term)),
        })
    return out


def document() -> dict[str, Any]:
    """The active plans as a plans document (what ``potluck store plans show`` prints)."""
    plans = []
    currency = "USD"
    for plan in Plan.objects.filter(active=True):
        tiers: dict[int, dict[str, Any]] = {}
        for price in plan.prices.filter(active=True):
            currency = price.currency
            tiers.setdefault(price.seats, {"seats": price.seats})[price.term] = price.amount
        entry: dict[str, Any] = {"key": plan.key, "title": plan.title,
                                 "features": list(plan.features),
                                 "grace_days": plan.grace_days,
                                 "prices": [tiers[s] for s in sorted(tiers)]}
        if plan.has_trial:
            entry["trial"] = {"days": plan.trial_days, "seats": plan.trial_seats}
        plans.append(entry)
    return {"currency": currency, "plans": plans}


def format_amount(amount: int, currency: str) -> str:
    """Minor units as text (``9900``, ``USD`` → ``99.00 USD``); two decimals, as the
    store's currencies have (ISO 4217 exponent 2)."""
    return f"{amount // 100:,}.{amount % 100:02d} {currency}"
