# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The revenue share and the community pool's distributions.

**Revenue share.** Each paid enterprise invoice (billing's ``invoice_paid``) and each
licence sale (``potluck.extensions.record_revenue``, the extension point a licence store
calls) posts ``floor(amount x POTLUCK_CREDITS_REVENUE_SHARE)`` minor units from
``revenue`` to ``pool`` (key ``revshare:<source>:<reference>``: at most once per
invoice or sale, however often it is announced).

**Distribution** (per period: ``POTLUCK_CREDITS_DISTRIBUTION_PERIOD``, month or ISO
week). The whole pool (this period's share plus the residue carried from earlier ones)
is divided among contributors in proportion to the credits vested to them in the period
(vestings less clawbacks of vested grants posted in it; at least 0), by the
largest-remainder method (Hamilton's): each gets ``floor(pool x w / W)``, and the minor
units left go one each to the largest remainders (ties: the larger weight, then the
lower user id). An optional cap per person (``POTLUCK_CREDITS_PAYOUT_CAP``) cuts a share;
the excess stays in the pool. What is not distributed (the excess, or the whole pool
when nobody vested) is carried to the next period. One transaction per period (key
``distribution:<start>``): the pool decreases by exactly the sum of the shares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from potluck import extensions
from potluck.errors import Conflict, InvalidInput
from potluck_enterprise.billing import money
from potluck_enterprise.credits import ledger, units
from potluck_enterprise.credits.models import (
    AccountKind,
    Distribution,
    DistributionShare,
    LedgerAccount,
    LedgerLeg,
)

log = logging.getLogger(__name__)
FEATURE_KEY = "credits"


def share_fraction() -> Decimal:
    """``POTLUCK_CREDITS_REVENUE_SHARE`` as a fraction from 0 to 1."""
    try:
        fraction = Decimal(str(settings.CREDITS_REVENUE_SHARE).strip())
    except InvalidOperation:
        raise InvalidInput("POTLUCK_CREDITS_REVENUE_SHARE is not a number") from None
    if not (Decimal(0) <= fraction <= Decimal(1)):
        raise InvalidInput("POTLUCK_CREDITS_REVENUE_SHARE must be from 0 to 1")
    return fraction


def post_revenue_share(source: str, reference: str, amount_minor: int, currency: str
                       ) -> int:
    """Post the pool's share of a revenue amount (minor units); returns the share
    posted by this call (0 when already posted, nothing to share, or another currency)."""
    if currency.upper() != money.currency():
        log.warning("credits: %s %s is in %s, not %s: no revenue share", source, reference,
                    currency, money.currency())
        return 0
    share = units.share_of(int(amount_minor), share_fraction())
    if share <= 0:
        return 0
    _, made = ledger.post(
        f"revshare:{source}:{reference}", "revenue_share",
        [(ledger.system_account(AccountKind.REVENUE), -share),
         (ledger.system_account(AccountKind.POOL), share)],
        memo=f"{share_fraction() * 100:g}% of {source} {reference}",
        data={"source": source, "reference": reference, "amount": int(amount_minor),
              "currency": currency.upper(), "share": share})
    return share if made else 0


def on_invoice_paid(sender: Any, organization: Any, invoice: Any, **_: Any) -> None:
    """Billing's ``invoice_paid`` receiver (idempotent by ``invoice.stripe_id``)."""
    if extensions.feature_available(FEATURE_KEY):
        post_revenue_share("invoice", invoice.stripe_id, invoice.amount_paid,
                           invoice.currency)


def revenue_sink(event: extensions.RevenueEvent) -> None:
    """The ``potluck.extensions.revenue_sinks`` entry (licence sales and the like)."""
    post_revenue_share(event.source, event.reference, event.amount_minor, event.currency)


# -- periods ----------------------------------------------------------------------------
def period_of(day: date, kind: str | None = None) -> tuple[date, date]:
    """[start, end) of the distribution period holding ``day``."""
    kind = kind or settings.CREDITS_DISTRIBUTION_PERIOD
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if kind != "month":
        raise InvalidInput("POTLUCK_CREDITS_DISTRIBUTION_PERIOD is month or week")
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _aware(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def vested_in(start: date, end: date) -> dict[int, int]:
    """Credits vested per user in [start, end): vestings less clawbacks of vested grants."""
    legs = LedgerLeg.objects.filter(
        account__kind=AccountKind.CONTRIBUTOR, transaction__kind__in=("vest", "clawback"),
        transaction__posted_at__gte=_aware(start), transaction__posted_at__lt=_aware(end)
    ).values_list("account__user_id", "transaction__kind", "amount")
    totals: dict[int, int] = {}
    for user, _kind, amount in legs:
        totals[user] = totals.get(user, 0) + amount
    return {u: n for u, n in totals.items() if n > 0}


# -- allocation -------------------------------------------------------------------------
@dataclass(frozen=True)
class Allocation:
    shares: dict[int, int]
    capped: frozenset[int]

    @property
    def total(self) -> int:
        return sum(self.shares.values())


def allocate(pool: int, weights: dict[int, int], cap: int = 0) -> Allocation:
    """Largest-remainder division of ``pool`` (minor units) by ``weights`` (module
    docstring); with ``cap`` > 0 no share passes it. Exact integers throughout."""
    weights = {k: w for k, w in weights.items() if w > 0}
    total = sum(weights.values())
    if pool <= 0 or total <= 0:
        return Allocation({}, frozenset())
    shares = {k: pool * w // total for k, w in weights.items()}
    left = pool - sum(shares.values())
    order = sorted(weights, key=lambda k: (-(pool * weights[k] % total), -weights[k], k))
    for k in order[:left]:
        shares[k] += 1
    capped = frozenset(k for k, s in shares.items() if cap > 0 and s > cap)
    for k in capped:
        shares[k] = cap
    return Allocation({k: s for k, s in shares.items() if s > 0}, capped)


def distribute(day: date, *, allow_open: bool = False, cap: int | None = None
               ) -> Distribution:
    """Distribute the pool for the period holding ``day`` (once; a second call returns
    the first). Raises ``Conflict`` for a period not over yet unless ``allow_open``."""
    start, end = period_of(day)
    existing = Distribution.objects.filter(period_start=start).first()
    if existing is not None:
        return existing
    if end > timezone.localdate() and not allow_open:
        raise Conflict(f"the period {start}..{end - timedelta(days=1)} is not over yet")
    cap = settings.CREDITS_PAYOUT_CAP if cap is None else cap
    with transaction.atomic():
        pool_account = ledger.system_account(AccountKind.POOL)
        pool_account = LedgerAccount.objects.select_for_update().get(pk=pool_account.pk)
        existing = Distribution.objects.filter(period_start=start).first()
        if existing is not None:
            return existing
        weights = vested_in(start, end)
        allocation = allocate(pool_account.balance, weights, cap)
        tx = None
        if allocation.total:
            tx, _ = ledger.post(
                f"distribution:{start.isoformat()}", "distribution",
                [(pool_account, -allocation.total)] +
                [(ledger.payable_account(user), amount)
                 for user, amount in sorted(allocation.shares.items())],
                memo=f"community pool, {start} to {end - timedelta(days=1)}",
                data={"period_start": start.isoformat(), "people": len(allocation.shares)})
        dist = Distribution.objects.create(
            period_start=start, period_end=end, pool=pool_account.balance,
            distributed=allocation.total, residue=pool_account.balance - allocation.total,
            credits_vested=sum(weights.values()), cap=cap, currency=money.currency(),
            transaction=tx)
        DistributionShare.objects.bulk_create([
            DistributionShare(distribution=dist, user_id=user, credits_vested=weights[user],
                              amount=allocation.shares.get(user, 0),
                              capped=user in allocation.capped)
            for user in sorted(weights)])
    log.info("credits: distributed %d of a pool of %d among %d people for %s",
             dist.distributed, dist.pool, len(allocation.shares), start)
    return dist


def statement(user_id: int) -> dict[str, Any]:
    """A contributor's statement: each period's share, what is owed, what was paid."""
    from potluck_enterprise.credits.models import Payout, PayoutState

    shares = DistributionShare.objects.filter(user_id=user_id).select_related("distribution")
    return {
        "currency": money.currency(),
        "periods": [{"period_start": s.distribution.period_start.isoformat(),
                     "period_end": s.distribution.period_end.isoformat(),
                     "credits_vested": s.credits_vested, "amount": s.amount,
                     "capped": s.capped, "pool": s.distribution.pool,
                     "period_credits_vested": s.distribution.credits_vested}
                    for s in shares],
        "owed": ledger.balance(LedgerAccount.objects.filter(
            code=f"payable:user:{user_id}").first()),
        "paid": [{"amount": p.amount, "paid_at": p.paid_at.isoformat() if p.paid_at else None,
                  "state": p.state, "transfer": p.stripe_transfer_id}
                 for p in Payout.objects.filter(user_id=user_id)
                 .exclude(state=PayoutState.FAILED)],
    }
