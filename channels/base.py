"""The one interface every payment channel adapter implements.

A channel is reached through six flows, each a method here: create a payment,
query it, close it, refund it, query a refund, and verify + parse an incoming
notification. Adapters map between these models and the channel's own wire
protocol; nothing outside `channels/` sees a wire format.

Amounts are always integers in the currency's minor unit.

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
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class ChannelName(enum.StrEnum):
    ALIPAY = "alipay"
    WECHATPAY = "wechatpay"
    CARD = "card"


# Alipay and WeChat Pay (domestic) settle in CNY only; the card gateway takes any currency.
_CURRENCIES: dict[ChannelName, frozenset[str] | None] = {
    ChannelName.ALIPAY: frozenset({"CNY"}),
    ChannelName.WECHATPAY: frozenset({"CNY"}),
    ChannelName.CARD: None,
}


def supports_currency(channel: ChannelName, currency: str) -> bool:
    accepted = _CURRENCIES[channel]
    return accepted is None or currency in accepted


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


class PaymentState(_Model):
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


class RefundState(_Model):
    refund_id: str
    order_id: str
    status: RefundStatus
    amount: int
    currency: str
    failure_reason: str | None = None


class Notification(_Model):
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
