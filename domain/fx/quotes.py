"""Quotes: the locked price a buyer pays in their own (presentment) currency.

An order priced in one currency and paid in another gets a quote. From the mid rate
(price → presentment) and the merchant's markup in basis points:

    customer_rate         = mid * (1 + markup_bps / 10 000), exactly
    presentment_amount    = price_amount converted at customer_rate   (what the buyer pays)
    mid_presentment       = price_amount converted at mid
    markup_revenue        = presentment_amount - mid_presentment       (platform revenue)

Both conversions round by the one rule of `domain.fx.conversion`. The markup raises the
number of presentment units the buyer pays per price unit, so it always favours the
platform and `markup_revenue >= 0`; by construction the buyer pays exactly
mid_presentment + markup_revenue. What the mid conversion rounded away
(`mid_residual`) belongs to the FX rounding account.

A quote is on offer in [created_at, expires_at). The order must pay exactly
`presentment_amount`; after expiry the integration re-quotes, or closes and refunds
what arrived late.

Refunds of a quoted order give back the buyer's own money at the quoted rate, never at
today's: refunding k of the price's n minor units returns the running-total share
round_half_up(presentment_amount * refunded_so_far / n) minus what earlier refunds
returned. Successive partial refunds therefore never add up to more than was paid and
the last one takes the remainder; the markup is returned in the same proportion. The
rate difference since payment is the FX position's (realised gain/loss at settlement),
not the merchant's or the buyer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from domain.errors import InvalidOrder
from domain.fx.conversion import convert, exact_converted
from domain.fx.errors import QuotedRefundRefused, QuoteExpired
from domain.fx.rates import EXACT, Rate, require_minor_units
from domain.money import MAX_ORDER_TOTAL, prorate

DEFAULT_QUOTE_TTL: Final = timedelta(minutes=15)
"""How long a quote is on offer unless the caller's settings say otherwise; the same as
the default payment window, so a buyer who pays in time pays the quoted price."""

MAX_MARKUP_BPS: Final = 1_000
"""10%: card networks' dynamic currency conversion markups sit between 2% and 7%; more
than this is a configuration mistake, not a price."""


@dataclass(frozen=True)
class Quote:
    """A locked conversion of an order's price into the buyer's presentment currency."""

    quote_id: str
    price_amount: int
    price_currency: str
    presentment_currency: str
    mid_rate: Rate
    markup_bps: int
    customer_rate: Decimal
    presentment_amount: int
    mid_presentment_amount: int
    markup_revenue: int
    mid_residual: Decimal
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class QuotedRefund:
    """What one refund of a quoted order returns, in presentment minor units."""

    presentment_amount: int
    markup_returned: int
    """Taken back from FX markup revenue; the rest of the refund leaves the FX position."""
    residual: Decimal
    """This refund's rounding difference for the FX rounding account, in presentment minor
    units: the exact mid value of the refunded price units minus the mid part returned
    (presentment_amount - markup_returned). Positive is the platform's gain. Refunds that
    cover the whole price add up to the quote's `mid_residual`, which the payment cost the
    platform: a fully refunded order leaves nothing in the FX rounding account."""


def customer_rate_for(mid: Decimal, markup_bps: int) -> Decimal:
    """mid * (10 000 + markup_bps) / 10 000, exactly (dividing by 10^4 is a shift)."""
    return EXACT.multiply(mid, Decimal(10_000 + markup_bps)).scaleb(-4, EXACT)


def make_quote(
    quote_id: str,
    price_amount: int,
    mid_rate: Rate,
    markup_bps: int,
    now: datetime,
    ttl: timedelta = DEFAULT_QUOTE_TTL,
) -> Quote:
    """Quote `price_amount` (in `mid_rate.base`) in `mid_rate.quote` at `now`."""
    require_minor_units(price_amount, "price_amount")
    require_minor_units(markup_bps, "markup_bps")
    if not quote_id:
        raise ValueError("a quote needs an id derived from its order")
    if not 0 < price_amount <= MAX_ORDER_TOTAL:
        raise InvalidOrder(
            "invalid_amount", f"a quoted amount must be 1..{MAX_ORDER_TOTAL}", "amount"
        )
    if not 0 <= markup_bps <= MAX_MARKUP_BPS:
        raise InvalidOrder(
            "invalid_markup", f"markup must be 0..{MAX_MARKUP_BPS} basis points", "markup_bps"
        )
    if ttl <= timedelta(0):
        raise ValueError(f"a quote's time to live must be positive, got {ttl}")
    base, quote = mid_rate.base, mid_rate.quote
    customer_rate = customer_rate_for(mid_rate.value, markup_bps)
    at_mid = convert(price_amount, base, quote, mid_rate.value)
    charged = convert(price_amount, base, quote, customer_rate)
    if at_mid.target_amount == 0:
        # Nothing to charge at the market rate: a buyer would pay only markup, or nothing.
        raise InvalidOrder(
            "amount_too_small",
            f"{price_amount} {base} minor units are worth less than one {quote} minor unit",
            "amount",
        )
    return Quote(
        quote_id=quote_id,
        price_amount=price_amount,
        price_currency=base,
        presentment_currency=quote,
        mid_rate=mid_rate,
        markup_bps=markup_bps,
        customer_rate=customer_rate,
        presentment_amount=charged.target_amount,
        mid_presentment_amount=at_mid.target_amount,
        markup_revenue=charged.target_amount - at_mid.target_amount,
        mid_residual=at_mid.residual,
        created_at=now,
        expires_at=now + ttl,
    )


def is_quote_valid(quote: Quote, at: datetime) -> bool:
    """Whether the quoted price is on offer at `at`."""
    return quote.created_at <= at < quote.expires_at


def require_valid_quote(quote: Quote, at: datetime) -> Quote:
    """`quote` if it is on offer at `at`, else `QuoteExpired`."""
    if not is_quote_valid(quote, at):
        raise QuoteExpired(
            "quote_expired",
            f"quote {quote.quote_id} is on offer from {quote.created_at.isoformat()} "
            f"until {quote.expires_at.isoformat()}, not at {at.isoformat()}",
            "quote_id",
        )
    return quote


@dataclass(frozen=True)
class ReturnedSoFar:
    """What the order's live refunds (asked or done, not failed) already give back."""

    presentment_amount: int
    markup_returned: int


