"""The books of a quoted order: which accounts each cross-currency movement moves (pure).

A quoted order is priced in P (its `price_currency`, the merchant's) and paid in B
(the buyer's `presentment_currency`). Every entry below is one currency's, so each one
balances by itself; the FX position accounts (one per currency) are the bridge:

    capture     B: clearing +B, fx_markup_revenue -R, fx_position -M      (M = B - R)
                P: fx_position +P, merchant / commission / channel fee -P (the split)
    refund      P: the split's parts +p, fx_position -p
                B: fx_position +(b - r), fx_markup_revenue +r, refunds_in_flight -b
                (b, r: `domain.fx.quotes.refund_quoted`, at the quoted rate)
    realise     the channel turned the order's open B money (X) into Y of P:
                B: clearing -X, fx_position and fx_markup_revenue back to zero
                P: clearing +Y, fx_position back to zero, the markup's share of Y to
                   fx_markup_revenue, the rest's difference from what the merchant was
                   promised to fx_rounding (the conversions' residuals, rounded) and
                   fx_gain_loss (what the rate moved)

    close       the buyer's side closed with no conversion (everything given back, or
                the rest worth under one unit of B): P: fx_position back to zero,
                the difference to fx_rounding (what the refunds' rounding cost)

So after a realisation both positions of the order are flat, no unit was made or lost
in either currency, the merchant got exactly the quoted price's split, and the buyer
got back exactly what they paid (or its share). The same `realise_postings` closes what
a refund after settlement reopened: X and Y are then negative (the channel took Y of
our P money to pay the buyer b).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from domain.fx.quotes import Quote, QuotedRefund
from domain.ledger import (
    PLATFORM,
    AccountKind,
    PostingLine,
    account_id,
    refund_reserve_postings,
    settlement_postings,
)
from domain.money import currency_exponent, prorate
from domain.split import Split


def _platform(kind: AccountKind, currency: str) -> str:
    return account_id(kind, PLATFORM, currency)


def _lines(*lines: PostingLine) -> list[PostingLine]:
    return [line for line in lines if line.amount != 0]


def _round(value: Fraction) -> int:
    """Half away from zero, the one rule (`domain.fx.conversion`)."""
    return prorate(value.numerator, 1, value.denominator)


@dataclass(frozen=True)
class CurrencyPostings:
    """An FX movement's postings, one balanced list per currency."""

    price: list[PostingLine]
    presentment: list[PostingLine]


def capture_postings(
    channel: str, merchant_id: str, quote: Quote, split: Split
) -> CurrencyPostings:
    """The buyer paid the quoted amount: the split in P is funded by the P position."""
    if split.payable_amount != quote.price_amount:
        raise ValueError(f"the split of {split.payable_amount} is not the quoted price")
    price_currency, presentment = quote.price_currency, quote.presentment_currency
    clearing = account_id(AccountKind.CHANNEL_CLEARING, channel, price_currency)
    split_lines = [
        line
        for line in settlement_postings(channel, merchant_id, price_currency, split)
        if line.account != clearing
    ]
    price = _lines(
        PostingLine(_platform(AccountKind.FX_POSITION, price_currency), quote.price_amount),
        *split_lines,
    )
    mid_part = quote.presentment_amount - quote.markup_revenue
    presentment_lines = _lines(
        PostingLine(
            account_id(AccountKind.CHANNEL_CLEARING, channel, presentment),
            quote.presentment_amount,
        ),
        PostingLine(_platform(AccountKind.FX_MARKUP_REVENUE, presentment), -quote.markup_revenue),
        PostingLine(_platform(AccountKind.FX_POSITION, presentment), -mid_part),
    )
    return CurrencyPostings(price, presentment_lines)


def refund_postings(
    channel: str,
    merchant_id: str,
    quote: Quote,
    parts: Split,
    returned: QuotedRefund,
    *,
    released: bool,
) -> CurrencyPostings:
    """A refund is asked: its parts leave their holders in P, the buyer's money waits in B."""
    price_currency, presentment = quote.price_currency, quote.presentment_currency
    in_flight = account_id(AccountKind.REFUNDS_IN_FLIGHT, channel, price_currency)
    part_lines = [
        line
        for line in refund_reserve_postings(
            channel, merchant_id, price_currency, parts, released=released
        )
        if line.account != in_flight
    ]
    price = _lines(
        *part_lines,
        PostingLine(_platform(AccountKind.FX_POSITION, price_currency), -parts.payable_amount),
    )
    presentment_lines = _lines(
        PostingLine(
            _platform(AccountKind.FX_POSITION, presentment),
            returned.presentment_amount - returned.markup_returned,
        ),
        PostingLine(
            _platform(AccountKind.FX_MARKUP_REVENUE, presentment), returned.markup_returned
        ),
        PostingLine(
            account_id(AccountKind.REFUNDS_IN_FLIGHT, channel, presentment),
            -returned.presentment_amount,
        ),
    )
    return CurrencyPostings(price, presentment_lines)


