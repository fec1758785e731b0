# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Prepaid payers: what pays priced lines before Stripe does (e.g. contribution credits).

A payer is registered in ``PAYERS`` (by the feature that provides it, while licensed)
and called by ``pricing.write_lines`` inside the pricing transaction, with the new lines
in order. It returns, per line id, the part of the line's ``amount`` it paid (a
``Decimal`` in the currency's major unit, 0 <= paid <= amount; lines it does not pay
are left out). Its own writes (a ledger debit) commit with the lines, exactly once, and
only the rest reaches the Stripe outbox: nothing is billed twice. Payers run in
registration order, each on what the ones before left.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

from potluck.extensions import Registry
from potluck_enterprise.billing.models import PricedLine


@runtime_checkable
class LinePayer(Protocol):
    name: str

    def pay(self, lines: Sequence[PricedLine], due: dict[str, Decimal]
            ) -> dict[str, Decimal]: ...


PAYERS: Registry[LinePayer] = Registry("billing.payers")


def settle(lines: Sequence[PricedLine]) -> dict[str, Decimal]:
    """What is left to bill of each line (by id) after every payer took its part."""
    due = {line.id: line.amount for line in lines}
    for payer in PAYERS:
        paid = payer.pay(lines, dict(due))
        for line_id, amount in paid.items():
            if amount < 0 or amount > due[line_id]:
                raise ValueError(f"payer {payer.name} paid {amount} of a line that owes "
                                 f"{due[line_id]}")
            due[line_id] -= amount
    return due