def refund_quoted(
    quote: Quote,
    already_refunded: int,
    refund_amount: int,
    returned: ReturnedSoFar | None = None,
) -> QuotedRefund:
    """The presentment money returned by refunding `refund_amount` price minor units after
    `already_refunded` price minor units were refunded before, which gave back `returned`
    (by default exactly their share).

    Each refund returns the share of the price refunded after it less what the live
    refunds already give back, so refunds that together cover the whole price return
    exactly `presentment_amount` and `markup_revenue`, whatever the steps, even when one
    of them failed while a later one was already asked (their shares then no longer add
    up). Never less than nothing: a refund whose share is already given back returns 0,
    which the caller refuses as too small.
    """
    require_minor_units(already_refunded, "already_refunded")
    require_minor_units(refund_amount, "refund_amount")
    if already_refunded < 0 or refund_amount <= 0:
        raise ValueError("refunded amounts are counted in positive minor units")
    refunded_after = already_refunded + refund_amount
    if refunded_after > quote.price_amount:
        raise QuotedRefundRefused(
            "refund_exceeds_payment",
            f"{refund_amount} more would refund {refunded_after} of {quote.price_amount}",
            "amount",
        )
    if returned is None:
        before = _presentment_share(quote, already_refunded)
        returned = ReturnedSoFar(before, _markup_share(quote, before))
    presentment_after = _presentment_share(quote, refunded_after)
    presentment_amount = max(0, presentment_after - returned.presentment_amount)
    markup_after = _markup_share(quote, returned.presentment_amount + presentment_amount)
    markup_returned = min(max(0, markup_after - returned.markup_returned), presentment_amount)
    exact_at_mid = exact_converted(
        refund_amount, quote.price_currency, quote.presentment_currency, quote.mid_rate.value
    )
    return QuotedRefund(
        presentment_amount=presentment_amount,
        markup_returned=markup_returned,
        residual=EXACT.subtract(exact_at_mid, Decimal(presentment_amount - markup_returned)),
    )


def _presentment_share(quote: Quote, refunded: int) -> int:
    return prorate(quote.presentment_amount, refunded, quote.price_amount)


def _markup_share(quote: Quote, presentment_refunded: int) -> int:
    # In proportion to the presentment money returned, not to the price units: a step of
    # one presentment unit then moves the markup share by 0 or 1, so neither the markup
    # part nor the rest of any refund can be negative.
    return prorate(quote.markup_revenue, presentment_refunded, quote.presentment_amount)
