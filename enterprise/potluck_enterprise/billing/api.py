# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Billing's management API, every route under ``/api/billing/``.

Reading spend, budgets and invoices: any caller that may read in its organization.
Budgets are written by organization admins. The price book, overrides, node-type costs,
the Stripe link and the cost-vs-revenue report are installation-wide money matters: a
signed-in superuser (an operator) only. ``POST /api/billing/stripe/webhook`` is Stripe's,
verified by signature. Every endpoint answers 403 while no licence grants "billing".
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from django.http import HttpResponse
from django.urls import re_path
from django.utils import timezone
from rest_framework import renderers, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from potluck import extensions
from potluck.accounts.api_base import Tenant, resolve_tenant
from potluck.accounts.authentication import ApiKeyUser
from potluck.accounts.models import ApiKey
from potluck.errors import Forbidden, InvalidInput, NotFound
from potluck_enterprise.billing import (
    budgets,
    costs,
    money,
    outbox,
    pricebook,
    report,
    selectors,
    webhooks,
)
from potluck_enterprise.billing.feature import FEATURE_KEY
from potluck_enterprise.billing.models import (
    BillingAccount,
    Budget,
    Invoice,
    NodeTypeCost,
    PriceOverride,
    PriceVersion,
)
from potluck_enterprise.billing.payments import payment_state

NOT_LICENSED = ('metered billing needs an enterprise licence that grants the "billing" '
                "feature; an operator installs one with `potluck license install`")
MAX_DAYS = 366


def ensure_licensed() -> None:
    if not extensions.feature_available(FEATURE_KEY):
        raise Forbidden(NOT_LICENSED)


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; views answer CSV themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data, default=str).encode()


class BillingView(APIView):
    """Licence check, then the tenant; ``capability`` is what the method needs."""

    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CsvRenderer]
    capability = "read"
    write_capability = "admin"
    operator_only = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        ensure_licensed()
        self.tenant: Tenant = resolve_tenant(request)
        writing = request.method not in ("GET", "HEAD", "OPTIONS")
        if self.operator_only and (writing or getattr(self, "operator_reads", False)):
            user = request.user
            if isinstance(request.auth, ApiKey) or isinstance(user, ApiKeyUser) or \
                    not getattr(user, "is_superuser", False):
                raise Forbidden("only a signed-in superuser (an operator) may do this")
        needed = self.write_capability if writing else self.capability
        if not self.tenant.can(needed):
            raise Forbidden("your role or key scopes do not allow this")

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any
                          ) -> Any:
        if response.status_code >= 400 and getattr(request, "accepted_renderer", None) and \
                request.accepted_renderer.format == "csv":  # errors stay JSON
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


def _csv(rows: list[list[str]], name: str) -> HttpResponse:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _decimal_text(value: Any) -> str | None:
    return None if value is None else str(value)


# -- status ---------------------------------------------------------------------------
class StatusView(BillingView):
    """The organization's billing at a glance: currency, spend today and this month,
    banners (budget limits passed, a failed payment), the Stripe link."""

    def get(self, request: Request) -> Response:
        org = self.tenant.organization
        now = timezone.now()
        account = BillingAccount.objects.filter(organization=org).first()
        state = payment_state(account, now)
        return Response({
            "currency": money.currency(), "minor_unit_exponent": money.minor_unit_exponent(),
            "spend": selectors.period_totals(org, now),
            "banners": budgets.banners(org),
            "payment": {"state": state.state, "message": state.message,
                        "grace_until": state.grace_until},
            "stripe": None if account is None else {
                "customer_id": account.stripe_customer_id or None,
                "subscription_status": account.subscription_status or None,
                "meter_units": outbox.outbox_totals(str(org.pk))},
        })


