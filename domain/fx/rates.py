"""Exchange rates: the `Rate` value, the `RateSource` interface, and exact Decimal arithmetic.

A rate says how many major units of `quote` one major unit of `base` buys:
`Rate("EUR", "USD", Decimal("1.0656"), ...)` is 1 EUR = 1.0656 USD. Rates are `Decimal`,
never float, and carry where they came from (`source`) and the instant they describe
(`as_of`, timezone-aware) so a quote, a posting or an audit can name the rate it used.

Sources publish a table against one pivot currency (the ECB against EUR, the sandbox
against USD); any other pair is a cross rate through the pivot, divided to
`CROSS_RATE_DIGITS` significant digits. That precision only decides how close a cross
rate is to the "true" one: the books never depend on it, because every conversion is
computed exactly at the rate it records (`domain.fx.conversion`).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Protocol

from domain.money import currency_exponent

CROSS_RATE_DIGITS: Final = 12
"""Significant digits of a rate derived by division (a cross rate, an inverse).

Published mid rates have 5 or 6; 12 keeps the division's own error (at most 5e-12
relative) a thousand times below a basis point of markup.
"""

EXACT: Final = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)
"""Context for arithmetic that must be exact (+, -, *, scaleb): any rounding raises.

With the maximum precision, sums and products of finite Decimals are never rounded;
division is never done in it (a third has no finite expansion): see `divide_rates`.
"""

_DIVISION: Final = decimal.Context(
    prec=CROSS_RATE_DIGITS,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)


def require_decimal_rate(value: object, name: str = "rate") -> Decimal:
    """`value` if it is a finite Decimal > 0; TypeError for a float or anything not Decimal.

    Floats are refused rather than converted: `Decimal(1.1)` is
    1.100000000000000088817841970012523233890533447265625, a rate nobody published.
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a finite Decimal > 0, got {value}")
    return value


def require_minor_units(value: object, name: str = "amount") -> int:
    """`value` if it is an int (not a bool, not a float): amounts are whole minor units."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of minor units, got {type(value).__name__}")
    return value


def divide_rates(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator to `CROSS_RATE_DIGITS` significant digits, half even."""
    return _DIVISION.divide(numerator, denominator).normalize(_DIVISION)


@dataclass(frozen=True)
class Rate:
    """1 `base` = `value` `quote`, as published by `source` for the instant `as_of`."""

    base: str
    quote: str
    value: Decimal
    source: str
    as_of: datetime

    def __post_init__(self) -> None:
        currency_exponent(self.base)  # refuses a currency we cannot hold in the books
        currency_exponent(self.quote)
        require_decimal_rate(self.value)
        if not isinstance(self.as_of, datetime) or self.as_of.utcoffset() is None:
            raise ValueError(f"as_of must be a timezone-aware datetime, got {self.as_of!r}")
        if not self.source:
            raise ValueError("a rate must name its source")

    def inverse(self) -> Rate:
        """The same rate read the other way: 1 `quote` = 1/value `base`."""
        value = divide_rates(Decimal(1), self.value)
        return Rate(self.quote, self.base, value, self.source, self.as_of)


class RateSource(Protocol):
    """Anything that can tell the mid rate of a pair at an instant.

    Raises `RateMissing` for a currency it does not serve and `RateStale` when its
    newest rates do not cover `at`; never returns a guess.
    """

    def rate(self, base: str, quote: str, at: datetime) -> Rate: ...


def cross_rate(
    base: str,
    quote: str,
    per_pivot: dict[str, Decimal],
    *,
    source: str,
    as_of: datetime,
) -> Rate:
    """The rate of `base` in `quote` from a table of "units per 1 pivot".

    With `per_pivot[c]` the units of c that one pivot unit buys, 1 base =
    per_pivot[quote] / per_pivot[base] quote. The pivot itself must be in the table
    with value 1. The caller has checked both currencies are in the table.
    """
    if base == quote:
        return Rate(base, quote, Decimal(1), source, as_of)
    value = divide_rates(per_pivot[quote], per_pivot[base])
    return Rate(base, quote, value, source, as_of)
