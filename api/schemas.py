"""API models: what callers send and what they get back (separate from the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from api.rates import DecimalString
from api.text import PlainText, ProseText
from channels.base import ChannelName
from domain.money import MAX_LINE_QUANTITY, MAX_ORDER_LINES, MAX_ORDER_TOTAL
from domain.pricing import CouponKind
from settings import MAX_ORDER_SECONDS

_Forbid = ConfigDict(extra="forbid")


class LineIn(BaseModel):
    model_config = _Forbid
    sku: Annotated[PlainText, Field(max_length=64)]
    name: Annotated[PlainText, Field(max_length=200)]
    quantity: StrictInt
    unit_amount: StrictInt


_PAYMENT_WINDOW = (
    "How long the buyer has to pay. Default and bounds are the platform's "
    "(15 minutes; 60 s to 24 h unless the operator set others): outside them, 400 "
    "`payment_timeout_too_short` or `payment_timeout_too_long`."
)
_HOLD = (
    "The buyer-protection hold: a paid order completes (its merchant share becomes "
    "available) when the buyer confirms receipt or after this long. A merchant may ask "
    "for a longer hold than the platform's default, never a shorter one than its minimum "
    "(7 days unless the operator set another): 400 `auto_complete_too_short`."
)


_CHANNEL = (
    "The payment channel. Leave it out to let the buyer choose on our hosted checkout "
    "(`checkout_url` of the answer): nothing is asked of a channel before the choice."
)
_RETURN_URL = (
    "Where the hosted checkout sends the buyer back (a link on its receipt): http(s) "
    "only, https outside development; otherwise 400 `return_url_invalid`."
)
_PRESENTMENT = (
    "The buyer's currency when it is not the price's: the order gets a quote (our mid "
    "rate plus the merchant's markup, locked for the payment window) and is paid exactly "
    "its amount. 400 `presentment_currency_not_supported` (the channel does not take it), "
    "`channel_required` (cross-border orders name their channel), `rate_unavailable`."
)
_BUYER_COUNTRY = (
    "The buyer's country (ISO 3166 alpha-2), checked against the merchant's allowed "
    "countries: 400 `buyer_country_not_allowed`."
)


class OrderCreate(BaseModel):
    model_config = _Forbid
    merchant_id: Annotated[PlainText, Field(max_length=64)]
    channel: Annotated[ChannelName | None, Field(description=_CHANNEL)] = None
    currency: Annotated[StrictStr, Field(min_length=3, max_length=3)]
    lines: list[LineIn]
    coupon_code: Annotated[PlainText, Field(max_length=64)] | None = None
    description: Annotated[PlainText, Field(max_length=200)] = ""
    buyer_ref: Annotated[PlainText, Field(max_length=100)] | None = None
    # Both are checked against the platform's bounds (settings) when the order is placed.
    payment_timeout_seconds: (
        Annotated[StrictInt, Field(ge=1, le=MAX_ORDER_SECONDS, description=_PAYMENT_WINDOW)] | None
    ) = None
    auto_complete_seconds: (
        Annotated[StrictInt, Field(ge=0, le=MAX_ORDER_SECONDS, description=_HOLD)] | None
    ) = None
    return_url: Annotated[StrictStr, Field(max_length=2000, description=_RETURN_URL)] | None = None
    # Cross-border: the buyer pays in this currency a quoted amount (see `quote`).
    presentment_currency: (
        Annotated[StrictStr, Field(min_length=3, max_length=3, description=_PRESENTMENT)] | None
    ) = None
    buyer_country: (
        Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$", description=_BUYER_COUNTRY)] | None
    ) = None


class OrderModify(BaseModel):
    """An unpaid order's new lines; the order keeps its coupon, checked again on them."""

    model_config = _Forbid
    lines: list[LineIn]


class CancelIn(BaseModel):
    model_config = _Forbid
    reason: Annotated[PlainText, Field(max_length=100)] = "requested"


class AmountsOut(BaseModel):
    total: int
    discount: int
    payable: int


class LineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_amount: int
    line_total: int
    discount_amount: int
    payable_amount: int


class PaymentOut(BaseModel):
    """One attempt to collect the order's payment at its channel."""

    # The channel's out_trade_no: the order id, then "{order id}-{attempt}" for each
    # payment a modification issued anew.
    reference: str
    attempt: int
    channel: str  # the buyer may switch methods on the hosted checkout: each attempt its own
    # pending | paid | closed (by the channel: timed out, cancelled, or replaced by the
    # next attempt when the order was modified) | declined
    status: str
    channel_payment_id: str | None
    checkout_url: str | None
    qr_payload: str | None
    channel_txn_id: str | None
    amount: int
    # The order's currency, or the buyer's for an order paid at a quote (its `quote`).
    currency: str | None = None
    paid_at: datetime | None
    updated_at: datetime


class PaymentAttempts(BaseModel):
    """Every payment attempt of an order, first to latest (the latest is `payment` on
    the order); an order modified before attempts were kept shows only its last."""

    data: list[PaymentOut]


class SplitOut(BaseModel):
    channel_fee: int
    commission: int
    merchant_net: int


class QuoteOut(BaseModel):
    """The locked price of an order paid in another currency: the buyer pays exactly
    `presentment_amount` of `presentment_currency`; the merchant is settled the price."""

    id: str
    price_amount: int
    price_currency: str
    presentment_amount: int
    presentment_currency: str
    mid_rate: str  # 1 price unit = mid_rate presentment units (exact decimal text)
    customer_rate: str  # mid_rate with the markup: the rate the buyer pays
    markup_bps: int
    markup_amount: int  # presentment minor units, platform revenue
    rate_source: str
    rate_as_of: datetime
    expires_at: datetime


