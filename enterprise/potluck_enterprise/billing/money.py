# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Money: ``Decimal`` amounts in the installation's one currency, never floats.

Rules (stated once, used everywhere):

- Prices are per 1M tokens (or per request for the request fee) with at most
  ``PRICE_PLACES`` (6) decimal places; window multipliers and discounts have at most 4 and
  6 places. A line's unit price is list price x multiplier x (1 - discount), exact at
  ``UNIT_PLACES`` (16) places; its amount is quantity x unit price / 1,000,000, exact at
  ``AMOUNT_PLACES`` (22) places. No rounding happens while pricing, so the sum of the
  lines is exactly usage x prices.
- Amounts become the currency's minor unit (cents) only at the Stripe boundary, by the
  running-total rule in ``potluck_enterprise.billing.outbox`` (floor of the cumulative
  total), and for display (``ROUND_HALF_EVEN`` to the minor unit).

The minor unit (ISO 4217 "E" column) comes from ``MINOR_UNITS`` (currencies whose exponent
is not 2; every other code has 2). Codes are checked for ISO 4217's shape (three
letters); no currency table is a dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Decimal,
    Inexact,
    InvalidOperation,
    localcontext,
)

from django.conf import settings

PRICE_PLACES = 6
MULTIPLIER_PLACES = 4
DISCOUNT_PLACES = 6
UNIT_PLACES = PRICE_PLACES + MULTIPLIER_PLACES + DISCOUNT_PLACES  # 16
AMOUNT_PLACES = UNIT_PLACES + 6  # 22: / 1,000,000
TOKENS_PER_UNIT = Decimal(1_000_000)

# ISO 4217 currencies whose minor unit is not 1/100 (exponent 0 or 3).
MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


class MoneyError(ValueError):
    """An amount or currency that billing cannot take (the message says why)."""


def currency() -> str:
    """The installation's currency (``POTLUCK_BILLING_CURRENCY``), an ISO 4217 code."""
    return check_currency(settings.BILLING_CURRENCY)


def check_currency(code: str) -> str:
    code = (code or "").upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise MoneyError(f"{code!r} is not an ISO 4217 currency code (three letters)")
    return code


def minor_unit_exponent(code: str | None = None) -> int:
    """Decimal places of the currency's minor unit: 2 for USD (cents), 0 for JPY."""
    return MINOR_UNITS.get((code or currency()).upper(), 2)


def decimal(value: object, *, field: str, places: int, minimum: Decimal = Decimal(0),
            maximum: Decimal | None = None) -> Decimal:
    """``value`` (a string or int, never a float) as a Decimal with at most ``places``
    decimal places, within bounds; raises ``MoneyError`` naming ``field``."""
    if isinstance(value, float | bool):
        raise MoneyError(f"{field}: give amounts as strings (e.g. \"0.14\"), not floats")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MoneyError(f"{field}: {value!r} is not a number") from None
    if not number.is_finite():
        raise MoneyError(f"{field}: {value!r} is not a finite number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places and number != number.quantize(Decimal(1).scaleb(-places)):
        raise MoneyError(f"{field}: at most {places} decimal places")
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise MoneyError(f"{field}: must be {bound}")
    return number.quantize(Decimal(1).scaleb(-places)) if -exponent > places else number


def to_minor_floor(amount: Decimal, code: str | None = None) -> int:
    """Whole minor units in ``amount``, rounded down (the Stripe running-total rule)."""
    scaled = amount.scaleb(minor_unit_exponent(code))
    return int(scaled.to_integral_value(rounding=ROUND_FLOOR))


def display(amount: Decimal, code: str | None = None) -> str:
    """``amount`` rounded half-even to the minor unit, as text (``"12.35"``)."""
    places = minor_unit_exponent(code)
    return str(amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


@contextmanager
def exact() -> Iterator[None]:
    """Decimal arithmetic with room for every digit (80), where any rounding raises
    ``decimal.Inexact``: pricing never rounds silently."""
    with localcontext() as ctx:
        ctx.prec = 80
        ctx.traps[Inexact] = True
        yield


NANO = Decimal(1_000_000_000)


def to_nano_ceiling(amount: Decimal) -> int:
    """``amount`` in billionths of the major unit, rounded up (the gateway's estimates)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return int((amount * NANO).to_integral_value(rounding=ROUND_CEILING))


def from_nano(value: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80
        return Decimal(value) / NANO
