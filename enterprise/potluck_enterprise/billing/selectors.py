# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Read queries of billing, always scoped to one organization."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate

from potluck.accounts.models import ApiKey, Organization
from potluck_enterprise.billing import money, spend
from potluck_enterprise.billing.models import Budget, Period, PricedLine, Scope

GROUPS = ("day", "model", "key", "kind")


def spend_rows(organization: Organization, start: date, end: date, group_by: list[str]
               ) -> list[dict[str, Any]]:
    """Priced spend of the organization over the days [start, end] (inclusive, in
    ``BILLING_TIME_ZONE``), grouped by any of ``GROUPS``: amount (exact, as text),
    amount at list price, tokens or requests, lines."""
    zone = spend.billing_zone()
    lo = datetime.combine(start, time(0), tzinfo=zone)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    lines = PricedLine.objects.for_org(organization).filter(usage_at__gte=lo, usage_at__lt=hi)
    fields = {"day": TruncDate("usage_at", tzinfo=zone), "model": F("model"),
              "key": F("api_key_id"), "kind": F("kind")}
    names = [g for g in GROUPS if g in group_by]
    rows = (lines.annotate(**{f"g_{g}": fields[g] for g in names})
            .values(*[f"g_{g}" for g in names])
            .annotate(amount=Sum("amount"), list_amount=Sum("list_amount"),
                      quantity=Sum("quantity"), lines=Count("id"))
            .order_by(*[f"g_{g}" for g in names]))
    keys = dict(ApiKey.objects.filter(organization=organization).values_list("id", "name"))
    out = []
    for row in rows:
        item: dict[str, Any] = {}
        for g in names:
            value = row[f"g_{g}"]
            if g == "day":
                value = value.isoformat() if value else None
            elif g == "key":
                item["key_name"] = keys.get(value) if value else None
                value = str(value) if value else None
            item[g] = value
        item.update(amount=str(row["amount"] or Decimal(0)),
                    amount_display=money.display(row["amount"] or Decimal(0)),
                    list_amount=str(row["list_amount"] or Decimal(0)),
                    quantity=int(row["quantity"] or 0), lines=row["lines"])
        out.append(item)
    return out


def budget_status(budget: Budget, now: datetime) -> dict[str, Any]:
    """A budget's spend this period (the ledger), its limits and its reset."""
    start = spend.period_start(budget.period, now)
    key = spend.ScopeKey(budget.scope, str(budget.organization_id),
                         str(budget.api_key_id) if budget.api_key_id else None,
                         budget.period, start)
    spent = spend.ledger([key])[key]
    return {"period_start": start.isoformat(),
            "resets_at": spend.period_end(budget.period, start).isoformat(),
            "spent": str(spent), "spent_display": money.display(spent)}


def period_totals(organization: Organization, now: datetime) -> dict[str, str]:
    """The organization's priced spend this day and this month."""
    keys = [spend.ScopeKey(Scope.ORGANIZATION, str(organization.pk), None, p,
                           spend.period_start(p, now)) for p in (Period.DAY, Period.MONTH)]
    found = spend.ledger(keys)
    return {k.period: str(found[k]) for k in keys}
