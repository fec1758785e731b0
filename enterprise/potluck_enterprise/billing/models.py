# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Metered billing's data: the price book, priced lines, spend, budgets, Stripe, costs.

Money columns are ``numeric`` with the scales of ``potluck_enterprise.billing.money``;
nothing here is a float. Priced lines, price versions, node-type costs and Stripe events
are append-only: the past is never re-priced or rewritten.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.tenancy import OrgOwnedModel, OrgScopedQuerySet
from potluck_enterprise.billing.money import AMOUNT_PLACES, UNIT_PLACES


def _money(places: int, **kwargs: object) -> models.DecimalField:
    return models.DecimalField(max_digits=places + 18, decimal_places=places, **kwargs)


class PriceVersion(models.Model):
    """One version of the whole price book, in force from ``effective_from`` until the
    next version's. ``windows`` are the time-of-day windows (see ``pricebook``) in the IANA
    ``time_zone``; outside every window the multiplier is ``default_multiplier``."""

    id = models.BigAutoField(primary_key=True)
    effective_from = models.DateTimeField(unique=True)
    currency = models.CharField(max_length=3)
    time_zone = models.CharField(max_length=64, default="UTC")
    windows = models.JSONField(default=list, blank=True)
    default_window = models.CharField(max_length=40, default="standard")
    default_multiplier = models.DecimalField(max_digits=10, decimal_places=4, default=1)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"price version {self.pk} from {self.effective_from:%Y-%m-%d %H:%M}"


class ModelPrice(models.Model):
    """A model's list prices in one version: per 1M tokens (input, cached input, output,
    fine-tuning training tokens) and a fee per request. ``cached_input`` null: the input
    price; ``fine_tuning`` null: fine-tuning of this model is not billed."""

    version = models.ForeignKey(PriceVersion, on_delete=models.CASCADE, related_name="prices")
    model = models.CharField(max_length=200)
    input = models.DecimalField(max_digits=24, decimal_places=6)
    cached_input = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    output = models.DecimalField(max_digits=24, decimal_places=6)
    fine_tuning = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    request_fee = models.DecimalField(max_digits=24, decimal_places=6, default=0)

    class Meta:
        ordering = ["model"]
        constraints = [models.UniqueConstraint(fields=["version", "model"],
                                               name="billing_one_price_per_model")]


class PriceOverride(OrgOwnedModel):
    """An organization's negotiated terms from ``effective_from``: a ``discount`` (a
    fraction, 0.15 = 15 % off) and/or custom prices per 1M tokens that replace the list
    price. ``model`` blank: every model. The latest override in force wins, a
    model-specific one before an all-models one; to end one, add a new one without terms."""

    model = models.CharField(max_length=200, blank=True)
    discount = models.DecimalField(max_digits=8, decimal_places=6, default=0)
    input = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    cached_input = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    output = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    fine_tuning = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    request_fee = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    effective_from = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-effective_from", "-id"]
        indexes = [models.Index(fields=["organization", "effective_from"])]


class LineKind(models.TextChoices):
    INPUT = "input"  # prompt tokens not served from the cache
    CACHED_INPUT = "cached_input"
    OUTPUT = "output"
    REQUEST = "request"  # the per-request fee
    TRAINING = "training"  # fine-tuning: trained tokens (tokens x epochs)


class PricedLine(OrgOwnedModel):
    """One priced quantity of one usage record (or fine-tuning job): made once, never
    changed. ``id`` is derived from (``usage_id``, ``kind``) and is the Stripe meter
    event's ``identifier`` for the line whose running total crosses a minor unit.

    ``unit_price`` is per ``unit`` (1M tokens, or 1 request) after the window multiplier
    and the organization's discount; ``list_unit_price`` before them. ``amount`` =
    quantity x unit price (/ 1M for tokens), exact; ``list_amount`` likewise at list price.
    """

    id = models.CharField(max_length=40, primary_key=True)
    usage_id = models.CharField(max_length=64)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE,
                                     related_name="+")
    api_key_id = models.UUIDField(null=True, blank=True)
    model = models.CharField(max_length=200)
    priced_model = models.CharField(max_length=200)  # whose price applied (an adapter's base)
    kind = models.CharField(max_length=16, choices=LineKind.choices)
    quantity = models.BigIntegerField()
    unit = models.CharField(max_length=16)  # "1M tokens" | "request"
    unit_price = _money(UNIT_PLACES)
    list_unit_price = _money(UNIT_PLACES)
    multiplier = models.DecimalField(max_digits=10, decimal_places=4)
    discount = models.DecimalField(max_digits=8, decimal_places=6, default=0)
    amount = _money(AMOUNT_PLACES)
    list_amount = _money(AMOUNT_PLACES)
    currency = models.CharField(max_length=3)
    price_version = models.ForeignKey(PriceVersion, on_delete=models.PROTECT, related_name="+")
    window = models.CharField(max_length=40)
    override = models.ForeignKey(PriceOverride, null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    usage_at = models.DateTimeField()  # when the usage happened (what priced it)
    priced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-usage_at", "id"]
        constraints = [models.UniqueConstraint(fields=["usage_id", "kind"],
                                               name="billing_one_line_per_usage_kind")]
        indexes = [models.Index(fields=["organization", "usage_at"]),
                   models.Index(fields=["usage_at"])]


class Scope(models.TextChoices):
    ORGANIZATION = "org"
    KEY = "key"


class Period(models.TextChoices):
    DAY = "day"
    MONTH = "month"


class SpendCounter(OrgOwnedModel):
    """Priced spend of an organization (``scope`` org) or one of its keys in one period
    (day or month starting ``period_start`` in ``BILLING_TIME_ZONE``). Only the pricing
    consumer adds to it, in the transaction that writes the lines: it equals their sum."""

    scope = models.CharField(max_length=3, choices=Scope.choices)
    api_key_id = models.UUIDField(null=True, blank=True)
    period = models.CharField(max_length=5, choices=Period.choices)
    period_start = models.DateField()
    amount = _money(AMOUNT_PLACES, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["organization", "scope", "api_key_id", "period", "period_start"],
            name="billing_one_counter_per_scope_period", nulls_distinct=False)]


