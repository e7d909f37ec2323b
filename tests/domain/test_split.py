"""The settlement split: channel fee, platform commission and merchant net."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MAX_ORDER_TOTAL
from domain.split import Split, check_rate, split_payment

rates = st.decimals(min_value=0, max_value=1, places=4)


def test_a_fee_of_exactly_half_a_unit_rounds_up() -> None:
    # 250 * 0.006 = 1.5 -> 2; 249 * 0.006 = 1.494 -> 1
    assert split_payment(250, Decimal("0.006"), Decimal(0)).channel_fee_amount == 2
    assert split_payment(249, Decimal("0.006"), Decimal(0)).channel_fee_amount == 1


def test_a_typical_payment_splits_into_fee_commission_and_net() -> None:
    split = split_payment(10_000, Decimal("0.006"), Decimal("0.05"))
    assert split == Split(
        payable_amount=10_000,
        channel_fee_amount=60,
        commission_amount=500,
        merchant_net_amount=9_440,
    )


def test_commission_is_capped_so_the_merchant_never_goes_negative() -> None:
    split = split_payment(100, Decimal("0.6"), Decimal("0.5"))
    assert split.channel_fee_amount == 60
    assert split.commission_amount == 40
    assert split.merchant_net_amount == 0


def test_a_zero_payment_splits_into_zeros() -> None:
    split = split_payment(0, Decimal("0.006"), Decimal("0.05"))
    assert (
        split.channel_fee_amount,
        split.commission_amount,
        split.merchant_net_amount,
    ) == (
        0,
        0,
        0,
    )


def test_a_negative_payable_is_refused() -> None:
    with pytest.raises(ValueError, match="payable_amount"):
        split_payment(-1, Decimal(0), Decimal(0))


@pytest.mark.parametrize("rate", ["-0.0001", "1.0001", "NaN", "Infinity", "-Infinity"])
def test_a_rate_outside_zero_to_one_is_refused_by_name(rate: str) -> None:
    with pytest.raises(ValueError, match="commission_rate"):
        check_rate(Decimal(rate), "commission_rate")
    with pytest.raises(ValueError, match="channel_fee_rate"):
        split_payment(100, Decimal(rate), Decimal(0))


def test_a_float_rate_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="channel_fee_rate"):
        check_rate(0.5, "channel_fee_rate")  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", ["0", "1", "0.006", "0.5000"])
def test_a_rate_in_range_is_returned_unchanged(rate: str) -> None:
    assert check_rate(Decimal(rate), "rate") == Decimal(rate)


@given(
    payable=st.integers(min_value=0, max_value=MAX_ORDER_TOTAL),
    channel_fee_rate=rates,
    commission_rate=rates,
)
def test_the_parts_always_add_up_to_payable_and_none_is_negative(
    payable: int, channel_fee_rate: Decimal, commission_rate: Decimal
) -> None:
    split = split_payment(payable, channel_fee_rate, commission_rate)
    parts = (
        split.channel_fee_amount,
        split.commission_amount,
        split.merchant_net_amount,
    )
    assert sum(parts) == payable == split.payable_amount
    assert all(part >= 0 for part in parts)
    assert split == split_payment(payable, channel_fee_rate, commission_rate)
