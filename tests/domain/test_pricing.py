"""Pricing: order validation, coupons, and spreading the discount over lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.errors import CouponRejected, InvalidOrder
from domain.money import MAX_LINE_QUANTITY, MAX_ORDER_LINES, MAX_ORDER_TOTAL
from domain.pricing import (
    Coupon,
    CouponKind,
    OrderLine,
    PricedOrder,
    allocate,
    coupon_discount,
    price_order,
    validate_order,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def line(sku: str = "SKU-1", quantity: int = 1, unit_amount: int = 1000) -> OrderLine:
    return OrderLine(sku=sku, name=f"item {sku}", quantity=quantity, unit_amount=unit_amount)


def percentage(percent_off: str, **fields: Any) -> Coupon:
    return Coupon(
        code="PCT",
        kind=CouponKind.PERCENTAGE,
        percent_off=Decimal(percent_off),
        **fields,
    )


def fixed(amount_off: int, currency: str = "CNY", **fields: Any) -> Coupon:
    return Coupon(
        code="FIX",
        kind=CouponKind.FIXED,
        amount_off=amount_off,
        currency=currency,
        **fields,
    )


def threshold(amount_off: int, min_total: int, currency: str = "CNY") -> Coupon:
    return Coupon(
        code="THR",
        kind=CouponKind.THRESHOLD,
        amount_off=amount_off,
        min_total=min_total,
        currency=currency,
    )


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "currency", "code", "param"),
    [
        ([], "CNY", "empty_order", "lines"),
        ([line()] * (MAX_ORDER_LINES + 1), "CNY", "too_many_lines", "lines"),
        ([line()], "cny", "unknown_currency", "currency"),
        (
            [line(), line(quantity=0)],
            "CNY",
            "quantity_not_positive",
            "lines[1].quantity",
        ),
        ([line(quantity=-3)], "CNY", "quantity_not_positive", "lines[0].quantity"),
        (
            [line(), line(), line(quantity=MAX_LINE_QUANTITY + 1, unit_amount=1)],
            "CNY",
            "quantity_too_large",
            "lines[2].quantity",
        ),
        ([line(unit_amount=-1)], "CNY", "amount_negative", "lines[0].unit_amount"),
        ([line(), line(sku="")], "CNY", "sku_missing", "lines[1].sku"),
        ([line(sku="   ")], "CNY", "sku_missing", "lines[0].sku"),
        (
            [line(quantity=MAX_LINE_QUANTITY, unit_amount=10_000), line(unit_amount=1)],
            "CNY",
            "total_too_large",
            "lines",
        ),
    ],
)
def test_an_order_that_cannot_be_priced_is_refused_with_code_and_field(
    lines: list[OrderLine], currency: str, code: str, param: str
) -> None:
    with pytest.raises(InvalidOrder) as refused:
        validate_order(lines, currency)
    assert (refused.value.code, refused.value.param) == (code, param)
    assert refused.value.message


def test_orders_at_the_limits_are_accepted() -> None:
    validate_order([line()] * MAX_ORDER_LINES, "CNY")
    validate_order([line(quantity=MAX_LINE_QUANTITY, unit_amount=10_000)], "CNY")  # == max total
    validate_order([line(unit_amount=0)], "JPY")  # a free gift line


@pytest.mark.parametrize("bad", [1.0, True, "5", 2.5])
def test_order_line_integers_are_strict(bad: object) -> None:
    with pytest.raises(ValidationError):
        OrderLine(sku="A", name="a", quantity=bad, unit_amount=100)
    with pytest.raises(ValidationError):
        OrderLine(sku="A", name="a", quantity=1, unit_amount=bad)


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        line().quantity = 2  # type: ignore[misc]


# --- coupons --------------------------------------------------------------------------


def test_a_percentage_coupon_rounds_half_up() -> None:
    assert coupon_discount(percentage("0.15"), 1000, "CNY", NOW) == 150
    assert coupon_discount(percentage("0.15"), 10, "CNY", NOW) == 2  # 1.5 -> 2
    assert coupon_discount(percentage("0.15"), 9, "CNY", NOW) == 1  # 1.35 -> 1
    assert coupon_discount(percentage("1"), 1234, "JPY", NOW) == 1234


def test_a_percentage_coupon_without_currency_applies_to_any_currency() -> None:
    assert coupon_discount(percentage("0.1"), 1000, "JPY", NOW) == 100
    assert coupon_discount(percentage("0.1", currency="JPY"), 1000, "JPY", NOW) == 100


def test_a_coupon_is_valid_from_its_start_until_just_before_its_end() -> None:
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=1)
    coupon = fixed(100, valid_from=start, valid_until=end)
    assert coupon_discount(coupon, 1000, "CNY", start) == 100
    assert coupon_discount(coupon, 1000, "CNY", end - timedelta(microseconds=1)) == 100

    with pytest.raises(CouponRejected) as early:
        coupon_discount(coupon, 1000, "CNY", start - timedelta(microseconds=1))
    assert (early.value.code, early.value.param) == (
        "coupon_not_yet_valid",
        "coupon_code",
    )

    with pytest.raises(CouponRejected) as late:
        coupon_discount(coupon, 1000, "CNY", end)
    assert (late.value.code, late.value.param) == ("coupon_expired", "coupon_code")


def test_the_validity_window_compares_instants_across_time_zones() -> None:
    tokyo = timezone(timedelta(hours=9))
    coupon = fixed(100, valid_until=datetime(2025, 6, 1, 12, 0, tzinfo=UTC))
    with pytest.raises(CouponRejected, match="coupon_expired"):
        coupon_discount(coupon, 1000, "CNY", NOW.astimezone(tokyo))


@pytest.mark.parametrize(
    ("coupon", "currency"),
    [
        (fixed(100, currency="USD"), "CNY"),
        (threshold(100, 500, currency="USD"), "CNY"),
        (percentage("0.1", currency="USD"), "CNY"),
    ],
)
def test_a_coupon_for_another_currency_does_not_apply(coupon: Coupon, currency: str) -> None:
    with pytest.raises(CouponRejected) as refused:
        coupon_discount(coupon, 1000, currency, NOW)
    assert (refused.value.code, refused.value.param) == (
        "coupon_not_applicable",
        "coupon_code",
    )


def test_a_threshold_coupon_applies_from_its_minimum_total() -> None:
    coupon = threshold(2000, 10_000)
    assert coupon_discount(coupon, 10_000, "CNY", NOW) == 2000
    with pytest.raises(CouponRejected) as refused:
        coupon_discount(coupon, 9_999, "CNY", NOW)
    assert (refused.value.code, refused.value.param) == (
        "coupon_not_applicable",
        "coupon_code",
    )


def test_a_fixed_coupon_above_the_total_leaves_nothing_to_pay() -> None:
    assert coupon_discount(fixed(5000), 1200, "CNY", NOW) == 1200
    priced = price_order(
        [line(unit_amount=700), line("SKU-2", unit_amount=500)], "CNY", fixed(5000), NOW
    )
    assert (priced.total_amount, priced.discount_amount, priced.payable_amount) == (
        1200,
        1200,
        0,
    )
    assert [p.payable_amount for p in priced.lines] == [0, 0]


def test_coupon_discount_refuses_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="aware"):
        coupon_discount(fixed(100), 1000, "CNY", datetime(2025, 6, 1, 12, 0))


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "percentage"},
        {"kind": "percentage", "percent_off": Decimal(0)},
        {"kind": "percentage", "percent_off": Decimal("1.01")},
        {"kind": "percentage", "percent_off": Decimal("NaN")},
        {"kind": "percentage", "percent_off": 0.15},
        {"kind": "percentage", "percent_off": Decimal("0.1"), "amount_off": 100},
        {"kind": "fixed", "amount_off": 100},
        {"kind": "fixed", "amount_off": 0, "currency": "CNY"},
        {"kind": "fixed", "amount_off": 1.0, "currency": "CNY"},
        {"kind": "fixed", "amount_off": 100, "currency": "CNY", "min_total": 5},
        {"kind": "threshold", "amount_off": 100, "currency": "CNY"},
        {
            "kind": "fixed",
            "amount_off": 100,
            "currency": "CNY",
            "valid_from": datetime(2025, 1, 1),
        },
        {
            "kind": "fixed",
            "amount_off": 100,
            "currency": "CNY",
            "valid_from": NOW,
            "valid_until": NOW,
        },
    ],
)
def test_a_coupon_whose_fields_do_not_fit_its_kind_cannot_be_built(
    fields: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError):
        Coupon(code="BAD", **fields)


def test_coupons_and_priced_orders_survive_a_json_round_trip() -> None:
    coupon = percentage("0.125", valid_until=NOW)
    assert Coupon.model_validate_json(coupon.model_dump_json()) == coupon
    priced = price_order([line(), line("SKU-2", 3, 333)], "CNY", fixed(100), NOW - timedelta(1))
    assert PricedOrder.model_validate_json(priced.model_dump_json()) == priced


# --- allocation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "weights", "shares"),
    [
        (1, [1, 1, 1], [1, 0, 0]),
        (2, [1, 1, 1], [1, 1, 0]),
        (100, [1, 1, 1], [34, 33, 33]),
        (10, [1, 2, 3, 4], [1, 2, 3, 4]),
        (5, [0, 1, 1], [0, 3, 2]),
        (150, [999, 1], [150, 0]),
        (7, [2, 3, 5], [1, 2, 4]),  # 1.4, 2.1, 3.5 -> 3.5 has the largest remainder
        (0, [3, 4], [0, 0]),
        (0, [0, 0], [0, 0]),
        (0, [], []),
    ],
)
def test_allocate_known_answers(amount: int, weights: list[int], shares: list[int]) -> None:
    assert allocate(amount, weights) == shares


@pytest.mark.parametrize(
    ("amount", "weights"),
    [(1, [0, 0]), (1, []), (-1, [1]), (1, [2, -1])],
)
def test_allocate_refuses_what_cannot_be_shared(amount: int, weights: list[int]) -> None:
    with pytest.raises(ValueError, match=r"."):
        allocate(amount, weights)


@given(
    amount=st.integers(min_value=0, max_value=MAX_ORDER_TOTAL),
    weights=st.lists(
        st.integers(min_value=0, max_value=MAX_ORDER_TOTAL), min_size=1, max_size=20
    ).filter(lambda ws: sum(ws) > 0),
)
def test_allocate_shares_add_up_and_each_is_its_proportion_rounded(
    amount: int, weights: Sequence[int]
) -> None:
    shares = allocate(amount, weights)
    assert sum(shares) == amount
    for share, weight in zip(shares, weights, strict=True):
        exact = Fraction(amount * weight, sum(weights))
        assert exact - 1 < share < exact + 1
        if amount <= sum(weights):
            assert share <= weight
    assert allocate(amount, list(weights)) == shares


# --- pricing whole orders -------------------------------------------------------------


def test_price_order_spreads_a_percentage_discount_over_lines_by_value() -> None:
    priced = price_order(
        [line("A", 2, 2500), line("B", 1, 5000), line("GIFT", 1, 0)],
        "CNY",
        percentage("0.1"),
        NOW,
    )
    assert (priced.total_amount, priced.discount_amount, priced.payable_amount) == (
        10_000,
        1000,
        9000,
    )
    assert [(p.line_total, p.discount_amount, p.payable_amount) for p in priced.lines] == [
        (5000, 500, 4500),
        (5000, 500, 4500),
        (0, 0, 0),
    ]


def test_price_order_without_a_coupon_charges_the_total() -> None:
    priced = price_order([line("A", 3, 120)], "JPY", None, NOW)
    assert priced.currency == "JPY"
    assert (priced.total_amount, priced.discount_amount, priced.payable_amount) == (
        360,
        0,
        360,
    )


def test_an_all_free_order_prices_to_zero() -> None:
    priced = price_order([line(unit_amount=0)], "CNY", percentage("0.5"), NOW)
    assert priced.payable_amount == 0


def test_price_order_validates_before_looking_at_the_coupon() -> None:
    with pytest.raises(InvalidOrder, match="empty_order"):
        price_order([], "CNY", fixed(100, currency="USD"), NOW)


order_lines = st.lists(
    st.builds(
        OrderLine,
        sku=st.text(alphabet="ABCDEF0123456789", min_size=1, max_size=8),
        name=st.text(max_size=10),
        quantity=st.integers(min_value=1, max_value=1000),
        unit_amount=st.integers(min_value=0, max_value=1_000_000),
    ),
    min_size=1,
    max_size=10,
)
coupons = st.one_of(
    st.none(),
    st.decimals(min_value=Decimal("0.0001"), max_value=1, places=4).map(
        lambda p: percentage(str(p))
    ),
    st.integers(min_value=1, max_value=MAX_ORDER_TOTAL).map(fixed),
    st.tuples(
        st.integers(min_value=1, max_value=10**9),
        st.integers(min_value=0, max_value=10**6),
    ).map(lambda t: threshold(*t)),
)


@given(lines=order_lines, coupon=coupons)
def test_priced_lines_always_add_up_to_the_order(
    lines: list[OrderLine], coupon: Coupon | None
) -> None:
    total = sum(item.quantity * item.unit_amount for item in lines)
    if coupon is not None and coupon.min_total is not None and total < coupon.min_total:
        with pytest.raises(CouponRejected, match="coupon_not_applicable"):
            price_order(lines, "CNY", coupon, NOW)
        return
    priced = price_order(lines, "CNY", coupon, NOW)
    assert priced.total_amount == sum(p.line_total for p in priced.lines)
    assert priced.discount_amount == sum(p.discount_amount for p in priced.lines)
    assert priced.payable_amount == sum(p.payable_amount for p in priced.lines)
    assert priced.payable_amount == priced.total_amount - priced.discount_amount >= 0
    assert all(0 <= p.discount_amount <= p.line_total for p in priced.lines)
    assert price_order(lines, "CNY", coupon, NOW) == priced
