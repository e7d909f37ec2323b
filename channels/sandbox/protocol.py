"""The sandbox core's channel-neutral models, and the bank's wire protocol.

Each channel's front (`alipay_front`, `wechatpay_front`, `card_front`) turns its
channel's protocol into these and back; the bank API takes and returns them
as they are, and `channels.bank` parses them, so the two cannot drift apart.

This module imports only pydantic so the adapter does not pull in FastAPI.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

PaymentStatus = Literal["pending", "paid", "declined", "closed"]
RefundStatus = Literal["pending", "succeeded", "failed"]
EventType = Literal["payment.succeeded", "payment.declined", "refund.succeeded", "refund.failed"]
PayoutStatus = Literal["pending", "paid", "failed"]
PayoutEventType = Literal["payout.paid", "payout.failed"]

# Minor units; strict so that "100" or 100.5 is refused rather than coerced.
Amount = Annotated[int, Field(gt=0, strict=True)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Key = Annotated[str, Field(min_length=1, max_length=64)]


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


class PayoutCreate(_Wire):
    """A bank transfer to a merchant; `payout_id` makes creating it idempotent."""

    payout_id: Key
    merchant_id: Key
    amount: Amount
    currency: Currency
    beneficiary: str = Field(min_length=1, max_length=128)  # e.g. a masked account name
    notify_url: str = Field(pattern=r"^https?://", max_length=2048)


class Payout(_Wire):
    payout_id: str
    merchant_id: str
    amount: int
    currency: str
    status: PayoutStatus
    failure_reason: str | None  # set once failed
    bank_reference: str | None  # set once paid


class ErrorDetail(_Wire):
    code: str
    message: str = ""


class ErrorBody(_Wire):
    """Every error answer: `{"error": {"code": ..., "message": ...}}`."""

    error: ErrorDetail


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


class Event(_Wire):
    """A notification body. `id` stays the same on every delivery attempt."""

    id: str
    type: EventType
    created: int
    data: EventData


class PayoutEvent(_Wire):
    """A payout notification body: like `Event`, but `data` is the payout itself."""

    id: str
    type: PayoutEventType
    created: int
    data: Payout


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
