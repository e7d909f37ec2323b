"""Refund rules: who may ask, for how much, and what a per-line refund is worth.

An order's refunds never exceed what was paid. A per-line refund gives back the
units' share of the line's payable amount (after its coupon discount), rounded
half up on the running total of units refunded, so refunding every unit of a
line, in any number of steps, returns exactly the line's payable amount.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import DomainError
from domain.money import prorate
from domain.order_status import OrderStatus
from domain.polling import PollTimings


class Requester(enum.StrEnum):
    BUYER = "buyer"
    MERCHANT = "merchant"
    OPERATOR = "operator"


class RefundStatus(enum.StrEnum):
    PENDING = "pending"  # asked of the channel; the parts wait in refunds in flight
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # refused by the channel; the money is back where it was
    REJECTED = "rejected"  # refused by our rules; nothing was asked or moved


# Orders whose money may be refunded: paid, split, and not being compensated.
REFUNDABLE_STATUSES = frozenset({OrderStatus.AWAITING_RECEIPT, OrderStatus.COMPLETED})


class RefundRejected(DomainError):
    """The refund cannot be asked: window closed, too much, unknown line, wrong state."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class LineRefund(_Message):
    line_no: int = Field(ge=0)
    quantity: int = Field(gt=0)


class RefundAsk(_Message):
    """A refund as asked: by amount, or by lines (units of order lines)."""

    refund_id: str
    order_id: str
    requested_by: Requester
    reason: str = ""
    amount: int | None = None
    lines: tuple[LineRefund, ...] = ()
    polling: PollTimings = PollTimings()
    # Set only when the refund's workflow continues as new while the channel has not
    # answered: what the next run carries on waiting with.
    waiting: RefundWait | None = None


def line_refund_amount(
    line_payable: int, line_quantity: int, refunded_units: int, units: int
) -> int:
    """What `units` more units of a line are worth, after `refunded_units` already were."""
    if refunded_units + units > line_quantity:
        raise RefundRejected(
            "quantity_exceeds_refundable",
            f"only {line_quantity - refunded_units} unit(s) of this line are left to refund",
            "lines",
        )
    total_after = prorate(line_payable, refunded_units + units, line_quantity)
    return total_after - prorate(line_payable, refunded_units, line_quantity)


def check_window(requester: Requester, paid_at: datetime, now: datetime, window: timedelta) -> None:
    """Buyers may ask within the refund window after payment; merchants and operators always."""
    if requester == Requester.BUYER and now - paid_at > window:
        raise RefundRejected(
            "refund_window_closed",
            f"buyers may ask for a refund within {window.days} day(s) of payment",
            "requested_by",
        )


def check_amount(amount: int, refundable: int) -> None:
    if amount <= 0:
        raise RefundRejected("amount_invalid", "a refund must be more than zero", "amount")
    if amount > refundable:
        raise RefundRejected(
            "amount_exceeds_refundable",
            f"at most {refundable} is left to refund on this order",
            "amount",
        )


class RefundTicket(_Message):
    """An accepted refund, as the channel is to be asked for it."""

    refund_id: str
    order_id: str
    channel: str
    channel_txn_id: str | None
    amount: int
    currency: str
    reason: str
    payment_reference: str | None = None  # the payment's out_trade_no if not the order id


class RefundNotice(_Message):
    """The channel's word on a refund, from its notification."""

    refund_id: str
    succeeded: bool
    failure_reason: str | None = None


class RefundFailure(_Message):
    refund_id: str
    reason: str


class RefundAcceptance(_Message):
    """The API's update after start: answer once the refund is accepted or rejected."""


class RefundView(_Message):
    """The refund workflow's state, as its query and updates report it."""

    refund_id: str
    order_id: str
    status: RefundStatus | None = None  # None until the rules have judged the ask
    amount: int | None = None
    currency: str | None = None
    failure_reason: str | None = None
    rejection_code: str | None = None
    rejection_param: str | None = None


class RefundWait(_Message):
    """A refund still pending at the channel, carried into the workflow's next run."""

    ticket: RefundTicket
    next_check_ms: int  # the interval the next query comes after
    notices: tuple[RefundNotice, ...] = ()  # channel notifications not yet judged


RefundAsk.model_rebuild()
