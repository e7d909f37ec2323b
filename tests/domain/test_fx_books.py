"""The books of a quoted order: every entry balances in its currency, the merchant gets the
price's split, the buyer gets back what they paid, and a realisation leaves both FX
positions flat with no minor unit made or lost."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.errors import InvalidOrder
from domain.fx.books import (
    CurrencyPostings,
    OpenPosition,
    capture_postings,
    realise_postings,
    refund_postings,
    residual_in_price_units,
)
from domain.fx.conversion import convert
from domain.fx.quotes import Quote, make_quote, refund_quoted
from domain.fx.rates import Rate
from domain.ledger import PostingLine, account_parts, is_balanced
from domain.money import prorate
from domain.split import Split, split_payment, split_refund, subtract

NOW = datetime(2024, 4, 16, 9, 30, tzinfo=UTC)
PAIRS = [("CNY", "USD"), ("CNY", "JPY"), ("CNY", "EUR"), ("JPY", "USD"), ("USD", "KWD")]
MID = {"USD": Decimal("0.138151"), "JPY": Decimal("21.2683"), "EUR": Decimal("0.129643")}


def _mid(price: str, presentment: str) -> Decimal:
    if price == "CNY":
        return MID[presentment]
    return {"JPY": Decimal("0.0065"), "USD": Decimal("0.3077")}[price]


class Books:
    """Balances by account, fed entry by entry (each checked balanced in its currency)."""

    def __init__(self) -> None:
        self.balances: Counter[str] = Counter()

    def post(self, postings: CurrencyPostings) -> None:
        for lines in (postings.price, postings.presentment):
            assert is_balanced(lines)
            assert len({account_parts(line.account)[2] for line in lines}) <= 1
            self.apply(lines)

    def apply(self, lines: list[PostingLine]) -> None:
        for line in lines:
            self.balances[line.account] += line.amount

    def of(self, kind: str, currency: str, owner: str = "platform") -> int:
        return self.balances[f"{kind}:{owner}:{currency}"]

    def per_currency(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for account, amount in self.balances.items():
            totals[account_parts(account)[2]] += amount
        return dict(totals)


def _quote(pair: tuple[str, str], price: int, markup: int, value: Decimal | None = None) -> Quote:
    rate = Rate(pair[0], pair[1], value or _mid(*pair), "test", NOW)
    return make_quote("quo_1", price, rate, markup, NOW)


def _open(books: Books, quote: Quote, residual: Fraction, rounding_posted: int) -> OpenPosition:
    p, b = quote.price_currency, quote.presentment_currency
    return OpenPosition(
        presentment_currency=b,
        price_currency=p,
        position_presentment=books.of("fx_position", b),
        markup_presentment=books.of("fx_markup_revenue", b),
        position_price=books.of("fx_position", p),
        residual_price=residual_in_price_units(quote, residual),
        rounding_posted=rounding_posted,
    )


def test_capture_funds_the_split_in_the_price_currency_and_takes_the_buyers_money() -> None:
    quote = _quote(("CNY", "USD"), 10_000, 250)
    split = split_payment(10_000, Decimal("0.029"), Decimal("0.05"))
    books = Books()
    books.post(capture_postings("card", "mer", quote, split))
    assert books.of("channel_clearing", "USD", "card") == quote.presentment_amount
    assert -books.of("fx_markup_revenue", "USD") == quote.markup_revenue > 0
    assert books.of("fx_position", "CNY") == 10_000
    assert -books.of("merchant_pending", "CNY", "mer") == split.merchant_net_amount
    assert books.per_currency() == {"CNY": 0, "USD": 0}


@given(
    pair=st.sampled_from(PAIRS),
    price=st.integers(min_value=100, max_value=10_000_000),
    markup=st.integers(min_value=0, max_value=1_000),
    refunds=st.lists(st.integers(min_value=1, max_value=10_000_000), max_size=4),
    drift_ppm=st.integers(min_value=-50_000, max_value=50_000),
    refund_all=st.booleans(),
)
def test_no_unit_is_made_or_lost_and_positions_close_flat(
    pair: tuple[str, str],
    price: int,
    markup: int,
    refunds: list[int],
    drift_ppm: int,
    refund_all: bool,
) -> None:
    try:
        quote = _quote(pair, price, markup)
    except InvalidOrder:  # worth less than one presentment unit
        assume(False)
        raise
    split = split_payment(price, Decimal("0.029"), Decimal("0.05"))
    books = Books()
    books.post(capture_postings("card", "mer", quote, split))
    residual = -Fraction(quote.mid_residual)
    refunded, given_back = 0, 0
    remaining = split
    for asked in [*refunds, price] if refund_all else refunds:
        amount = min(asked, price - refunded)
        if amount == 0:
            break
        parts = split_refund(remaining, amount)
        returned = refund_quoted(quote, refunded, amount)
        books.post(refund_postings("card", "mer", quote, parts, returned, released=False))
        refunded += amount
        given_back += returned.presentment_amount
        remaining = subtract(remaining, parts)
        residual += Fraction(returned.residual)
    # The merchant holds exactly the split less what refunds took, in its own currency.
    assert -books.of("merchant_pending", quote.price_currency, "mer") == (
        remaining.merchant_net_amount
    )
    position = _open(books, quote, residual, 0)
    assert position.presentment_open == quote.presentment_amount - given_back
    if refunded == price:
        assert position.presentment_open == 0
        assert books.of("fx_position", quote.price_currency) == 0
        assert books.of("fx_position", quote.presentment_currency) == 0
        assert _round_half_up(position.residual_price) == 0
        return
    # The channel converts what is left at a rate a little off our mid.
    channel_rate = (1 / _mid(*pair)) * (1 + Decimal(drift_ppm) / 1_000_000)
    settled = convert(
        position.presentment_open,
        quote.presentment_currency,
        quote.price_currency,
        channel_rate.quantize(Decimal("0.000000001")),
    ).target_amount
    assume(settled > 0)
    realised = realise_postings("card", position, settled)
    books.post(realised.postings)
    assert books.of("fx_position", quote.price_currency) == 0
    assert books.of("fx_position", quote.presentment_currency) == 0
    assert books.of("fx_markup_revenue", quote.presentment_currency) == 0
    assert books.of("channel_clearing", quote.presentment_currency, "card") == given_back
    assert books.per_currency() == {quote.price_currency: 0, quote.presentment_currency: 0}
    # What the channel delivered is the merchant's side, the markup, rounding and gain.
    assert settled == (
        remaining.payable_amount
        + realised.markup_amount
        + realised.rounding_amount
        + realised.gain_loss_amount
    )


def _round_half_up(value: Fraction) -> int:
    return prorate(value.numerator, 1, value.denominator)


def test_at_the_mid_rate_the_gain_is_only_the_rounding_of_the_settlement() -> None:
    quote = _quote(("CNY", "JPY"), 123_457, 0)
    split = split_payment(123_457, Decimal("0"), Decimal("0"))
    books = Books()
    books.post(capture_postings("card", "mer", quote, split))
    position = _open(books, quote, -Fraction(quote.mid_residual), 0)
    settled = convert(
        quote.presentment_amount, "JPY", "CNY", Decimal(1) / Decimal("21.2683")
    ).target_amount
    realised = realise_postings("card", position, settled)
    assert abs(realised.gain_loss_amount) <= 1
    assert realised.markup_amount == 0


def test_a_refund_after_settlement_reopens_and_closes_the_other_way() -> None:
    quote = _quote(("CNY", "USD"), 50_000, 300)
    split = split_payment(50_000, Decimal("0.029"), Decimal("0.05"))
    books = Books()
    books.post(capture_postings("card", "mer", quote, split))
    residual = -Fraction(quote.mid_residual)
    first = realise_postings("card", _open(books, quote, residual, 0), 50_200)
    books.post(first.postings)
    parts = split_refund(split, 20_000)
    returned = refund_quoted(quote, 0, 20_000)
    books.post(refund_postings("card", "mer", quote, parts, returned, released=True))
    residual += Fraction(returned.residual)
    reopened = _open(books, quote, residual, first.rounding_amount)
    assert reopened.presentment_open == -returned.presentment_amount
    # 2846 USD cents cost 20 600 fen at the quoted mid; the channel now takes 21 000.
    second = realise_postings("card", reopened, -21_000)
    books.post(second.postings)
    assert books.of("fx_position", "CNY") == books.of("fx_position", "USD") == 0
    assert second.gain_loss_amount < 0
    assert books.per_currency() == {"CNY": 0, "USD": 0}


def test_realising_nothing_or_the_wrong_way_is_refused() -> None:
    quote = _quote(("CNY", "USD"), 10_000, 0)
    books = Books()
    with pytest.raises(ValueError, match="nothing open"):
        realise_postings("card", _open(books, quote, Fraction(0), 0), 100)
    books.post(
        capture_postings(
            "card",
            "mer",
            quote,
            Split(
                payable_amount=10_000,
                channel_fee_amount=0,
                commission_amount=0,
                merchant_net_amount=10_000,
            ),
        )
    )
    with pytest.raises(ValueError, match="cannot settle"):
        realise_postings("card", _open(books, quote, Fraction(0), 0), -100)
