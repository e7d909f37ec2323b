"""The states of an order and which of them are final."""

from __future__ import annotations

import enum


class OrderStatus(enum.StrEnum):
    CREATED = "created"  # recorded, coupon reserved, no payment at the channel yet
    AWAITING_PAYMENT = "awaiting_payment"  # payment created at the channel
    PAID = "paid"  # the channel confirmed the buyer's payment
    SETTLED = "settled"  # split computed and ledger entries posted
    # Buyer and merchant notified; the merchant's share stays pending until the buyer
    # confirms receipt or the auto-completion delay passes.
    AWAITING_RECEIPT = "awaiting_receipt"
    COMPLETED = "completed"  # the merchant's share is available for settlement
    CLOSED = "closed"  # not paid in time, declined, or the channel refused the payment
    CANCELLED = "cancelled"  # cancelled before payment
    REFUNDING = "refunding"  # compensation under way after a failure past payment
    REFUNDED = "refunded"  # compensated: buyer refunded, entries reversed
    COMPENSATION_FAILED = "compensation_failed"  # ops must act; the workflow waits for them
    REJECTED = "rejected"  # refused at recording (e.g. the coupon was taken meanwhile)


FINAL_STATUSES = frozenset(
    {
        OrderStatus.COMPLETED,
        OrderStatus.CLOSED,
        OrderStatus.CANCELLED,
        OrderStatus.REFUNDED,
        OrderStatus.REJECTED,
    }
)

# The buyer has paid, as the buyer's pages show it: the channel confirmed the payment,
# whatever the saga has done with it since (split, notices, release).
PAID_STATUSES = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.SETTLED,
        OrderStatus.AWAITING_RECEIPT,
        OrderStatus.COMPLETED,
    }
)

# An order may be cancelled only while no money has moved.
CANCELLABLE_STATUSES = frozenset({OrderStatus.CREATED, OrderStatus.AWAITING_PAYMENT})
