# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Cost vs revenue, per day and model, laid out like DeepSeek's published day.

For each day (in ``BILLING_TIME_ZONE``) and serving model (an adapter counts under its
base model, whose replicas served it):

- served tokens: input (not cached), cached input, output, and requests, from the usage
  records (every record, priced or not);
- theoretical revenue: those tokens at list price (the priced lines' ``list_amount``: no
  window, no discount);
- billed revenue: what the priced lines charge (after off-peak windows and discounts);
- cost: the READY hours of the model's replicas x their node type's hourly cost;
- margin = billed - cost; cost-profit margin = (theoretical - cost) / cost, DeepSeek's
  figure (545 % on its day), and the same for billed revenue.

Amounts are Decimals rounded half-even to 6 places for the report (the ledger is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.db import connection

from potluck.usage.models import UsageRecord
from potluck_enterprise.billing import costs, money, spend
from potluck_enterprise.billing.models import PricedLine
from potluck_enterprise.billing.pricebook import BOOK

PLACES = Decimal("0.000001")
ALL = "(all models)"


@dataclass
class Row:
    """One day (or the whole range: ``day`` None) of one model (or ``ALL``)."""

    day: date | None
    model: str
    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    theoretical_revenue: Decimal = Decimal(0)
    billed_revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    gpu_hours: Decimal = Decimal(0)

    @property
    def margin(self) -> Decimal:
        return self.billed_revenue - self.cost

    @staticmethod
    def _percent(revenue: Decimal, cost: Decimal) -> Decimal | None:
        if cost == 0:
            return None
        return ((revenue - cost) / cost * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)

    @property
    def cost_profit_margin(self) -> Decimal | None:
        """(theoretical revenue - cost) / cost, in percent (None without cost)."""
        return self._percent(self.theoretical_revenue, self.cost)

    @property
    def billed_margin(self) -> Decimal | None:
        return self._percent(self.billed_revenue, self.cost)

    def add(self, other: Row) -> None:
        for name in ("requests", "input_tokens", "cached_tokens", "output_tokens",
                     "theoretical_revenue", "billed_revenue", "cost", "gpu_hours"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        def amount(value: Decimal) -> str:
            return str(value.quantize(PLACES, ROUND_HALF_EVEN))

        def percent(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {"day": self.day.isoformat() if self.day else None, "model": self.model,
                "requests": self.requests, "input_tokens": self.input_tokens,
                "cached_tokens": self.cached_tokens, "output_tokens": self.output_tokens,
                "theoretical_revenue": amount(self.theoretical_revenue),
                "billed_revenue": amount(self.billed_revenue), "cost": amount(self.cost),
                "gpu_hours": str(self.gpu_hours.quantize(PLACES)),
                "margin": amount(self.margin),
                "cost_profit_margin_percent": percent(self.cost_profit_margin),
                "billed_margin_percent": percent(self.billed_margin)}


@dataclass
class Report:
    start: date
    end: date  # exclusive
    currency: str
    days: list[Row] = field(default_factory=list)  # per day and model
    models: list[Row] = field(default_factory=list)  # per model over the range
    total: Row = field(default_factory=lambda: Row(None, ALL))

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "currency": self.currency, "days": [r.as_dict() for r in self.days],
                "models": [r.as_dict() for r in self.models], "total": self.total.as_dict()}


def month_range(month: str) -> tuple[date, date]:
    """``"2026-11"`` -> (2026-11-01, 2026-12-01); raises ``ValueError``."""
    first = datetime.strptime(month, "%Y-%m").date()
    return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _bounds(day: date) -> tuple[datetime, datetime]:
    zone = spend.billing_zone()
    return (datetime.combine(day, time(0), tzinfo=zone),
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))


def build(start: date, end: date) -> Report:
    """The report for the days [start, end) (see the module docstring)."""
    BOOK.refresh()
    bases = BOOK.bases
    zone_name = spend.billing_zone().key
    rows: dict[tuple[date, str], Row] = {}

    def row(day: date, model: str) -> Row:
        model = bases.get(model, model)
        return rows.setdefault((day, model), Row(day, model))

    first, _ = _bounds(start)
    last, _ = _bounds(end)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT (created_at AT TIME ZONE %s)::date, model, count(*),
                   coalesce(sum(prompt_tokens - least(cached_tokens, prompt_tokens)), 0),
                   coalesce(sum(least(cached_tokens, prompt_tokens)), 0),
                   coalesce(sum(completion_tokens), 0)
            FROM {UsageRecord._meta.db_table}
            WHERE created_at >= %s AND created_at < %s GROUP BY 1, 2""",
                       [zone_name, first, last])
        for day, model, requests, inputs, cached, outputs in cursor.fetchall():
            r = row(day, model)
            r.requests += requests
            r.input_tokens += inputs
            r.cached_tokens += cached
            r.output_tokens += outputs
        cursor.execute(f"""
            SELECT (usage_at AT TIME ZONE %s)::date, priced_model, sum(list_amount),
                   sum(amount)
            FROM {PricedLine._meta.db_table}
            WHERE usage_at >= %s AND usage_at < %s GROUP BY 1, 2""", [zone_name, first, last])
        for day, model, theoretical, billed in cursor.fetchall():
            r = row(day, model)
            r.theoretical_revenue += theoretical
            r.billed_revenue += billed
    day = start
    while day < end:
        lo, hi = _bounds(day)
        for piece in costs.replica_costs(lo, hi):
            r = row(day, piece.model or "(deleted deployment)")
            r.cost += piece.cost
            r.gpu_hours += piece.hours * max(1, piece.gpus)
        day += timedelta(days=1)
    report = Report(start, end, money.currency())
    report.days = [rows[k] for k in sorted(rows)]
    per_model: dict[str, Row] = {}
    for r in report.days:
        per_model.setdefault(r.model, Row(None, r.model)).add(r)
        report.total.add(r)
    report.models = [per_model[m] for m in sorted(per_model)]
    return report


def table(report: Report) -> list[list[str]]:
    """Rows for a text table or CSV: a header, each day and model, each model, the total."""
    header = ["day", "model", "requests", "input tokens", "cached tokens", "output tokens",
              f"theoretical revenue ({report.currency})", f"billed revenue ({report.currency})",
              f"cost ({report.currency})", f"margin ({report.currency})",
              "cost-profit margin %", "billed margin %"]
    out = [header]
    for r in [*report.days, *report.models, report.total]:
        d = r.as_dict()
        out.append([d["day"] or "month" if r is not report.total else "total", r.model,
                    str(r.requests), str(r.input_tokens), str(r.cached_tokens),
                    str(r.output_tokens), money.display(r.theoretical_revenue),
                    money.display(r.billed_revenue), money.display(r.cost),
                    money.display(r.margin), d["cost_profit_margin_percent"] or "-",
                    d["billed_margin_percent"] or "-"])
    return out