# -- spend ----------------------------------------------------------------------------
class SpendQuery(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    group_by = serializers.CharField(required=False, default="day,model")

    def validate_group_by(self, value: str) -> list[str]:
        groups = [g.strip() for g in value.split(",") if g.strip()]
        if not groups or any(g not in selectors.GROUPS for g in groups):
            raise serializers.ValidationError(
                f"group by any of {', '.join(selectors.GROUPS)} (comma-separated)")
        return groups

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = timezone.now().astimezone(_zone()).date()
        end = attrs.get("end") or today
        start = attrs.get("start") or end.replace(day=1)
        if start > end:
            raise serializers.ValidationError({"start": ["start is after end"]})
        if (end - start).days >= MAX_DAYS:
            raise serializers.ValidationError({"start": [f"at most {MAX_DAYS} days"]})
        return {**attrs, "start": start, "end": end}


def _zone():  # noqa: ANN202
    from potluck_enterprise.billing.spend import billing_zone

    return billing_zone()


class SpendView(BillingView):
    """Priced spend so far by day, model, key and/or kind (``format=csv`` exports)."""

    def get(self, request: Request) -> Response | HttpResponse:
        query = SpendQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        rows = selectors.spend_rows(self.tenant.organization, data["start"], data["end"],
                                    data["group_by"])
        if request.query_params.get("format") == "csv":
            columns = [g for g in selectors.GROUPS if g in data["group_by"]]
            if "key" in columns:
                columns.insert(columns.index("key") + 1, "key_name")
            columns += ["amount", "list_amount", "quantity", "lines"]
            return _csv([columns, *[[str(r.get(c) if r.get(c) is not None else "")
                                     for c in columns] for r in rows]], "spend.csv")
        return Response({"currency": money.currency(), "start": data["start"],
                         "end": data["end"], "group_by": data["group_by"], "rows": rows})


# -- prices and overrides ---------------------------------------------------------------
class PricesView(BillingView):
    """GET: every price version (newest first); POST: a new version (an operator)."""

    operator_only = True

    def get(self, request: Request) -> Response:
        versions = PriceVersion.objects.prefetch_related("prices")
        return Response({"currency": money.currency(),
                         "versions": [pricebook.version_json(v) for v in versions]})

    def post(self, request: Request) -> Response:
        version = pricebook.create_version(request.data, created_by=request.user.email)
        return Response(pricebook.version_json(version), status=status.HTTP_201_CREATED)


class OverridesView(BillingView):
    """The organization's negotiated terms: GET (admins), POST (an operator)."""

    operator_only = True
    capability = "admin"

    def get(self, request: Request) -> Response:
        found = PriceOverride.objects.for_org(self.tenant.organization)
        return Response([_override_json(o) for o in found])

    def post(self, request: Request) -> Response:
        override = pricebook.create_override(self.tenant.organization, request.data)
        return Response(_override_json(override), status=status.HTTP_201_CREATED)


def _override_json(o: PriceOverride) -> dict[str, Any]:
    return {"id": o.pk, "model": o.model, "discount": str(o.discount),
            **{f: _decimal_text(getattr(o, f)) for f in pricebook.PRICE_FIELDS},
            "effective_from": o.effective_from, "note": o.note}


# -- budgets ----------------------------------------------------------------------------
class BudgetSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["day", "month"], required=False)
    api_key = serializers.UUIDField(required=False, allow_null=True)
    soft_limit = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    hard_limit = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    emails = serializers.ListField(child=serializers.EmailField(), required=False)
    webhook_url = serializers.URLField(required=False, allow_blank=True)


def _budget_json(budget: Budget, secret: str | None = None) -> dict[str, Any]:
    body = {"id": str(budget.pk), "period": budget.period,
            "api_key": str(budget.api_key_id) if budget.api_key_id else None,
            "api_key_name": budget.api_key.name if budget.api_key_id else None,
            "description": budgets.describe(budget),
            "soft_limit": _decimal_text(budget.soft_limit),
            "hard_limit": _decimal_text(budget.hard_limit), "emails": budget.emails,
            "webhook_url": budget.webhook_url or None,
            **selectors.budget_status(budget, timezone.now())}
    if secret:
        body["webhook_secret"] = secret  # shown once
    return body


class BudgetsView(BillingView):
    def get(self, request: Request) -> Response:
        found = Budget.objects.for_org(self.tenant.organization).select_related(
            "api_key", "organization")
        return Response([_budget_json(b) for b in found])

    def post(self, request: Request) -> Response:
        body = BudgetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        if data.get("api_key"):
            data["api_key"] = ApiKey.objects.filter(
                organization=self.tenant.organization, pk=data["api_key"]).first()
            if data["api_key"] is None:
                raise InvalidInput("no such API key in this organization", field="api_key")
        budget, secret = budgets.save_budget(self.tenant.organization, data)
        return Response(_budget_json(budget, secret), status=status.HTTP_201_CREATED)


