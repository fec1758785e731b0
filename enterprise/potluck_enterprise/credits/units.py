# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The credit unit: **1 credit = 1/1000 of the installation currency's major unit at the
billing price book's list price** (with ``POTLUCK_BILLING_CURRENCY=USD``: 1 credit =
0.001 USD of list price, so 1,000 credits buy what lists at 1 USD).

Ledger amounts are integers. Usage is exact (a line may list at 0.0000056 USD, i.e.
0.0056 credits), so what an organization spends is kept as an exact running total and
debited in whole credits by its ceiling (``spending``): the ledger never holds a fraction,
and an organization is never debited more than one credit ahead of its usage.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext

CREDITS_PER_MAJOR_UNIT = 1000
UNIT_TEXT = "1 credit = 0.001 of the currency's major unit at list price"


def credits_for(list_amount: Decimal) -> Decimal:
    """``list_amount`` (major units of the currency, exact) in credits, exact."""
    with localcontext() as ctx:
        ctx.prec = 80
        return list_amount * CREDITS_PER_MAJOR_UNIT


def major_for(credits: int | Decimal) -> Decimal:
    """What ``credits`` buy, in major units of the currency at list price."""
    with localcontext() as ctx:
        ctx.prec = 80
        return Decimal(credits) / CREDITS_PER_MAJOR_UNIT


def share_of(amount_minor: int, fraction: Decimal) -> int:
    """``fraction`` of an amount in minor units, rounded down to a whole minor unit."""
    with localcontext() as ctx:
        ctx.prec = 80
        return int((Decimal(amount_minor) * fraction).to_integral_value(rounding=ROUND_FLOOR))
