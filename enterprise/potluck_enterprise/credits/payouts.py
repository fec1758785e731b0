# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Paying contributors what distributions owe them: a CSV export, and Stripe Connect.

**Export** (``export_rows``): one row per contributor owed money (their ``payable``
balance), for an operator who pays by other means and then records it
(``record_manual``, which posts the payout like a transfer would).

**Stripe Connect** (``StripeConnectPayouts``, through the same ``stripe`` SDK and
settings as billing: ``POTLUCK_BILLING_STRIPE_API_KEY``, ``..._API_BASE``): a transfer
of the whole balance to the contributor's connected account (``PayoutAccount``). A
``Payout`` row is written first with its idempotency key, the transfer is made with that
key (Stripe returns the first transfer for a repeated key), and only after its answer is
the ledger posted (``payable -> payouts``, key ``payout:<id>``). A process killed in
between leaves the row pending; the next run repeats the call with the same key, so a
transfer is made once. A refusal marks the payout failed and posts nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from potluck_enterprise.billing import money
from potluck_enterprise.billing.stripe_adapter import (
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
    _classify,
)
from potluck_enterprise.credits import ledger
from potluck_enterprise.credits.models import (
    AccountKind,
    LedgerAccount,
    Payout,
    PayoutAccount,
    PayoutState,
)

log = logging.getLogger(__name__)


class StripeConnectPayouts:
    """Transfers to connected accounts. ``client`` is a ``stripe.StripeClient``."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls) -> StripeConnectPayouts:
        if not settings.BILLING_STRIPE_API_KEY:
            raise StripeNotConfigured("set POTLUCK_BILLING_STRIPE_API_KEY to pay out by Stripe")
        bases = {"api": settings.BILLING_STRIPE_API_BASE} if \
            settings.BILLING_STRIPE_API_BASE else {}
        return cls(stripe.StripeClient(
            settings.BILLING_STRIPE_API_KEY, base_addresses=bases,  # type: ignore[arg-type]
            http_client=stripe.RequestsClient(timeout=settings.BILLING_STRIPE_TIMEOUT_SECONDS),
            max_network_retries=0))

    def transfer(self, destination: str, amount: int, currency: str, key: str) -> str:
        """Transfer ``amount`` minor units; returns the transfer id. Raises
        ``StripeUnavailable`` or ``StripeRejected``."""
        try:
            made = self.client.v1.transfers.create(
                params={"amount": amount, "currency": currency.lower(),
                        "destination": destination,
                        "metadata": {"potluck_payout": key}},
                options={"idempotency_key": key})
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        return made.id


@dataclass(frozen=True)
class PayoutRow:
    user_id: int
    email: str
    destination: str
    amount: int
    currency: str


def owed() -> list[PayoutRow]:
    """Contributors owed money, less what pending payouts already carry."""
    from potluck.accounts.models import User

    pending: dict[int, int] = {}
    for p in Payout.objects.filter(state=PayoutState.PENDING):
        pending[p.user_id] = pending.get(p.user_id, 0) + p.amount
    accounts = {a.user_id: a.stripe_account_id for a in PayoutAccount.objects.all()}
    rows = []
    for account in LedgerAccount.objects.filter(kind=AccountKind.PAYABLE, balance__gt=0):
        amount = account.balance - pending.get(account.user_id, 0)
        if amount > 0:
            email = User.objects.filter(pk=account.user_id).values_list(
                "email", flat=True).first() or ""
            rows.append(PayoutRow(account.user_id, email, accounts.get(account.user_id, ""),
                                  amount, money.currency()))
    return sorted(rows, key=lambda r: r.user_id)


def export_rows() -> list[list[str]]:
    """The payout CSV: a header, then one row per contributor owed money."""
    return [["user_id", "email", "stripe_account", "amount_minor", "amount", "currency"]] + [
        [str(r.user_id), r.email, r.destination, str(r.amount),
         money.display(Decimal(r.amount).scaleb(-money.minor_unit_exponent())), r.currency]
        for r in owed()]


def _settle(payout: Payout, transfer_id: str) -> None:
    with transaction.atomic():
        locked = Payout.objects.select_for_update().get(pk=payout.pk)
        if locked.state == PayoutState.PAID:
            return
        ledger.post(f"payout:{payout.pk}", "payout",
                    [(ledger.payable_account(payout.user_id), -payout.amount),
                     (ledger.system_account(AccountKind.PAYOUTS), payout.amount)],
                    memo=f"paid to {payout.destination or 'the contributor'}",
                    data={"payout": payout.pk, "user": payout.user_id,
                          "transfer": transfer_id})
        locked.state, locked.paid_at, locked.stripe_transfer_id = (
            PayoutState.PAID, timezone.now(), transfer_id[:100])
        locked.save(update_fields=["state", "paid_at", "stripe_transfer_id"])


def record_manual(user_id: int, amount: int, reference: str) -> Payout:
    """Record a payout made outside Stripe (after the CSV export)."""
    payout = Payout.objects.create(user_id=user_id, amount=amount, currency=money.currency(),
                                   destination="manual",
                                   idempotency_key=f"manual:{reference}"[:100])
    _settle(payout, reference)
    return payout


def pay_out(adapter: StripeConnectPayouts | None = None) -> list[Payout]:
    """Transfer what each contributor with a connected account is owed; retry pending
    payouts first (same key). Returns the payouts this run touched."""
    adapter = adapter or StripeConnectPayouts.from_settings()
    accounts = {a.user_id: a.stripe_account_id for a in PayoutAccount.objects.all()}
    for row in owed():
        if row.destination:
            Payout.objects.create(user_id=row.user_id, amount=row.amount,
                                  currency=row.currency, destination=row.destination,
                                  idempotency_key=f"potluck-payout-{uuid.uuid4().hex}")
    touched = []
    for payout in Payout.objects.filter(state=PayoutState.PENDING).order_by("id"):
        if payout.destination == "manual" or payout.user_id not in accounts:
            continue
        try:
            transfer = adapter.transfer(payout.destination, payout.amount, payout.currency,
                                        payout.idempotency_key)
        except StripeUnavailable as exc:
            Payout.objects.filter(pk=payout.pk).update(last_error=str(exc)[:200])
            log.warning("credits: payout %s not made yet (%s); retried next run", payout.pk,
                        exc)
            continue
        except StripeRejected as exc:
            Payout.objects.filter(pk=payout.pk).update(state=PayoutState.FAILED,
                                                       last_error=str(exc)[:200])
            continue
        _settle(payout, transfer)
        touched.append(payout)
    return touched