class BudgetView(BillingView):
    def _budget(self, budget_id: str) -> Budget:
        try:
            found = Budget.objects.for_org(self.tenant.organization).filter(
                pk=budget_id).select_related("api_key", "organization").first()
        except Exception:  # a malformed id is simply not found
            found = None
        if found is None:
            raise NotFound("no such budget")
        return found

    def get(self, request: Request, budget_id: str) -> Response:
        return Response(_budget_json(self._budget(budget_id)))

    def patch(self, request: Request, budget_id: str) -> Response:
        budget = self._budget(budget_id)
        body = BudgetSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = {k: v for k, v in body.validated_data.items() if k != "api_key"}
        budget, secret = budgets.save_budget(self.tenant.organization, data, budget)
        return Response(_budget_json(budget, secret))

    def delete(self, request: Request, budget_id: str) -> Response:
        self._budget(budget_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- invoices ---------------------------------------------------------------------------
def _invoice_json(i: Invoice) -> dict[str, Any]:
    return {"id": i.stripe_id, "number": i.number, "status": i.status, "currency": i.currency,
            "amount_due": i.amount_due, "amount_paid": i.amount_paid, "total": i.total,
            "hosted_invoice_url": i.hosted_invoice_url or None,
            "invoice_pdf": i.invoice_pdf or None, "period_start": i.period_start,
            "period_end": i.period_end, "paid_at": i.paid_at, "lines": i.lines}


class InvoicesView(BillingView):
    def get(self, request: Request) -> Response:
        return Response([_invoice_json(i) for i in
                         Invoice.objects.for_org(self.tenant.organization)[:200]])


class InvoiceView(BillingView):
    def get(self, request: Request, invoice_id: str) -> Response:
        found = Invoice.objects.for_org(self.tenant.organization).filter(
            stripe_id=invoice_id).first()
        if found is None:
            raise NotFound("no such invoice")
        return Response(_invoice_json(found))


# -- Stripe ---------------------------------------------------------------------------
class StripeLinkView(BillingView):
    """POST ``{"customer_id": "cus_..."}`` (optional) links the organization to Stripe:
    an existing customer (checked at Stripe), or a new one created on first use."""

    operator_only = True

    def post(self, request: Request) -> Response:
        from potluck_enterprise.billing import stripe_link

        account = stripe_link.link(self.tenant.organization,
                                   str(request.data.get("customer_id") or ""))
        return Response({"customer_id": account.stripe_customer_id or None,
                         "linked_at": account.linked_at}, status=status.HTTP_201_CREATED)


class StripeWebhookView(APIView):
    """Stripe's deliveries: verified before anything is read, stored once per event."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        ensure_licensed()
        event, first = webhooks.receive(request.body,
                                        request.headers.get("Stripe-Signature"))
        return Response({"received": True, "duplicate": not first, "id": event.id})


# -- operator: costs and the report -----------------------------------------------------
class CostsView(BillingView):
    operator_only = True
    operator_reads = True

    def get(self, request: Request) -> Response:
        return Response({"node_types": costs.node_types_by_name(), "costs": [
            {"node_type": c.node_type, "hourly_cost": str(c.hourly_cost), "per": c.per,
             "effective_from": c.effective_from, "note": c.note}
            for c in NodeTypeCost.objects.all()]})

    def post(self, request: Request) -> Response:
        row = costs.set_cost(str(request.data.get("node_type") or ""),
                             request.data.get("hourly_cost"),
                             per=str(request.data.get("per") or "gpu"),
                             effective_from=request.data.get("effective_from"),
                             note=str(request.data.get("note") or ""))
        return Response({"node_type": row.node_type, "hourly_cost": str(row.hourly_cost),
                         "per": row.per, "effective_from": row.effective_from},
                        status=status.HTTP_201_CREATED)


class ReportView(BillingView):
    """Cost vs revenue for ``month=YYYY-MM`` (default this month) or ``start``/``end``
    days; ``format=csv`` exports the table."""

    operator_only = True
    operator_reads = True

    def get(self, request: Request) -> Response | HttpResponse:
        params = request.query_params
        try:
            if params.get("start"):
                from datetime import date

                start = date.fromisoformat(params["start"])
                end = date.fromisoformat(params.get("end") or params["start"]) + \
                    timedelta(days=1)
            else:
                month = params.get("month") or timezone.now().astimezone(_zone()).strftime(
                    "%Y-%m")
                start, end = report.month_range(month)
        except ValueError:
            raise InvalidInput("give month=YYYY-MM, or start and end as YYYY-MM-DD",
                               field="month") from None
        if end <= start or (end - start).days > MAX_DAYS:
            raise InvalidInput(f"a report spans 1 to {MAX_DAYS} days", field="start")
        built = report.build(start, end)
        if params.get("format") == "csv":
            return _csv(report.table(built), f"cost-revenue-{start}.csv")
        return Response(built.as_dict())


def routes() -> list[Any]:
    def r(pattern: str, view: type[APIView], name: str) -> Any:
        return re_path(rf"^billing/{pattern}/?$", view.as_view(), name=f"billing-{name}")

    return [
        r("status", StatusView, "status"),
        r("spend", SpendView, "spend"),
        r("prices", PricesView, "prices"),
        r("overrides", OverridesView, "overrides"),
        r("budgets", BudgetsView, "budgets"),
        r(r"budgets/(?P<budget_id>[^/]+)", BudgetView, "budget"),
        r("invoices", InvoicesView, "invoices"),
        r(r"invoices/(?P<invoice_id>[^/]+)", InvoiceView, "invoice"),
        r("stripe/link", StripeLinkView, "stripe-link"),
        r("stripe/webhook", StripeWebhookView, "stripe-webhook"),
        r("costs", CostsView, "costs"),
        r("report", ReportView, "report"),
    ]
