"""Exact currency conversion: whole minor units out, and the exact rounding residual.

The rule (one, everywhere): the converted amount is `amount * rate`, taken as an exact
fraction and scaled from the source's minor unit to the target's (ISO 4217 exponents:
JPY/KRW 0, CNY/USD/EUR/HKD/GBP 2, BHD/KWD 3), then rounded to the nearest whole target
minor unit, halves away from zero (`domain.money.prorate`). That is the commercial
rounding of card networks' currency conversion and of the EU's euro-conversion rule
(Regulation 1103/97, art. 5), and the rule the rest of paysaga already uses for fees,
commissions and refunds; banker's rounding (half even) would make 0.5-unit cases depend
on parity, which no statement explains to a buyer.

The remainder: `residual = exact - converted`, in target minor units, as an exact
Decimal (always a finite decimal: the rate is one, and scaling is by powers of ten), so

    converted + residual == amount * rate * 10^(target exponent - source exponent)

holds with no rounding at all. For a positive amount the residual lies in [-0.5, +0.5);
a negative amount converts to exactly the negation of its positive twin.

Where the remainder goes in the books (what the integration will post; `domain.fx` names
the account kinds): each currency's postings stay whole minor units and balance on their
own, so a conversion never creates or loses a unit in any currency. The money in one
currency enters (or leaves) that currency's FX position account, the money in the other
leaves (or enters) the other's. Valued at the rate, the pair of positions differs from
zero by exactly `residual`: whoever receives `target_amount` receives `residual` less
than the exact value. When the platform pays the target amount out (a refund, a payout
in another currency) that is the platform's gain; when it takes the target amount in (a
buyer's payment) it is the platform's cost. Either way it is the FX rounding account's,
recorded exactly with the conversion and realised in whole units when the positions are
flattened at settlement (`split_position_close`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from domain.fx.rates import EXACT, require_decimal_rate, require_minor_units
from domain.money import currency_exponent, prorate


@dataclass(frozen=True)
class Conversion:
    """`source_amount` `source_currency` converted at `rate` into `target_currency`."""

    source_amount: int
    source_currency: str
    target_amount: int
    target_currency: str
    rate: Decimal
    residual: Decimal
    """exact - target_amount, in target minor units: what the receiver of the target
    amount got less than the exact value (the FX rounding account's, see above)."""

    @property
    def exact_target(self) -> Decimal:
        """The unrounded converted amount in target minor units."""
        return EXACT.add(Decimal(self.target_amount), self.residual)

    @property
    def source_residual(self) -> Fraction:
        """The residual valued in source minor units, exactly: residual / rate, scaled.

        A Fraction because dividing by a rate rarely terminates; the books need it when
        the position left to flatten is in the source currency (`split_position_close`).
        """
        shift = currency_exponent(self.target_currency) - currency_exponent(self.source_currency)
        return Fraction(self.residual) / (Fraction(self.rate) * Fraction(10) ** shift)


def exact_converted(amount: int, source: str, target: str, rate: Decimal) -> Decimal:
    """amount * rate in target minor units, exactly (no context rounding)."""
    shift = currency_exponent(target) - currency_exponent(source)
    return EXACT.multiply(Decimal(amount), rate).scaleb(shift, EXACT)


def convert(amount: int, source: str, target: str, rate: Decimal) -> Conversion:
    """Convert `amount` (source minor units) at `rate` (target per source major unit).

    Refuses floats with TypeError: `amount` must be an int, `rate` a Decimal.
    """
    require_minor_units(amount)
    require_decimal_rate(rate)
    source_exponent = currency_exponent(source)
    target_exponent = currency_exponent(target)
    numerator, denominator = rate.as_integer_ratio()
    up = 10 ** max(0, target_exponent - source_exponent)
    down = 10 ** max(0, source_exponent - target_exponent)
    converted = prorate(amount, numerator * up, denominator * down)
    exact = exact_converted(amount, source, target, rate)
    residual = EXACT.subtract(exact, Decimal(converted))
    return Conversion(amount, source, converted, target, rate, residual)


@dataclass(frozen=True)
class PositionClose:
    """How the whole-unit difference left in an FX position at settlement is booked."""

    rounding_amount: int
    """To the FX rounding account: the conversions' residuals, rounded by the same rule."""
    gain_loss_amount: int
    """To realised FX gain/loss: the rest, i.e. what the rate moved."""


def split_position_close(realised_amount: int, residuals: Decimal | Fraction) -> PositionClose:
    """Split `realised_amount` (what flattening a position leaves, in that currency's minor
    units; positive = platform gain) into the rounding share and the rate-move share.

    `residuals` is the platform's exact rounding result of the conversions that built the
    position, in the minor units of the position's currency (`residual` or
    `source_residual`, signed as gain for the platform).
    The two parts are whole units and add up to `realised_amount` exactly, so closing a
    position never creates or loses a unit either.
    """
    require_minor_units(realised_amount, "realised_amount")
    if not isinstance(residuals, Decimal | Fraction):
        raise TypeError(f"residuals must be a Decimal or Fraction, not {type(residuals).__name__}")
    exact = Fraction(residuals)
    rounding_amount = prorate(exact.numerator, 1, exact.denominator)
    return PositionClose(rounding_amount, realised_amount - rounding_amount)
