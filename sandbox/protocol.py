"""The sandbox core's channel-neutral models; the bank's wire protocol is ours.

Each channel's front (`alipay_front`, `wechatpay_front`, `card_front`) turns its
channel's protocol into these and back. The bank API takes and returns the models of
`channels.bank_wire` as they are, the same ones `channels.bank` parses, so the two
cannot drift apart; they are named here too for the sandbox's modules.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from channels.bank_wire import (
    Amount,
    Currency,
    ErrorBody,
    ErrorDetail,
    Key,
    Payout,
    PayoutCreate,
    PayoutEvent,
    PayoutEventType,
    PayoutStatus,
)

__all__ = [
    "Amount",
    "Currency",
    "ErrorBody",
    "ErrorDetail",
    "Key",
    "Payout",
    "PayoutCreate",
    "PayoutEvent",
    "PayoutEventType",
    "PayoutStatus",
]

PaymentStatus = Literal["pending", "paid", "declined", "closed"]
RefundStatus = Literal["pending", "succeeded", "failed"]
EventType = Literal["payment.succeeded", "payment.declined", "refund.succeeded", "refund.failed"]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class PaymentCreate(_Wire):
    out_trade_no: Key
    merchant_id: Key
    amount: Amount
    currency: Currency
    description: str = Field(default="", max_length=256)
    notify_url: str = Field(pattern=r"^https?://", max_length=2048)


class Payment(_Wire):
    payment_id: str
    out_trade_no: str
    merchant_id: str
    amount: int
    currency: str
    status: PaymentStatus
    txn_id: str | None
    checkout_url: str
    qr_payload: str | None
    payer_amount: int | None = None  # cross-border: the buyer's CNY,
    payer_currency: str | None = None
    channel_rate: str | None = None  # at the channel's rate (CNY per price unit)


class CloseResponse(_Wire):
    closed: bool
    payment: Payment


class RefundCreate(_Wire):
    refund_id: Key
    out_trade_no: Key
    amount: Amount
    currency: Currency
    reason: str = Field(default="", max_length=256)


class Refund(_Wire):
    refund_id: str
    out_trade_no: str
    amount: int
    currency: str
    status: RefundStatus
    failure_reason: str | None
    payer_amount: int | None = None  # cross-border: the CNY given back,
    payer_currency: str | None = None
    channel_rate: str | None = None  # at the channel's rate when the refund was made


class EventData(_Wire):
    """The object an event is about. For refund events `amount`, `currency`
    and `status` are the refund's, and `refund_id` is set."""

    payment_id: str
    out_trade_no: str
    merchant_id: str
    amount: int
    currency: str
    txn_id: str | None
    status: str
    refund_id: str | None = None
    payment_amount: int | None = None  # refund events: the payment's own amount
    # Cross-border: the payment's (or the refund's) CNY and the channel's rate for it.
    payer_amount: int | None = None
    payer_currency: str | None = None
    channel_rate: str | None = None
    payment_payer_amount: int | None = None  # refund events: the payment's own CNY


class Event(_Wire):
    """A notification body. `id` stays the same on every delivery attempt."""

    id: str
    type: EventType
    created: int
    data: EventData


class PaymentFacts(Protocol):
    """What a core `PaymentRecord`, its `Payment` view and a payment event's `EventData`
    all carry: enough for a channel's front to show the payment in its own terms."""

    @property
    def payment_id(self) -> str: ...
    @property
    def out_trade_no(self) -> str: ...
    @property
    def merchant_id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def txn_id(self) -> str | None: ...
    @property
    def payer_amount(self) -> int | None: ...
    @property
    def payer_currency(self) -> str | None: ...
    @property
    def channel_rate(self) -> str | None: ...
