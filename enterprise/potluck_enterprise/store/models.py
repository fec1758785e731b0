# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The licence store's data (the vendor's installation only).

Buyers are ``StoreAccount`` rows (an email address proven by a sign-in link), not
organizations of the installation: every query on their data is scoped to the signed-in
account. Money is integer minor units, as Stripe counts it. Nothing here holds the
issuer's private key: an issued licence is its signed text (public by nature, it goes to
the buyer), never the key that signed it.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Term(models.TextChoices):
    MONTH = "month", "monthly"
    YEAR = "year", "annual"


class Plan(models.Model):
    """What a licence grants: features, grace days, and an optional free trial
    (``trial_days`` > 0: that many days for ``trial_seats`` seats, no card)."""

    key = models.SlugField(max_length=50, primary_key=True)
    title = models.CharField(max_length=100)
    features = ArrayField(models.CharField(max_length=50), default=list)
    grace_days = models.PositiveIntegerField(default=14)
    trial_days = models.PositiveIntegerField(default=0)
    trial_seats = models.PositiveIntegerField(default=0)
    order = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    stripe_product_id = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "key"]

    def __str__(self) -> str:
        return self.key

    @property
    def has_trial(self) -> bool:
        return self.trial_days > 0 and self.trial_seats > 0


class PlanPrice(models.Model):
    """A seat tier of a plan for one term: up to ``seats`` seats for ``amount`` minor
    units of ``currency`` per term, sold as one Stripe recurring price. Prices are never
    edited: a new amount is a new row (and Stripe price), the old one is deactivated and
    still maps the subscriptions that use it."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="prices")
    seats = models.PositiveIntegerField()
    term = models.CharField(max_length=5, choices=Term.choices)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    stripe_price_id = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "term", "seats"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "seats", "term"], condition=Q(active=True),
                                    name="one_active_price_per_tier"),
            models.UniqueConstraint(fields=["stripe_price_id"],
                                    condition=~Q(stripe_price_id=""),
                                    name="store_price_stripe_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.seats} seats per {self.term}"


class StoreAccount(models.Model):
    """A buyer: an email address proven by a sign-in link; its Stripe customer once it
    paid; ``licensee``: the name its licences carry (asked at the first purchase)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)  # stored lowercased
    licensee = models.CharField(max_length=200, blank=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.email

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[-1]


class SignInLink(models.Model):
    """An emailed sign-in link: only the SHA-256 of its token is kept; it works once,
    until ``expires_at``; ``next`` is a path of the store to return to."""

    id = models.BigAutoField(primary_key=True)
    email = models.EmailField(db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    next = models.CharField(max_length=500, blank=True)
    requested_from = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class CheckoutOrder(models.Model):
    """A buyer's choice sent to Stripe Checkout: plan, seat tier, term, the installation
    to bind the licence to (blank: unbound). Its id travels as the Checkout session's
    ``client_reference_id`` and in the subscription's metadata."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(StoreAccount, on_delete=models.PROTECT, related_name="orders")
    price = models.ForeignKey(PlanPrice, on_delete=models.PROTECT, related_name="+")
    installation_id = models.CharField(max_length=100, blank=True)
    licensee = models.CharField(max_length=200)
    stripe_session_id = models.CharField(max_length=200, blank=True, db_index=True)
    status = models.CharField(max_length=20, default="open")  # open, complete
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)


class StoreSubscription(models.Model):
    """A paid licence subscription, as Stripe's verified events told it.

    ``paid_through``: the end of the latest paid period (only ever moves forward);
    licences expire then, plus the plan's grace days. ``state_event_at``: Stripe's time of
    the newest subscription event applied (an older one delivered late changes nothing).
    ``renewal_stopped``: set by a cancellation, a refund or a chargeback; no licence is
    issued for it again (the last one runs to its expiry)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(StoreAccount, on_delete=models.PROTECT,
                                related_name="subscriptions")
    order = models.OneToOneField(CheckoutOrder, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="subscription")
    stripe_subscription_id = models.CharField(max_length=100, unique=True)
    price = models.ForeignKey(PlanPrice, on_delete=models.PROTECT, related_name="+")
    installation_id = models.CharField(max_length=100, blank=True)
    licensee = models.CharField(max_length=200)
    status = models.CharField(max_length=40, default="incomplete")
    cancel_at_period_end = models.BooleanField(default=False)
    paid_through = models.DateTimeField(null=True, blank=True)
    state_event_at = models.DateTimeField(null=True, blank=True)
    renewal_stopped = models.CharField(max_length=20, blank=True)  # canceled/refund/dispute
    renewal_stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def plan(self) -> Plan:
        return self.price.plan

    @property
    def renews(self) -> bool:
        return not self.renewal_stopped and not self.cancel_at_period_end \
            and self.status not in ("canceled", "incomplete_expired", "unpaid")


class Trial(models.Model):
    """The one free trial of an email domain (the unique domain enforces "one each")."""

    domain = models.CharField(max_length=253, primary_key=True)
    account = models.ForeignKey(StoreAccount, on_delete=models.PROTECT, related_name="trials")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)


class IssuedLicence(models.Model):
    """A licence the store signed: its text (what the buyer downloads), and why.

    ``issue_key`` makes each distinct licence of a subscription (features, seats,
    installation, expiry) exist once, whatever the number of events asking for it.
    ``emailed_at`` null: the email with the file is still to be sent (an outbox)."""

    class Reason(models.TextChoices):
        TRIAL = "trial"
        PURCHASE = "purchase"  # the first paid period
        RENEWAL = "renewal"  # a later paid period
        CHANGE = "change"  # plan or seats changed

    license_id = models.CharField(max_length=100, primary_key=True)
    account = models.ForeignKey(StoreAccount, on_delete=models.PROTECT, related_name="licences")
    subscription = models.ForeignKey(StoreSubscription, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="licences")
    trial = models.OneToOneField(Trial, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="licence")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    issue_key = models.CharField(max_length=64, unique=True)
    raw = models.TextField()
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    features = ArrayField(models.CharField(max_length=50), default=list)
    seats = models.PositiveIntegerField()
    installation_id = models.CharField(max_length=100, blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    grace_days = models.PositiveIntegerField()
    source_event = models.CharField(max_length=100, blank=True)  # the Stripe event id
    emailed_at = models.DateTimeField(null=True, blank=True)
    # When the row was made, to the microsecond: orders licences issued within one second
    # (``issued_at`` is whole seconds, as the licence file says).
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_at", "-created_at"]

    def __str__(self) -> str:
        return self.license_id

    @property
    def filename(self) -> str:
        return f"potluck-{self.license_id}.license"


class StoreEvent(models.Model):
    """A verified Stripe event of the store's webhook, stored once by its id: a second
    delivery of the same event finds it and does nothing."""

    id = models.CharField(max_length=100, primary_key=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField()  # Stripe's event time
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created"]


class StoreInvoice(models.Model):
    """A paid invoice of a store subscription (one per Stripe invoice id)."""

    stripe_invoice_id = models.CharField(max_length=100, primary_key=True)
    subscription = models.ForeignKey(StoreSubscription, on_delete=models.PROTECT,
                                     related_name="invoices")
    amount_paid = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField()
    billing_reason = models.CharField(max_length=40, blank=True)
    paid_at = models.DateTimeField()


class Reversal(models.Model):
    """A refund or a chargeback (dispute) of a store payment: recorded, and the
    subscriptions it concerns stop renewing."""

    class Kind(models.TextChoices):
        REFUND = "refund"
        DISPUTE = "dispute"

    stripe_id = models.CharField(max_length=100, primary_key=True)  # charge or dispute id
    kind = models.CharField(max_length=10, choices=Kind.choices)
    account = models.ForeignKey(StoreAccount, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="reversals")
    subscriptions = models.ManyToManyField(StoreSubscription, related_name="reversals")
    amount = models.BigIntegerField()  # minor units returned or disputed (positive)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()  # Stripe's event time
    event_id = models.CharField(max_length=100)


class Sale(models.Model):
    """Money a licence subscription brought in (a paid invoice: positive) or gave back (a
    refund or chargeback: negative), in minor units; what the revenue share reads.

    ``key`` is the idempotency key receivers use (``invoice:<id>``, ``refund:<charge>``,
    ``dispute:<id>``). ``announced_at`` null: ``licence_sale`` has not been sent yet."""

    key = models.CharField(max_length=120, primary_key=True)
    kind = models.CharField(max_length=10)  # sale, refund, dispute
    account = models.ForeignKey(StoreAccount, on_delete=models.PROTECT, related_name="sales")
    subscription = models.ForeignKey(StoreSubscription, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="sales")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    occurred_at = models.DateTimeField()
    announced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at"]
