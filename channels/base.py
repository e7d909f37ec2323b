"""The one interface every payment channel adapter implements.

A channel is reached through six flows, each a method here: create a payment,
query it, close it, refund it, query a refund, and verify + parse an incoming
notification. Adapters map between these models and the channel's own wire
protocol; nothing outside `channels/` sees a wire format.

Amounts are always integers in the currency's minor unit.

Cross-border (issue 17). A payment's `amount`/`currency` are always the price, in the
order's currency. Alipay and WeChat Pay take foreign price currencies through their
cross-border fields: the Chinese buyer pays CNY, converted at the channel's own rate, and
the channel settles to us in the price currency. What the channel then reports rides on
`PaymentState`, `RefundState` and `Notification` as optional facts, None when the buyer
paid in the price currency itself (every domestic CNY payment, every card payment):

    payer_amount, payer_currency   what the buyer paid (minor units of payer_currency)
    channel_rate                   the rate the channel applied, payer units per one price
                                   unit (major units: 1 HKD = 0.92 CNY is Decimal("0.92")),
                                   i.e. `domain.fx.Rate(price, payer, channel_rate)`
    settle_currency, settle_amount what the channel settles to us, if it says

The card gateway takes presentment currencies: the buyer pays the order's currency as it
is (quoting it in the buyer's currency is the order's business, not the channel's).

The platform is the channel's merchant (one Alipay app, one WeChat Pay mchid,
one card gateway account); the shop a payment is for travels in the channel's
pass-back field (Alipay `passback_params`, WeChat Pay `attach`, card
`metadata`). A channel that does not echo it in an answer reports
`merchant_id=None` there, and the saga checks the amount and currency alone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Final, Protocol

from pydantic import BaseModel, ConfigDict

from domain.money import CURRENCY_EXPONENTS


class ChannelName(enum.StrEnum):
    ALIPAY = "alipay"
    WECHATPAY = "wechatpay"
    CARD = "card"


PAYER_CURRENCY: Final = "CNY"
"""What a wallet's buyer pays in: Alipay and WeChat Pay buyers hold CNY."""

WALLET_CROSS_BORDER_CURRENCIES: Final = frozenset(
    {"HKD", "USD", "EUR", "GBP", "JPY", "SGD", "AUD", "CAD", "CHF", "KRW"}
)
"""Foreign price currencies Alipay (`trans_currency`) and WeChat Pay (`amount.currency`)
take, of those we hold in the books: both channels' published cross-border lists (GBP,
HKD, USD, JPY, CAD, AUD, EUR, NZD, KRW, THB, SGD, CHF, ...) cut to
`domain.money.CURRENCY_EXPONENTS`. KWD and BHD (three decimals) are on neither list."""

_ACCEPTED: Final[dict[ChannelName, frozenset[str]]] = {
    ChannelName.ALIPAY: WALLET_CROSS_BORDER_CURRENCIES | {PAYER_CURRENCY},
    ChannelName.WECHATPAY: WALLET_CROSS_BORDER_CURRENCIES | {PAYER_CURRENCY},
    ChannelName.CARD: frozenset(CURRENCY_EXPONENTS),  # presentment in any currency we hold
}


def accepted_currencies(channel: ChannelName) -> frozenset[str]:
    """The price currencies `channel` takes (what a checkout may offer it for)."""
    return _ACCEPTED[channel]


def supports_currency(channel: ChannelName, currency: str) -> bool:
    """Whether `channel` takes a price in `currency`."""
    return currency in _ACCEPTED[channel]


def takes_buyer_currency(channel: ChannelName, currency: str) -> bool:
    """Whether a buyer can pay in `currency` on `channel` (a quoted order's presentment
    currency): the card charges any currency we hold; a wallet's buyer holds CNY only (a
    wallet takes foreign *prices*, but its buyer still pays CNY at the wallet's rate)."""
    if channel is ChannelName.CARD:
        return currency in _ACCEPTED[channel]
    return currency == PAYER_CURRENCY


def takes_order(
    channel: ChannelName, price_currency: str, presentment_currency: str | None
) -> bool:
    """Whether `channel` can collect an order: its buyer's currency when the order is quoted
    in one (`presentment_currency`), else its price currency."""
    if presentment_currency is None or presentment_currency == price_currency:
        return supports_currency(channel, price_currency)
    return takes_buyer_currency(channel, presentment_currency)