class Budget(OrgOwnedModel):
    """A spending limit per day or month for an organization, or for one API key.

    ``soft_limit``: an alert (email, webhook, console banner) once per period;
    ``hard_limit``: the gateway refuses new requests until the period resets. Either may
    be null. ``webhook_secret_encrypted`` signs the webhook (``X-Potluck-Signature``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=5, choices=Period.choices)
    soft_limit = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    hard_limit = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    emails = models.JSONField(default=list, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(
            fields=["organization", "api_key", "period"], name="billing_one_budget_per_scope",
            nulls_distinct=False)]

    @property
    def scope(self) -> str:
        return Scope.KEY if self.api_key_id else Scope.ORGANIZATION


class AlertLevel(models.TextChoices):
    SOFT = "soft"
    HARD = "hard"


class BudgetAlert(models.Model):
    """A budget's limit passed in one period: made once (unique), then delivered by email
    and webhook (each marked when done, retried until then)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateField()
    level = models.CharField(max_length=4, choices=AlertLevel.choices)
    spent = _money(AMOUNT_PLACES)
    limit = models.DecimalField(max_digits=24, decimal_places=6)
    created_at = models.DateTimeField(default=timezone.now)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    webhook_sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["budget", "period_start", "level"],
                                               name="billing_one_alert_per_level_period")]


class BillingAccount(models.Model):
    """An organization's link to Stripe and its payment state.

    ``stripe_customer_id`` blank: created at Stripe on first use. ``carry_exact`` is the
    organization's running total in minor units (exact) since it was linked, and
    ``carry_sent`` the whole minor units already put in meter events (see ``outbox``).
    ``payment_failed_at`` set (and not cleared by a paid invoice): the grace period runs."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE,
                                        related_name="+", primary_key=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=40, blank=True)
    carry_exact = _money(AMOUNT_PLACES, default=0)
    carry_sent = models.BigIntegerField(default=0)
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    linked_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgScopedQuerySet.as_manager()


class OutboxState(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    EXPIRED = "expired"  # older than Stripe's 35 days when due: an alert, never sent


class MeterEvent(OrgOwnedModel):
    """A Stripe meter event waiting to be sent (the outbox): ``identifier`` is the priced
    line's id, ``value`` whole minor units, ``timestamp`` the usage time. Marked sent
    only after Stripe answered 2xx."""

    identifier = models.CharField(max_length=100, primary_key=True)
    value = models.BigIntegerField()
    timestamp = models.DateTimeField()
    state = models.CharField(max_length=8, choices=OutboxState.choices,
                             default=OutboxState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["timestamp", "identifier"]
        indexes = [models.Index(fields=["state", "organization", "next_attempt_at"],
                                condition=Q(state="pending"), name="billing_meter_due")]


class StripeEvent(models.Model):
    """A verified Stripe webhook event, stored once by its id (deliveries deduplicated)."""

    id = models.CharField(max_length=100, primary_key=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField()  # Stripe's event time
    payload = models.JSONField()
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]


class Invoice(OrgOwnedModel):
    """A Stripe invoice as the webhooks told it (the newest event wins). Amounts are
    in minor units, as Stripe gives them; ``lines`` as Stripe's line items."""

    stripe_id = models.CharField(max_length=100, primary_key=True)
    number = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20)
    currency = models.CharField(max_length=3)
    amount_due = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    hosted_invoice_url = models.URLField(max_length=1000, blank=True)
    invoice_pdf = models.URLField(max_length=1000, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    lines = models.JSONField(default=list, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # When ``signals.invoice_paid`` went out for it (sent until marked: at least once).
    paid_signal_sent_at = models.DateTimeField(null=True, blank=True)
    last_event_created = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_end", "-last_event_created"]


class AlertKind(models.TextChoices):
    METER_EVENT_TOO_OLD = "meter_event_too_old"
    PAYMENT_FAILED = "payment_failed"


class OperatorAlert(models.Model):
    """Something an operator must look at (e.g. usage too old for Stripe's meters)."""

    kind = models.CharField(max_length=40, choices=AlertKind.choices)
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True,
                                     on_delete=models.CASCADE, related_name="+")
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class CostUnit(models.TextChoices):
    GPU = "gpu"  # per GPU-hour: x the GPUs the replica holds
    REPLICA = "replica"  # per replica-hour (CPU nodes)


class NodeTypeCost(models.Model):
    """What an hour of a node type costs from ``effective_from`` (append-only, like
    prices): per GPU the replica holds, or per replica."""

    node_type = models.CharField(max_length=100)
    effective_from = models.DateTimeField()
    hourly_cost = models.DecimalField(max_digits=24, decimal_places=6)
    per = models.CharField(max_length=8, choices=CostUnit.choices, default=CostUnit.GPU)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["node_type", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["node_type", "effective_from"],
                                               name="billing_one_cost_per_type_and_time")]


class NodeTypeAssignment(models.Model):
    """The node type an operator gave a node (by name); unassigned nodes have a derived
    type (``gpu:<model>`` or ``cpu``, see ``costs.node_type``)."""

    node_name = models.CharField(max_length=100, primary_key=True)
    node_type = models.CharField(max_length=100)
