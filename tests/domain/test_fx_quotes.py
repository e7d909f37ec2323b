"""Quotes: what a buyer pays in their own currency, the markup, expiry and refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from channels.rates.ecb import EcbRates, load_sample_reference
from domain.errors import InvalidOrder
from domain.fx.conversion import exact_converted
from domain.fx.errors import QuotedRefundRefused, QuoteExpired
from domain.fx.quotes import (
    MAX_MARKUP_BPS,
    Quote,
    ReturnedSoFar,
    is_quote_valid,
    make_quote,
    refund_quoted,
    require_valid_quote,
)
from domain.fx.rates import Rate
from domain.money import MAX_ORDER_TOTAL

NOW = datetime(2024, 4, 16, 9, 30, tzinfo=UTC)
CURRENCIES = ["JPY", "KRW", "CNY", "USD", "EUR", "HKD", "GBP", "BHD", "KWD"]

mid_rates = st.builds(
    lambda base, quote, value: Rate(base, quote, value, "test", NOW),
    st.sampled_from(CURRENCIES),
    st.sampled_from(CURRENCIES),
    st.decimals(
        min_value=Decimal("0.0001"), max_value=Decimal("20000"), places=6, allow_nan=False
    ).filter(lambda value: value > 0),
)
price_amounts = st.integers(min_value=1, max_value=MAX_ORDER_TOTAL)
markups = st.integers(min_value=0, max_value=MAX_MARKUP_BPS)


def quote_or_skip(price: int, mid: Rate, markup: int) -> Quote:
    """The quote, unless the price is worth less than one presentment minor unit."""
    try:
        return make_quote("q", price, mid, markup, NOW)
    except InvalidOrder as refused:
        assert refused.code == "amount_too_small"
        assume(False)
        raise


def test_an_hkd_price_is_quoted_in_cny_at_the_ecb_rate_plus_the_markup() -> None:
    mid = EcbRates(load_sample_reference()).rate("HKD", "CNY", NOW)
    quote = make_quote("order-1:quote-1", 100_00, mid, markup_bps=150, now=NOW)
    # 1 HKD = 7.7134 / 8.3419 CNY (both per EUR, to 12 significant digits);
    # 100.00 HKD at mid is 92.4657 CNY, 1.5% more is 93.8527.
    assert mid.value == (Decimal("7.7134") / Decimal("8.3419")).quantize(Decimal("1e-12"))
    assert quote.mid_presentment_amount == 92_47
    assert quote.customer_rate == mid.value * Decimal("1.015")
    assert quote.presentment_amount == 93_85
    assert quote.markup_revenue == 1_38
    assert quote.expires_at == NOW + timedelta(minutes=15)


@given(price_amounts, mid_rates, markups)
def test_the_buyer_pays_exactly_the_mid_conversion_plus_the_markup(price, mid, markup):
    quote = quote_or_skip(price, mid, markup)
    assert quote.presentment_amount == quote.mid_presentment_amount + quote.markup_revenue
    assert quote.markup_revenue >= 0  # the markup never works against the platform
    assert quote.customer_rate >= mid.value
    if markup == 0:
        assert quote.markup_revenue == 0
    # The mid conversion's rounding is kept exactly for the FX rounding account.
    exact = exact_converted(price, mid.base, mid.quote, mid.value)
    assert Fraction(quote.mid_presentment_amount) + Fraction(quote.mid_residual) == exact


@given(price_amounts, mid_rates, markups, st.data())
def test_successive_partial_refunds_return_exactly_what_was_paid(price, mid, markup, data):
    quote = quote_or_skip(price, mid, markup)
    steps = data.draw(st.lists(st.integers(1, price), max_size=6))
    refunded = 0
    returned = markup_back = 0
    residuals = Decimal(0)
    for step in steps:
        step = min(step, price - refunded)
        if step == 0:
            break
        refund = refund_quoted(quote, refunded, step)
        assert 0 <= refund.markup_returned <= refund.presentment_amount
        refunded += step
        returned += refund.presentment_amount
        markup_back += refund.markup_returned
        residuals += refund.residual
        assert returned <= quote.presentment_amount
    if refunded < price:  # the last refund takes whatever remains
        last = refund_quoted(quote, refunded, price - refunded)
        returned += last.presentment_amount
        markup_back += last.markup_returned
        residuals += last.residual
    assert returned == quote.presentment_amount
    assert markup_back == quote.markup_revenue
    # What the payment's rounding cost the platform, the refunds' rounding gave back.
    assert residuals == quote.mid_residual


@given(price_amounts, mid_rates, markups, st.data())
def test_refunds_that_fail_out_of_order_still_return_exactly_what_was_paid(
    price, mid, markup, data
):
    """Refunds asked one after another, some failing after later ones were asked: those
    that stand and the last, which takes what remains, return the payment exactly."""
    quote = quote_or_skip(price, mid, markup)
    live: list[tuple[int, int, int]] = []  # (price units, presentment, markup) per refund
    for step in data.draw(st.lists(st.integers(1, price), max_size=6)):
        if live and data.draw(st.booleans()):
            live.pop(data.draw(st.integers(0, len(live) - 1)))  # it failed at the channel
        refunded = sum(units for units, _, _ in live)
        step = min(step, price - refunded)
        if step == 0:
            continue
        so_far = ReturnedSoFar(sum(b for _, b, _ in live), sum(r for _, _, r in live))
        refund = refund_quoted(quote, refunded, step, so_far)
        assert 0 <= refund.markup_returned <= refund.presentment_amount
        assert so_far.presentment_amount + refund.presentment_amount <= quote.presentment_amount
        live.append((step, refund.presentment_amount, refund.markup_returned))
    refunded = sum(units for units, _, _ in live)
    if refunded < price:
        so_far = ReturnedSoFar(sum(b for _, b, _ in live), sum(r for _, _, r in live))
        last = refund_quoted(quote, refunded, price - refunded, so_far)
        live.append((price - refunded, last.presentment_amount, last.markup_returned))
    assert sum(b for _, b, _ in live) == quote.presentment_amount


def test_a_refund_beyond_the_price_is_refused() -> None:
    mid = Rate("USD", "JPY", Decimal("153.95"), "test", NOW)
    quote = make_quote("q", 10_00, mid, 200, NOW)
    assert refund_quoted(quote, 0, 10_00).presentment_amount == quote.presentment_amount
    with pytest.raises(QuotedRefundRefused) as refused:
        refund_quoted(quote, 6_00, 4_01)
    assert refused.value.code == "refund_exceeds_payment"
    with pytest.raises(ValueError):
        refund_quoted(quote, 0, 0)


def test_a_quote_is_on_offer_from_its_creation_until_it_expires() -> None:
    mid = Rate("CNY", "USD", Decimal("0.13815"), "test", NOW)
    quote = make_quote("q", 500_00, mid, 300, NOW, ttl=timedelta(minutes=10))
    assert is_quote_valid(quote, NOW)
    assert is_quote_valid(quote, NOW + timedelta(minutes=9, seconds=59))
    assert not is_quote_valid(quote, NOW + timedelta(minutes=10))
    assert not is_quote_valid(quote, NOW - timedelta(seconds=1))
    assert require_valid_quote(quote, NOW) is quote
    with pytest.raises(QuoteExpired) as expired:
        require_valid_quote(quote, NOW + timedelta(hours=1))
    assert expired.value.code == "quote_expired"
    assert expired.value.param == "quote_id"


@pytest.mark.parametrize(
    ("price", "markup", "code"),
    [
        (0, 100, "invalid_amount"),
        (MAX_ORDER_TOTAL + 1, 100, "invalid_amount"),
        (100, -1, "invalid_markup"),
        (100, MAX_MARKUP_BPS + 1, "invalid_markup"),
    ],
)
def test_a_quote_with_a_bad_amount_or_markup_is_refused(price, markup, code):
    mid = Rate("EUR", "USD", Decimal("1.0656"), "test", NOW)
    with pytest.raises(InvalidOrder) as refused:
        make_quote("q", price, mid, markup, NOW)
    assert refused.value.code == code


def test_a_price_worth_less_than_one_presentment_unit_is_not_quoted() -> None:
    mid = Rate("KRW", "USD", Decimal("0.00072"), "test", NOW)  # 1 KRW = 0.072 US cents
    with pytest.raises(InvalidOrder) as refused:
        make_quote("q", 6, mid, 100, NOW)
    assert refused.value.code == "amount_too_small"
    assert make_quote("q", 7, mid, 0, NOW).presentment_amount == 1  # 0.504 cents


def test_a_float_price_or_markup_is_refused() -> None:
    mid = Rate("EUR", "USD", Decimal("1.0656"), "test", NOW)
    with pytest.raises(TypeError):
        make_quote("q", 10.0, mid, 100, NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        make_quote("q", 1000, mid, 1.5, NOW)  # type: ignore[arg-type]
