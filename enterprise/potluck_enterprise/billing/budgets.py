# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Budgets: limits per organization or API key per day or month, and their alerts.

The hard limit is enforced in the gateway (``potluck_enterprise.billing.policy``). Alerts
come from the ledger: ``check_limits`` runs in the pricing transaction and makes at most
one ``BudgetAlert`` per budget, period and level (unique); once that commits,
``deliver`` sends its email (Django's mail backend) and webhook (JSON, signed
``X-Potluck-Signature: sha256=<HMAC of the body>``), each marked done when it succeeds,
retried by the task ``billing.deliver_alerts`` until then. The console banner reads the
alerts of the current period (``banners``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from potluck.errors import PotluckError
from potluck_enterprise import crypto
from potluck_enterprise.billing import money, spend
from potluck_enterprise.billing.models import (
    AlertLevel,
    BillingAccount,
    Budget,
    BudgetAlert,
    Period,
    Scope,
)

log = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 10


class BudgetError(PotluckError):
    status = 400


def describe(budget: Budget) -> str:
    """How the budget is named to people: "the daily budget of API key 'ci'"."""
    period = "daily" if budget.period == Period.DAY else "monthly"
    if budget.api_key_id:
        return f"the {period} budget of API key {budget.api_key.name!r}"
    return f"the {period} budget of organization {budget.organization.name!r}"


def _limit(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return money.decimal(value, field=name, places=money.PRICE_PLACES,
                             maximum=Decimal(10) ** 15)
    except money.MoneyError as exc:
        raise BudgetError(str(exc), field=name) from None


def save_budget(organization: Any, data: dict[str, Any], budget: Budget | None = None
                ) -> tuple[Budget, str | None]:
    """Create or update a budget from ``period``, ``api_key`` (an ApiKey of the
    organization, or None), ``soft_limit``, ``hard_limit`` (strings), ``emails``,
    ``webhook_url``. Returns (budget, the webhook secret when one was made now: shown
    once). Raises ``BudgetError``."""
    period = data.get("period", budget.period if budget else None)
    if period not in Period.values:
        raise BudgetError("period: day or month", field="period")
    soft = _limit(data.get("soft_limit", budget.soft_limit if budget else None), "soft_limit")
    hard = _limit(data.get("hard_limit", budget.hard_limit if budget else None), "hard_limit")
    if soft is None and hard is None:
        raise BudgetError("set soft_limit, hard_limit or both", field="hard_limit")
    if soft is not None and hard is not None and soft > hard:
        raise BudgetError("soft_limit is above hard_limit", field="soft_limit")
    emails = data.get("emails", budget.emails if budget else [])
    if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e
                                               for e in emails):
        raise BudgetError("emails: a list of email addresses", field="emails")
    budget = budget or Budget(organization=organization, period=period,
                              api_key=data.get("api_key"))
    budget.period, budget.soft_limit, budget.hard_limit = period, soft, hard
    budget.emails = emails
    budget.webhook_url = data.get("webhook_url", budget.webhook_url) or ""
    secret = None
    if budget.webhook_url and not budget.webhook_secret_encrypted:
        secret = "whsec_" + secrets.token_urlsafe(24)
        budget.webhook_secret_encrypted = crypto.encrypt(secret)
    from django.db import IntegrityError

    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:
        raise BudgetError("this scope already has a budget for that period",
                          field="period") from None
    return budget, secret


# -- alerts (in the pricing transaction) ----------------------------------------------
def check_limits(keys: Iterable[spend.ScopeKey]) -> list[BudgetAlert]:
    """Make the alerts that the counters of ``keys`` now call for (once each)."""
    keys = list(keys)
    orgs = {k.organization_id for k in keys}
    if not orgs:
        return []
    budgets = list(Budget.objects.filter(organization_id__in=orgs)
                   .filter(models_q_limits()))
    if not budgets:
        return []
    wanted = {}
    for b in budgets:
        for k in keys:
            same_scope = (k.scope == Scope.KEY and str(b.api_key_id) == k.api_key_id) or (
                k.scope == Scope.ORGANIZATION and b.api_key_id is None)
            if str(b.organization_id) == k.organization_id and b.period == k.period \
                    and same_scope:
                wanted[(b, k)] = None
    totals = spend.ledger({k for _, k in wanted})
    made = []
    for b, k in wanted:
        spent = totals[k]
        for level, limit in ((AlertLevel.SOFT, b.soft_limit), (AlertLevel.HARD, b.hard_limit)):
            if limit is None or spent < limit:
                continue
            alert, created = BudgetAlert.objects.get_or_create(
                budget=b, period_start=k.start, level=level,
                defaults={"spent": spent, "limit": limit})
            if created:
                made.append(alert)
    if made:
        ids = [a.pk for a in made]
        transaction.on_commit(lambda: _deliver_later(ids))
    return made


def models_q_limits():  # noqa: ANN201 - a Q
    from django.db.models import Q

    return Q(soft_limit__isnull=False) | Q(hard_limit__isnull=False)


def _deliver_later(ids: list[int]) -> None:
    try:
        from potluck_enterprise.billing.tasks import deliver_alerts

        deliver_alerts.delay(ids)
    except Exception as exc:  # the broker is away: the periodic run delivers them
        log.warning("billing: alert delivery not queued (%s)", exc.__class__.__name__)


# -- delivery -------------------------------------------------------------------------
def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    budget = alert.budget
    resets = spend.period_end(budget.period, alert.period_start)
    return {
        "type": f"budget.{alert.level}_limit_reached", "alert_id": alert.pk,
        "budget_id": str(budget.pk), "budget": describe(budget),
        "organization": budget.organization.slug,
        "api_key": budget.api_key.name if budget.api_key_id else None,
        "period": budget.period, "period_start": alert.period_start.isoformat(),
        "resets_at": resets.isoformat(), "limit": str(alert.limit),
        "spent": money.display(alert.spent), "currency": money.currency(),
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(alert: BudgetAlert) -> bool:
    """Send what is not sent yet (email, webhook); True when both are done."""
    import httpx

    budget = alert.budget
    payload = alert_payload(alert)
    errors = []
    if alert.email_sent_at is None:
        if budget.emails:
            level = "soft limit (an alert)" if alert.level == AlertLevel.SOFT else \
                "hard limit: new requests are refused until it resets"
            try:
                send_mail(
                    subject=f"[Potluck] {payload['budget']} reached its {alert.level} limit",
                    message=(f"{payload['budget'].capitalize()} has reached its {level}.\n\n"
                             f"Spent this period: {payload['spent']} {payload['currency']} "
                             f"of {payload['limit']}.\nThe period resets at "
                             f"{payload['resets_at']}.\n"),
                    from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=budget.emails)
                alert.email_sent_at = timezone.now()
            except Exception as exc:
                errors.append(f"email: {exc.__class__.__name__}")
        else:
            alert.email_sent_at = timezone.now()
    if alert.webhook_sent_at is None:
        if budget.webhook_url:
            body = json.dumps(payload, separators=(",", ":")).encode()
            try:
                response = httpx.post(budget.webhook_url, content=body, timeout=10, headers={
                    "content-type": "application/json",
                    "x-potluck-signature": sign(body, crypto.decrypt(
                        budget.webhook_secret_encrypted))})
                if response.status_code // 100 == 2:
                    alert.webhook_sent_at = timezone.now()
                else:
                    errors.append(f"webhook: HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"webhook: {exc.__class__.__name__}")
        else:
            alert.webhook_sent_at = timezone.now()
    alert.attempts += 1
    alert.last_error = "; ".join(errors)[:200]
    alert.save(update_fields=["email_sent_at", "webhook_sent_at", "attempts", "last_error"])
    return not errors


def deliver_pending(ids: list[int] | None = None) -> int:
    """Deliver the given alerts, or every undelivered one of the last 2 days."""
    alerts = BudgetAlert.objects.select_related("budget__organization", "budget__api_key")
    if ids is not None:
        alerts = alerts.filter(pk__in=ids)
    else:
        from django.db.models import Q

        alerts = alerts.filter(Q(email_sent_at__isnull=True) | Q(webhook_sent_at__isnull=True),
                               created_at__gte=timezone.now() - timedelta(days=2),
                               attempts__lt=MAX_DELIVERY_ATTEMPTS)
    done = 0
    for alert in alerts:
        if alert.email_sent_at and alert.webhook_sent_at:
            continue
        done += deliver(alert)
    return done


# -- the console's banners ------------------------------------------------------------
def banners(organization: Any) -> list[dict[str, Any]]:
    """What the console shows at the top: limits passed this period, a failed payment."""
    now = timezone.now()
    found = []
    for budget in Budget.objects.filter(organization=organization).select_related(
            "api_key", "organization"):
        start = spend.period_start(budget.period, now)
        alerts = {a.level: a for a in budget.alerts.filter(period_start=start)}
        alert = alerts.get(AlertLevel.HARD) or alerts.get(AlertLevel.SOFT)
        if alert is None:
            continue
        found.append({
            "level": "error" if alert.level == AlertLevel.HARD else "warning",
            "kind": f"budget_{alert.level}", "budget_id": str(budget.pk),
            "message": f"{describe(budget).capitalize()} reached its {alert.level} limit "
                       f"({alert.limit} {money.currency()}); it resets at "
                       f"{spend.period_end(budget.period, start).isoformat()}."})
    from potluck_enterprise.billing.payments import payment_state

    account = BillingAccount.objects.filter(organization=organization).first()
    state = payment_state(account, now)
    if state.state != "ok":
        found.append({"level": "error" if state.state == "blocked" else "warning",
                      "kind": f"payment_{state.state}", "message": state.message})
    return found
