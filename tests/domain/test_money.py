"""Money: currency table, half-up rounding and formatting, all on integers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, InvalidOrder
from domain.money import (
    CURRENCY_EXPONENTS,
    MAX_ORDER_TOTAL,
    apply_rate,
    currency_exponent,
    format_amount,
    round_half_up,
)


def test_supported_currencies_have_their_iso_minor_units() -> None:
    expected = {"CNY": 2, "USD": 2, "EUR": 2, "GBP": 2, "HKD": 2, "SGD": 2, "AUD": 2}
    expected |= {"CAD": 2, "CHF": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}
    for currency, exponent in expected.items():
        assert currency_exponent(currency) == exponent
    assert set(expected) <= set(CURRENCY_EXPONENTS)


@pytest.mark.parametrize("currency", ["cny", "XXX", "", "CNYY"])
def test_an_unknown_or_lower_case_currency_is_refused(currency: str) -> None:
    with pytest.raises(InvalidOrder) as refused:
        currency_exponent(currency)
    assert refused.value.code == "unknown_currency"
    assert refused.value.param == "currency"
    assert isinstance(refused.value, DomainError)
    assert not refused.value.retryable


def test_the_currency_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        CURRENCY_EXPONENTS["XXX"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("0.5", 1),
        ("1.5", 2),
        ("2.5", 3),
        ("1.494", 1),
        ("1.4999999999", 1),
        ("-0.5", -1),
        ("-2.5", -3),
        ("-1.494", -1),
        ("0", 0),
        ("7", 7),
        ("0.4999", 0),
    ],
)
def test_round_half_up_sends_halves_away_from_zero(value: str, rounded: int) -> None:
    assert round_half_up(Decimal(value)) == rounded


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_round_half_up_refuses_values_that_are_not_numbers(value: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        round_half_up(Decimal(value))


def test_apply_rate_is_exact_even_past_the_decimal_context_precision() -> None:
    # 31 significant digits: multiplying in the default 28-digit context rounds this to
    # 0.5 first, and half-up would then wrongly give a whole unit.
    just_below_half = Decimal("0." + "4" + "9" * 30)
    assert round_half_up(Decimal(1) * just_below_half) == 1  # the trap
    assert apply_rate(1, just_below_half) == 0
    assert apply_rate(10**10, Decimal("0.00000000005")) == 1  # exactly 0.5 -> 1
    assert apply_rate(10**10, Decimal("0.0000000000499")) == 0


@given(
    amount=st.integers(min_value=0, max_value=MAX_ORDER_TOTAL),
    rate=st.decimals(min_value=0, max_value=1, places=4),
)
def test_apply_rate_agrees_with_rounding_the_exact_product(amount: int, rate: Decimal) -> None:
    assert apply_rate(amount, rate) == round_half_up(Decimal(amount) * rate)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1234, "CNY", "12.34 CNY"),
        (5, "USD", "0.05 USD"),
        (100, "EUR", "1.00 EUR"),
        (0, "GBP", "0.00 GBP"),
        (1234, "JPY", "1234 JPY"),
        (0, "KRW", "0 KRW"),
        (1234, "KWD", "1.234 KWD"),
        (5, "BHD", "0.005 BHD"),
        (-1234, "CNY", "-12.34 CNY"),
        (-50, "KWD", "-0.050 KWD"),
        (MAX_ORDER_TOTAL, "CNY", "100000000.00 CNY"),
    ],
)
def test_format_amount_places_the_point_by_the_currency(
    amount: int, currency: str, text: str
) -> None:
    assert format_amount(amount, currency) == text


def test_format_amount_refuses_an_unknown_currency() -> None:
    with pytest.raises(InvalidOrder, match="unknown_currency"):
        format_amount(100, "cny")


def test_a_domain_error_carries_code_message_and_param() -> None:
    error = InvalidOrder(
        "quantity_not_positive", "quantity must be at least 1", "lines[0].quantity"
    )
    assert (error.code, error.message, error.param) == (
        "quantity_not_positive",
        "quantity must be at least 1",
        "lines[0].quantity",
    )
    assert str(error) == "quantity_not_positive [lines[0].quantity]: quantity must be at least 1"
    assert InvalidOrder("empty_order", "add a line").param is None
