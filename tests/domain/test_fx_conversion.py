"""Exact conversion: whole minor units out, the rounding residual kept, nothing lost."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fx.conversion import convert, split_position_close
from domain.money import MAX_ORDER_TOTAL, currency_exponent

# One currency of each exponent the books hold, and their neighbours.
CURRENCIES = ["JPY", "KRW", "CNY", "USD", "EUR", "HKD", "GBP", "BHD", "KWD"]

currencies = st.sampled_from(CURRENCIES)
amounts = st.integers(min_value=-MAX_ORDER_TOTAL, max_value=MAX_ORDER_TOTAL)
rates = st.decimals(
    min_value=Decimal("0.000001"),
    max_value=Decimal("100000"),
    allow_nan=False,
    allow_infinity=False,
    places=10,
).filter(lambda rate: rate > 0)


def exact_value(amount: int, source: str, target: str, rate: Decimal) -> Fraction:
    """What `amount` is worth in target minor units, as a true fraction."""
    shift = currency_exponent(target) - currency_exponent(source)
    return Fraction(amount) * Fraction(rate) * Fraction(10) ** shift


@given(amounts, currencies, currencies, rates)
def test_converted_plus_residual_is_exactly_the_source_at_the_rate(amount, source, target, rate):
    conversion = convert(amount, source, target, rate)
    exact = exact_value(amount, source, target, rate)
    assert Fraction(conversion.target_amount) + Fraction(conversion.residual) == exact
    assert Fraction(conversion.exact_target) == exact
    # Valued back in the source currency, the residual is what the target amount misses.
    back = Fraction(conversion.target_amount) / (exact / amount) if amount else Fraction(0)
    assert back + conversion.source_residual == amount


@given(st.integers(min_value=0, max_value=MAX_ORDER_TOTAL), currencies, currencies, rates)
def test_the_rounding_is_to_the_nearest_unit_halves_away_from_zero(amount, source, target, rate):
    positive = convert(amount, source, target, rate)
    negative = convert(-amount, source, target, rate)
    assert Fraction(-1, 2) <= positive.residual < Fraction(1, 2)
    assert negative.target_amount == -positive.target_amount
    assert negative.residual == -positive.residual


@pytest.mark.parametrize(
    ("amount", "source", "target", "rate", "converted", "residual"),
    [
        (1, "USD", "JPY", "150", 2, "-0.5"),  # 0.01 USD = 1.5 JPY: half goes up
        (3, "USD", "JPY", "150", 5, "-0.5"),  # 4.5 -> 5, not 4 as half-even would
        (1, "JPY", "KWD", "0.0025", 3, "-0.5"),  # 2.5 fils
        (12_345, "JPY", "CNY", "0.046303", 57161, "0.0535"),  # 571.610535 CNY
        (10_000, "HKD", "CNY", "0.92466", 9247, "-0.4"),
        (1234, "KWD", "USD", "3.2499", 401, "0.03766"),  # 1.234 KWD: 3 -> 2 decimals
        (1001, "CNY", "KRW", "191.07", 1913, "-0.3893"),
    ],
)
def test_known_conversions_between_0_2_and_3_decimal_currencies(
    amount, source, target, rate, converted, residual
):
    conversion = convert(amount, source, target, Decimal(rate))
    assert conversion.target_amount == converted
    assert conversion.residual == Decimal(residual)


def test_a_float_amount_or_rate_is_refused_not_rounded() -> None:
    with pytest.raises(TypeError):
        convert(100.0, "USD", "CNY", Decimal("7.2"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        convert(100, "USD", "CNY", 7.2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        convert(True, "USD", "CNY", Decimal("7.2"))
    for rate in ("0", "-1", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            convert(100, "USD", "CNY", Decimal(rate))


@given(st.integers(-(10**9), 10**9), amounts, currencies, currencies, rates)
def test_closing_a_position_splits_its_remainder_into_whole_units_exactly(
    realised, amount, source, target, rate
):
    conversion = convert(amount, source, target, rate)
    for residual in (conversion.residual, conversion.source_residual):
        close = split_position_close(realised, residual)
        assert close.rounding_amount + close.gain_loss_amount == realised
        assert abs(close.rounding_amount - Fraction(residual)) <= Fraction(1, 2)