def is_cross_border(channel: ChannelName, currency: str) -> bool:
    """Whether the buyer of a price in `currency` pays in another currency on `channel`."""
    return channel is not ChannelName.CARD and currency != PAYER_CURRENCY


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # created, the buyer has not paid yet
    PAID = "paid"
    DECLINED = "declined"  # the buyer's attempt failed for good
    CLOSED = "closed"  # closed before payment; can no longer be paid


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class NotificationKind(enum.StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_DECLINED = "payment.declined"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class CreatePaymentRequest(_Model):
    order_id: str  # our id; the channel's out_trade_no, which makes create idempotent
    merchant_id: str
    amount: int
    currency: str
    description: str
    notify_url: str
    return_url: str | None = None  # where the channel's page sends the buyer back


class CreatedPayment(_Model):
    channel_payment_id: str
    checkout_url: str
    qr_payload: str | None = None  # wallet channels only


class CrossBorderFacts(_Model):
    """What a channel that converted reports (see the module's docstring); all None else."""

    payer_amount: int | None = None
    payer_currency: str | None = None
    channel_rate: Decimal | None = None  # payer units per one price unit
    settle_currency: str | None = None
    settle_amount: int | None = None


class PaymentState(CrossBorderFacts):
    order_id: str
    channel_payment_id: str
    status: PaymentStatus
    amount: int
    currency: str
    merchant_id: str | None  # None when the channel's answer does not carry it
    channel_txn_id: str | None = None  # set once paid


class CloseResult(_Model):
    """The outcome of a close: either closed, or the state that prevented it."""

    closed: bool
    payment: PaymentState


class RefundRequest(_Model):
    refund_id: str  # our id; the channel's out_refund_no, which makes refund idempotent
    order_id: str
    amount: int
    currency: str
    reason: str


class RefundState(CrossBorderFacts):
    """`amount`/`currency` are the price currency's; a wallet that converted reports the
    CNY it gave back (`payer_amount`) at its rate of the refund's day (`channel_rate`)."""

    refund_id: str
    order_id: str
    status: RefundStatus
    amount: int
    currency: str
    failure_reason: str | None = None


class Notification(CrossBorderFacts):
    """A verified notification, parsed into our terms."""

    notification_id: str  # the channel's id for this message (same on every retry)
    kind: NotificationKind
    order_id: str
    channel_payment_id: str
    channel_txn_id: str | None
    amount: int
    currency: str
    merchant_id: str | None
    refund_id: str | None = None
    # When the buyer paid, by the channel's clock (a payment's notification, if it says).
    paid_at: datetime | None = None


class Acknowledgement(_Model):
    """What the channel expects back once we have safely taken a notification."""

    status_code: int
    body: str
    media_type: str


class ChannelAdapter(Protocol):
    """One channel. Methods raise `channels.errors.ChannelError` subclasses."""

    name: ChannelName

    async def create_payment(self, request: CreatePaymentRequest) -> CreatedPayment: ...

    async def query_payment(self, order_id: str) -> PaymentState: ...

    async def close_payment(self, order_id: str) -> CloseResult: ...

    async def refund(self, request: RefundRequest) -> RefundState: ...

    async def query_refund(self, refund_id: str, order_id: str) -> RefundState:
        """A refund by our id; `order_id` is its payment's (Alipay needs both)."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification | None:
        """Verify the signature over the raw body, then parse it.

        Returns None for a genuine message that asks nothing of us (Alipay's
        `WAIT_BUYER_PAY`, say); it is acknowledged and dropped. Raises
        `NotificationSignatureError` for a bad, missing or stale signature,
        `NotificationFormatError` for a body that cannot be read, and
        `NotificationMismatch` for one that is not about our account.
        """
        ...

    def acknowledgement(self) -> Acknowledgement:
        """The answer that tells the channel we have taken the message."""
        ...

    def rejection(self, status_code: int, error: Mapping[str, object]) -> Acknowledgement:
        """The answer that tells the channel we have not, so that it sends again; `error`
        is our JSON error body, which the answer carries in the channel's shape."""
        ...
