"""Money as integers: an amount in the currency's minor unit plus an ISO 4217 code.

Floats never appear: amounts are `int`, rates are `Decimal`, and every conversion from a
rate product back to minor units goes through `round_half_up` (or `apply_rate`), which
works on the exact rational value of the Decimal so no context precision or rounding
mode can leak in.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from domain.errors import InvalidOrder

CURRENCY_EXPONENTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "CNY": 2,
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "HKD": 2,
        "SGD": 2,
        "AUD": 2,
        "CAD": 2,
        "CHF": 2,
        "JPY": 0,
        "KRW": 0,
        "KWD": 3,
        "BHD": 3,
    }
)
"""Digits after the decimal point of each supported currency (ISO 4217 minor unit)."""

MAX_ORDER_LINES: Final = 100
"""Most lines one order may carry; keeps workflow payloads far below Temporal's limits."""

MAX_LINE_QUANTITY: Final = 1_000_000
"""Most units of one SKU on one line; larger is almost certainly a typo or an attack."""

MAX_ORDER_TOTAL: Final = 10_000_000_000
"""Cap on an order's total in minor units: 100,000,000.00 in a 2-decimal currency.

Channels and ledgers store amounts in 64-bit integers; this keeps every product and sum
we compute (fees, commissions, refunds) well inside that range.
"""


def currency_exponent(currency: str) -> int:
    """Minor-unit exponent of `currency`.

    Codes are matched exactly: "cny" is unknown, because the API passes codes through
    unchanged and a silent upper-casing here would hide a client bug.
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidOrder(
            "unknown_currency",
            f"currency {currency!r} is not supported; use one of "
            + ", ".join(sorted(CURRENCY_EXPONENTS)),
            "currency",
        ) from None


def _half_up_ratio(numerator: int, denominator: int) -> int:
    """round(numerator / denominator) with halves away from zero; denominator > 0."""
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return -magnitude if numerator < 0 else magnitude


def round_half_up(value: Decimal) -> int:
    """Round `value` to a whole number of minor units, halves away from zero.

    0.5 -> 1, 2.5 -> 3, 1.494 -> 1, -0.5 -> -1. This is the commercial rounding channels
    and invoices use, not Python's banker's rounding (which gives 2.5 -> 2). The value is
    taken as its exact fraction, so the result is independent of the decimal context.
    Raises ValueError for NaN or infinity.
    """
    try:
        numerator, denominator = value.as_integer_ratio()
    except OverflowError as exc:
        raise ValueError(f"cannot round an infinite value: {value}") from exc
    return _half_up_ratio(numerator, denominator)


def apply_rate(amount: int, rate: Decimal) -> int:
    """`amount * rate` rounded half up to whole minor units, computed exactly.

    Multiplying through `Decimal` would first round the product to the context precision
    (28 digits, half-even); this multiplies the exact fractions so a long rate cannot
    shift a half-unit boundary.
    """
    try:
        numerator, denominator = rate.as_integer_ratio()
    except OverflowError as exc:
        raise ValueError(f"rate must be finite, got {rate}") from exc
    return _half_up_ratio(amount * numerator, denominator)


def prorate(amount: int, part: int, whole: int) -> int:
    """`amount * part / whole` rounded half up, exactly: a proportional share of `amount`.

    Used to take a refund's share of each part of a split; `whole` must be > 0.
    """
    if whole <= 0:
        raise ValueError(f"whole must be > 0, got {whole}")
    return _half_up_ratio(amount * part, whole)


def format_amount(amount: int, currency: str) -> str:
    """Human-readable amount with the currency code: "12.34 CNY", "1234 JPY", "-0.050 KWD"."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    if exponent == 0:
        return f"{sign}{abs(amount)} {currency}"
    whole, fraction = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d} {currency}"