class ChannelConversionOut(BaseModel):
    """What the wallet converted for an order priced in a foreign currency: the Chinese
    buyer paid (`payment`) or was given back (`refund`) `payer_amount` of `payer_currency`
    for `price_amount` of the order's currency, at the channel's `channel_rate` (payer
    units per one price unit, exact decimal text). The channel converted and settles to us
    in the price currency: informational, no FX position of ours."""

    kind: str  # payment | refund
    refund_id: str | None
    channel: str
    price_amount: int
    price_currency: str
    payer_amount: int
    payer_currency: str
    channel_rate: str
    created_at: datetime


class OrderOut(BaseModel):
    id: str
    merchant_id: str
    channel: str | None  # None: the buyer has not chosen on the hosted checkout yet
    currency: str
    status: str
    close_reason: str | None
    needs_review: bool
    review_reason: str | None
    description: str
    buyer_ref: str | None
    coupon_code: str | None
    amounts: AmountsOut
    lines: list[LineOut]
    payment: PaymentOut | None  # the current (latest) attempt; all: GET .../payments
    split: SplitOut | None
    refunded_amount: int  # refunds the channel has confirmed
    refunding_amount: int  # refunds asked and not yet confirmed
    funds_released_at: datetime | None
    created_at: datetime
    return_url: str | None = None
    # Our hosted checkout, where the buyer pays or switches method (its link carries the
    # capability to open it: give it to the buyer only).
    checkout_url: str | None = None
    quote: QuoteOut | None = None  # set when the buyer pays in another currency
    # Set when a wallet converted a foreign price: what the buyer paid and got back in CNY.
    channel_conversions: list[ChannelConversionOut] = []


class OrderPage(BaseModel):
    data: list[OrderOut]
    has_more: bool
    next_cursor: str | None


class CouponCreate(BaseModel):
    """An operator's campaign: the discount, its window, how many orders in all and per buyer."""

    model_config = _Forbid
    code: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    kind: CouponKind
    percent_off: DecimalString | None = Field(
        default=None,
        max_digits=8,
        decimal_places=6,
        description='A fraction of the total as a decimal string ("0.15": 15% off); '
        "a JSON number is refused (400 `invalid_decimal_string`).",
    )
    amount_off: Annotated[StrictInt, Field(gt=0, le=MAX_ORDER_TOTAL)] | None = None
    min_total: Annotated[StrictInt, Field(ge=0, le=MAX_ORDER_TOTAL)] | None = None
    currency: StrictStr | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    max_redemptions: Annotated[StrictInt, Field(ge=1, le=1_000_000_000)] = 1
    per_buyer_limit: Annotated[StrictInt, Field(ge=1, le=1_000_000_000)] | None = None


class CouponOut(BaseModel):
    code: str
    kind: str
    percent_off: str | None
    amount_off: int | None
    min_total: int | None
    currency: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    max_redemptions: int
    per_buyer_limit: int | None
    disabled_at: datetime | None
    redeemed: int  # orders holding it: reserved (awaiting payment) or consumed (paid)
    consumed: int
    remaining: int  # max_redemptions - redeemed, never below zero
    created_at: datetime


class CouponPage(BaseModel):
    data: list[CouponOut]
    has_more: bool
    next_cursor: str | None


class RefundLineIn(BaseModel):
    model_config = _Forbid
    line_no: Annotated[StrictInt, Field(ge=0, le=MAX_ORDER_LINES)]
    quantity: Annotated[StrictInt, Field(gt=0, le=MAX_LINE_QUANTITY)]


class RefundCreate(BaseModel):
    """A refund by amount (minor units) or by lines; exactly one of the two. Who asks
    is the caller (buyer, merchant, operator), never a field."""

    model_config = _Forbid
    amount: Annotated[StrictInt, Field(gt=0, le=MAX_ORDER_TOTAL)] | None = None
    lines: Annotated[list[RefundLineIn], Field(min_length=1, max_length=MAX_ORDER_LINES)] | None = (
        None
    )
    reason: Annotated[PlainText, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _amount_or_lines(self) -> RefundCreate:
        if (self.amount is None) == (self.lines is None):
            raise ValueError("give either amount or lines")
        return self


class RefundPartsOut(BaseModel):
    channel_fee: int
    commission: int
    merchant_net: int


class RefundOut(BaseModel):
    id: str
    order_id: str
    status: str
    amount: int
    currency: str
    reason: str
    requested_by: str
    failure_reason: str | None
    parts: RefundPartsOut
    lines: list[RefundLineIn]
    created_at: datetime
    updated_at: datetime


class ReviewCreate(BaseModel):
    model_config = _Forbid
    rating: Annotated[StrictInt, Field(ge=1, le=5)]
    text: Annotated[ProseText, Field(max_length=2000)] = ""


class ReviewOut(BaseModel):
    order_id: str
    merchant_id: str
    rating: int
    text: str
    created_at: datetime


class ReviewPage(BaseModel):
    data: list[ReviewOut]
    has_more: bool
    next_cursor: str | None
    review_count: int  # all of the merchant's reviews, not only this page's
    average_rating: str | None  # exact mean, rounded half up to 2 places; None: no reviews
