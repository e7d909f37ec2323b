"""Whether an order may be modified, or have its payment method chosen, now.

Both change what the buyer is asked to pay, so both are taken only while the saga
waits for the buyer: not once a payment was taken, nor while the order is being
cancelled or is ending unpaid. A refusal is what the update fails with (its type is
a `domain.failures` name); nothing has changed when it is given.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from domain.failures import ORDER_INVALID, ORDER_NOT_MODIFIABLE
from domain.keys import MAX_PAYMENT_ATTEMPTS
from domain.order_status import OrderStatus


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True)

    message: str
    error_type: str = ORDER_NOT_MODIFIABLE
    details: tuple[str, ...] = ()  # (code, param) for the API's error, when it has them


class PaymentStanding(BaseModel):
    """Where an order stands towards its payment, as its saga knows it."""

    model_config = ConfigDict(frozen=True)

    status: OrderStatus
    paid: bool
    cancelling: bool
    awaiting_payment: bool  # the saga's wait takes modifications and choices
    channel: str  # "" until the buyer chooses a method
    payment_attempt: int


# The answer to an update the saga had taken but not applied when the wait ended.
NO_LONGER_AWAITS_PAYMENT = Refusal(message="the order no longer awaits payment")


def modification_refusal(order: PaymentStanding) -> Refusal | None:
    """Why the order's lines cannot be changed now; None when they can."""
    state = None
    if order.paid:
        state = "paid"
    elif order.cancelling:
        state = "being cancelled"
    elif not order.awaiting_payment:  # not yet waiting for the buyer, or ending unpaid
        waiting = order.status == OrderStatus.AWAITING_PAYMENT
        state = "closing" if waiting else order.status.value
    if state is not None:
        message = f"the order is {state}; only an order awaiting payment can be modified"
        return Refusal(message=message)
    if not order.channel:
        return Refusal(message="choose a payment method first; then the order can be modified")
    if order.payment_attempt >= MAX_PAYMENT_ATTEMPTS:
        message = f"an order can be modified at most {MAX_PAYMENT_ATTEMPTS - 1} times"
        return Refusal(message=message)
    return None


def choice_refusal(
    order: PaymentStanding, channel: str, currency: str, *, known: bool, takes_currency: bool
) -> Refusal | None:
    """Why the buyer cannot choose `channel` now (`known`: we have such a channel;
    `takes_currency`: it takes the order's currency); None when they can."""
    if order.paid or order.cancelling or not order.awaiting_payment:
        message = "the order no longer awaits payment; no method can be chosen"
        return Refusal(message=message)
    if not known:
        return Refusal(
            message=f"no channel {channel}",
            error_type=ORDER_INVALID,
            details=("channel", "channel"),
        )
    if not takes_currency:
        return Refusal(
            message=f"{channel} does not take {currency}",
            error_type=ORDER_INVALID,
            details=("currency_not_supported", "channel"),
        )
    if channel != order.channel and order.payment_attempt >= MAX_PAYMENT_ATTEMPTS:
        return Refusal(message=f"an order can open at most {MAX_PAYMENT_ATTEMPTS} payments")
    return None
