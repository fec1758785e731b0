# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Contribution credits' data: the double-entry ledger, forges, grants, identities,
revenue-share distributions and payouts.

**The ledger** (``LedgerAccount``, ``LedgerTransaction``, ``LedgerLeg``) has the shape of
django-hordak's Account/Transaction/Leg, enforced by PostgreSQL (migration 0005):

- a deferred constraint trigger checks at commit that each transaction's legs sum to
  zero per commodity (credits, money);
- transactions and legs are never updated or deleted (a trigger refuses it): a
  correction is a reversing transaction;
- ``LedgerAccount.balance`` is the sum of the account's legs, kept by a trigger on leg
  insert in the same transaction (O(1) reads); nothing else may change it.

Amounts are integers: **credits** in credit units (``units.CREDITS_PER_MAJOR_UNIT`` per
major unit of ``POTLUCK_BILLING_CURRENCY`` at list price: 1 credit = 0.001 USD), **money**
in the currency's minor unit (cents). An account holds one commodity.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Commodity(models.TextChoices):
    CREDIT = "credit"  # credit units
    MONEY = "money"  # minor units of BILLING_CURRENCY


class AccountKind(models.TextChoices):
    ISSUANCE = "issuance"  # credit: where granted credits come from (negative)
    PENDING = "pending"  # credit: granted to a forge account, not vested (or not linked)
    CONTRIBUTOR = "contributor"  # credit: a contributor's wallet, spent by their org
    ORGANIZATION = "organization"  # credit: an organization's wallet
    USAGE = "usage"  # credit: credits spent on inference and fine-tuning
    EXPIRY = "expiry"  # credit: credits that expired
    REVENUE = "revenue"  # money: the revenue share's source (negative)
    POOL = "pool"  # money: the community pool
    PAYABLE = "payable"  # money: owed to one contributor after a distribution
    PAYOUTS = "payouts"  # money: paid out to contributors


COMMODITY_OF = {
    AccountKind.ISSUANCE: Commodity.CREDIT, AccountKind.PENDING: Commodity.CREDIT,
    AccountKind.CONTRIBUTOR: Commodity.CREDIT, AccountKind.ORGANIZATION: Commodity.CREDIT,
    AccountKind.USAGE: Commodity.CREDIT, AccountKind.EXPIRY: Commodity.CREDIT,
    AccountKind.REVENUE: Commodity.MONEY, AccountKind.POOL: Commodity.MONEY,
    AccountKind.PAYABLE: Commodity.MONEY, AccountKind.PAYOUTS: Commodity.MONEY,
}


class LedgerAccount(models.Model):
    """One account: ``code`` names it (``pool``, ``wallet:user:7``, ``org:<uuid>``...).
    ``organization`` is set on the wallet an organization spends from (a contributor's
    wallet is their personal organization's)."""

    id = models.BigAutoField(primary_key=True)
    code = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    commodity = models.CharField(max_length=8, choices=Commodity.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.PROTECT, related_name="+")
    organization = models.OneToOneField("accounts.Organization", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    forge_account = models.OneToOneField("ForgeAccount", null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="+")
    balance = models.BigIntegerField(default=0)  # kept by the leg trigger only
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.code


class LedgerTransaction(models.Model):
    """One balanced posting, made once per ``idempotency_key`` (e.g. ``grant:41``,
    ``revshare:invoice:in_123``); ``data`` says what it refers to."""

    id = models.BigAutoField(primary_key=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32)
    memo = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    posted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "posted_at"])]


class LedgerLeg(models.Model):
    """One side of a transaction: ``amount`` (non-zero) is added to the account's balance."""

    id = models.BigAutoField(primary_key=True)
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT,
                                    related_name="legs")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="legs")
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0),
                                              name="credits_leg_amount_not_zero")]
        indexes = [models.Index(fields=["account", "id"])]


# -- forges -----------------------------------------------------------------------------
class Forge(models.TextChoices):
    GITHUB = "github"
    GITLAB = "gitlab"