def residual_in_price_units(quote: Quote, residual: Fraction) -> Fraction:
    """A presentment residual valued in price minor units at the quote's mid rate."""
    shift = currency_exponent(quote.presentment_currency) - currency_exponent(quote.price_currency)
    return residual / (Fraction(quote.mid_rate.value) * Fraction(10) ** shift)


@dataclass(frozen=True)
class OpenPosition:
    """What one order still holds in the FX accounts (debit-positive balances of its own
    postings), and the rounding it owes, before a realisation."""

    presentment_currency: str
    price_currency: str
    position_presentment: int
    markup_presentment: int
    position_price: int
    residual_price: Fraction
    """The platform's exact rounding result of all the order's conversions so far (gain
    positive), in price minor units."""
    rounding_posted: int
    """What earlier realisations already moved to FX rounding (credit-positive)."""

    @property
    def presentment_open(self) -> int:
        """The B money the channel still has to convert: positive after a payment."""
        return -(self.position_presentment + self.markup_presentment)


@dataclass(frozen=True)
class Realisation:
    presentment_amount: int  # X: converted by the channel (negative: bought back)
    settled_amount: int  # Y: what the channel delivered in P (negative: took)
    markup_amount: int  # the markup's share of Y, now P revenue
    rounding_amount: int  # credit to FX rounding (gain +)
    gain_loss_amount: int  # credit to FX gain/loss (gain +)
    postings: CurrencyPostings


def realise_postings(channel: str, open_: OpenPosition, settled_amount: int) -> Realisation:
    """The channel converted the order's open B money into `settled_amount` of P: flatten
    both positions, move the markup into P, and book what is left as rounding and gain."""
    presentment_open = open_.presentment_open
    if presentment_open == 0:
        raise ValueError("nothing open to realise")
    if settled_amount == 0 or (settled_amount > 0) != (presentment_open > 0):
        raise ValueError(f"{settled_amount} cannot settle {presentment_open}")
    markup_share = Fraction(settled_amount * -open_.markup_presentment, presentment_open)
    markup_amount = _round(markup_share)
    realised = settled_amount - markup_amount - open_.position_price
    rounding_amount = _round(open_.residual_price) - open_.rounding_posted
    gain_loss_amount = realised - rounding_amount
    price_currency, presentment = open_.price_currency, open_.presentment_currency
    price = _lines(
        PostingLine(
            account_id(AccountKind.CHANNEL_CLEARING, channel, price_currency), settled_amount
        ),
        PostingLine(_platform(AccountKind.FX_POSITION, price_currency), -open_.position_price),
        PostingLine(_platform(AccountKind.FX_MARKUP_REVENUE, price_currency), -markup_amount),
        PostingLine(_platform(AccountKind.FX_ROUNDING, price_currency), -rounding_amount),
        PostingLine(_platform(AccountKind.FX_GAIN_LOSS, price_currency), -gain_loss_amount),
    )
    presentment_lines = _lines(
        PostingLine(
            account_id(AccountKind.CHANNEL_CLEARING, channel, presentment), -presentment_open
        ),
        PostingLine(_platform(AccountKind.FX_POSITION, presentment), -open_.position_presentment),
        PostingLine(
            _platform(AccountKind.FX_MARKUP_REVENUE, presentment), -open_.markup_presentment
        ),
    )
    return Realisation(
        presentment_amount=presentment_open,
        settled_amount=settled_amount,
        markup_amount=markup_amount,
        rounding_amount=rounding_amount,
        gain_loss_amount=gain_loss_amount,
        postings=CurrencyPostings(price, presentment_lines),
    )


def close_postings(open_: OpenPosition) -> list[PostingLine]:
    """The P position left when the buyer's money is all given back or in flight, and
    none of it converted since: the price units the buyer's currency could not express
    (refunding all but two fen gives back every cent). Nothing else will ever move it, so
    it is FX rounding now; empty when the buyer's side is open or the P side is flat."""
    if open_.presentment_open != 0 or open_.position_price == 0:
        return []
    price_currency = open_.price_currency
    return [
        PostingLine(_platform(AccountKind.FX_POSITION, price_currency), -open_.position_price),
        PostingLine(_platform(AccountKind.FX_ROUNDING, price_currency), open_.position_price),
    ]
