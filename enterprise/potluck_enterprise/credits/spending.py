# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Credits pay for usage at list price, before Stripe.

``CreditPayer`` is a billing prepaid payer (``billing.payers``): billing's pricing
consumer (``billing.pricing``) calls it in the transaction that writes the priced lines,
so each line is paid by credits exactly once (the consumer's cursor and the lines commit
together) and only what credits did not pay reaches the Stripe outbox. A separate usage
consumer could not promise that: its cursor would not know whether pricing had priced a
record yet, and the outbox would have to wait for it.

**Which organizations.** Those with a wallet (a contributor's personal organization, or
an organization granted credits). Each line costs ``list_amount`` x 1000 credits (see
``units``), whatever the organization's discount or window.

- An organization **linked to Stripe** (another way to pay) uses credits while its
  wallet covers the line; a line the wallet covers in part is billed for the rest, in
  proportion (``amount x uncovered / list credits``, rounded half-even to billing's
  22 places); an empty wallet pays nothing.
- An organization **with no other way to pay** pays every line from its wallet: the
  gateway refuses its requests once the wallet is empty (``policy``), and what requests
  already admitted cost beyond that (the overshoot the policy states) takes the wallet
  below zero, to be recovered from later grants.

The running total per organization (``SpendCarry``) is exact; the wallet is debited
whole credits, the ceiling of that total (one posting per pricing batch and
organization, key ``spend:<org>:<first line id>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext

from potluck_enterprise.billing.models import BillingAccount, PricedLine
from potluck_enterprise.billing.money import AMOUNT_PLACES
from potluck_enterprise.credits import ledger, units
from potluck_enterprise.credits.models import AccountKind, LedgerAccount, SpendCarry

PAYER_NAME = "credits"
_QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)


def other_way_to_pay(organization_ids: Sequence[str]) -> set[str]:
    """Organizations linked to Stripe (billing's account with a customer, or to be made)."""
    return {str(o) for o in BillingAccount.objects.filter(
        organization_id__in=list(organization_ids)).values_list("organization_id", flat=True)}


class CreditPayer:
    """The prepaid payer (module docstring)."""

    name = PAYER_NAME

    def pay(self, lines: Sequence[PricedLine], due: dict[str, Decimal]
            ) -> dict[str, Decimal]:
        by_org: dict[str, list[PricedLine]] = {}
        for line in lines:
            by_org.setdefault(str(line.organization_id), []).append(line)
        wallets = {str(w.organization_id): w for w in LedgerAccount.objects.select_for_update()
                   .filter(organization_id__in=list(by_org)).order_by("id")}
        if not wallets:
            return {}
        linked = other_way_to_pay(list(wallets))
        paid: dict[str, Decimal] = {}
        with localcontext() as ctx:
            ctx.prec = 80
            for org, wallet in wallets.items():
                paid.update(self._pay_org(org, wallet, by_org[org], due, org in linked))
        return paid

    def _pay_org(self, org: str, wallet: LedgerAccount, lines: list[PricedLine],
                 due: dict[str, Decimal], linked: bool) -> dict[str, Decimal]:
        carry, _ = SpendCarry.objects.select_for_update().get_or_create(organization_id=org)
        exact, debited = Decimal(carry.exact), carry.debited
        paid: dict[str, Decimal] = {}
        for line in lines:
            owed = due.get(line.id, line.amount)
            cost = units.credits_for(line.list_amount)
            if cost <= 0 or owed <= 0:
                continue
            if not linked:
                cover = cost
            else:
                # What the wallet still covers: its balance less what this batch took,
                # plus the part of a credit already debited and not used (debited - exact).
                left = wallet.balance - (debited - carry.debited) + (debited - exact)
                cover = min(cost, max(Decimal(0), left))
            if cover <= 0:
                continue
            exact += cover
            debited = max(debited, int(exact.to_integral_value(rounding=ROUND_CEILING)))
            part = owed if cover == cost else (owed * cover / cost).quantize(
                _QUANTUM, rounding=ROUND_HALF_EVEN)
            paid[line.id] = min(part, owed)
        debit = debited - carry.debited
        if debit:
            ledger.post(f"spend:{org}:{lines[0].id}", "spend",
                        [(wallet, -debit), (ledger.system_account(AccountKind.USAGE), debit)],
                        memo=f"usage: {len(paid)} priced line(s) at list price",
                        data={"organization": org, "lines": len(paid),
                              "first_line": lines[0].id, "last_line": lines[-1].id})
        if exact != carry.exact or debited != carry.debited:
            SpendCarry.objects.filter(pk=carry.pk).update(exact=exact, debited=debited)
        return paid