class Repository(models.Model):
    """A repository whose merged patches earn credits, with its own webhook secret
    (encrypted at rest) and rules. ``id`` is in its webhook URL."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    forge = models.CharField(max_length=8, choices=Forge.choices)
    full_name = models.CharField(max_length=300)  # owner/name, or GitLab's path
    project_id = models.CharField(max_length=40, blank=True)  # GitLab's numeric id
    secret_encrypted = models.TextField()
    api_url = models.CharField(max_length=300, blank=True)  # blank: the forge's default
    api_token_encrypted = models.TextField(blank=True)  # for reconcile and reviews
    base_credits = models.PositiveBigIntegerField(default=10_000)
    label_weights = models.JSONField(default=dict, blank=True)  # label -> "2.5"
    monthly_cap = models.PositiveBigIntegerField(default=0)  # per contributor; 0: none
    hold_days = models.PositiveIntegerField(default=30)
    require_approval = models.BooleanField(default=True)
    first_grant_needs_approval = models.BooleanField(default=True)
    maintainers = models.JSONField(default=list, blank=True)  # forge logins
    bots = models.JSONField(default=list, blank=True)  # extra bot logins
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["forge", "full_name"]
        constraints = [models.UniqueConstraint(fields=["forge", "full_name"],
                                               name="credits_one_repository_per_name")]

    def __str__(self) -> str:
        return f"{self.forge}:{self.full_name}"


class ForgeAccount(models.Model):
    """A person's account on a forge, by the forge's stable numeric id; linked to one
    Potluck user at most (set once, by a proof the user controls)."""

    id = models.BigAutoField(primary_key=True)
    forge = models.CharField(max_length=8, choices=Forge.choices)
    external_id = models.CharField(max_length=64)
    login = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.PROTECT, related_name="+")
    linked_at = models.DateTimeField(null=True, blank=True)
    linked_by = models.CharField(max_length=20, blank=True)  # oauth | token | operator
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["forge", "login"]
        constraints = [models.UniqueConstraint(fields=["forge", "external_id"],
                                               name="credits_one_forge_account")]

    def __str__(self) -> str:
        return f"{self.forge}:{self.login}"


class WebhookDelivery(models.Model):
    """A verified delivery, stored once by the forge's delivery id (a replay finds it)."""

    id = models.BigAutoField(primary_key=True)
    forge = models.CharField(max_length=8, choices=Forge.choices)
    delivery_id = models.CharField(max_length=100)
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=60)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["forge", "delivery_id"],
                                               name="credits_one_delivery")]


class GrantStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval"  # a first-timer's first grant
    REFUSED = "refused"  # no credit by rule (reason says which)
    REJECTED = "rejected"  # a maintainer said no
    GRANTED = "granted"  # posted, vesting (or held until the account is linked)
    VESTED = "vested"  # in the contributor's wallet
    REVERTED = "reverted"  # a merged revert clawed it back


class Grant(models.Model):
    """What one merged patch earned (one row per repository and patch number, whatever
    number of deliveries, reconciles or maintainer calls mention it)."""

    id = models.BigAutoField(primary_key=True)
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveBigIntegerField()
    forge_account = models.ForeignKey(ForgeAccount, on_delete=models.PROTECT,
                                      related_name="grants")
    title = models.CharField(max_length=300, blank=True)
    url = models.CharField(max_length=500, blank=True)
    labels = models.JSONField(default=list, blank=True)
    merged_at = models.DateTimeField()
    month = models.DateField()  # the first day of merged_at's month (the cap's period)
    source = models.CharField(max_length=12)  # webhook | reconcile | maintainer
    amount = models.BigIntegerField(default=0)  # credit units
    status = models.CharField(max_length=20, choices=GrantStatus.choices)
    reason = models.CharField(max_length=200, blank=True)
    vests_at = models.DateTimeField(null=True, blank=True)
    vested_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=200, blank=True)  # who approved or rejected
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.CharField(max_length=200, blank=True)  # e.g. "github:org/repo#12"
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["repository", "number"],
                                               name="credits_one_grant_per_patch")]
        indexes = [models.Index(fields=["status", "vests_at"]),
                   models.Index(fields=["forge_account", "month"])]


class LinkToken(models.Model):
    """A one-time proof token a user places in their forge profile or a pull request;
    stored as a SHA-256 hash."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    forge = models.CharField(max_length=8, choices=Forge.choices)
    login = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class SpendCarry(models.Model):
    """An organization's running total of list-price usage paid by credits: ``exact``
    in credit units (exact) and ``debited`` the whole units posted (the ceiling)."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE,
                                        primary_key=True, related_name="+")
    exact = models.DecimalField(max_digits=60, decimal_places=25, default=0)
    debited = models.BigIntegerField(default=0)


class Distribution(models.Model):
    """One period's distribution of the community pool (money, minor units)."""

    id = models.BigAutoField(primary_key=True)
    period_start = models.DateField(unique=True)
    period_end = models.DateField()
    pool = models.BigIntegerField()  # the pool when distributed (residue included)
    distributed = models.BigIntegerField()
    residue = models.BigIntegerField()  # carried to the next period
    credits_vested = models.BigIntegerField()
    cap = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    transaction = models.OneToOneField(LedgerTransaction, null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start"]


class DistributionShare(models.Model):
    """One contributor's line of a distribution (their statement for the period)."""

    distribution = models.ForeignKey(Distribution, on_delete=models.PROTECT,
                                     related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="+")
    credits_vested = models.BigIntegerField()
    amount = models.BigIntegerField()
    capped = models.BooleanField(default=False)

    class Meta:
        ordering = ["-amount", "user_id"]
        constraints = [models.UniqueConstraint(fields=["distribution", "user"],
                                               name="credits_one_share_per_person")]


class PayoutAccount(models.Model):
    """Where a contributor is paid: a Stripe Connect account id (``acct_...``)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="+")
    stripe_account_id = models.CharField(max_length=100)
    updated_at = models.DateTimeField(auto_now=True)


class PayoutState(models.TextChoices):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class Payout(models.Model):
    """One transfer to a contributor; ``idempotency_key`` is Stripe's too, so a transfer
    retried after a lost answer is made once."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="+")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    destination = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=8, choices=PayoutState.choices,
                             default=PayoutState.PENDING)
    stripe_transfer_id = models.CharField(max_length=100, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
