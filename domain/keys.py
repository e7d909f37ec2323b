"""Business keys: every id and idempotency key is derived here, from the order id.

Deriving keys from the business key (never from randomness) is what makes a
retried step find the side effect of its earlier attempt instead of repeating it.
"""

from __future__ import annotations


def order_workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


def late_payment_workflow_id(channel: str, channel_txn_id: str) -> str:
    return f"late-payment-{channel}-{channel_txn_id}"


def compensation_refund_id(order_id: str, attempt: int = 1) -> str:
    """The refund that gives the buyer's money back when the saga fails after payment.

    A channel keeps a refused refund under its id, so each retry that ops ask
    for after a refusal is a new attempt with its own id.
    """
    return f"{order_id}-compensation" if attempt == 1 else f"{order_id}-compensation-{attempt}"


def late_payment_refund_id(order_id: str, channel_txn_id: str) -> str:
    """The refund of a payment that arrived after the order was closed or already paid."""
    return f"{order_id}-late-{channel_txn_id}"


def settlement_entry_id(order_id: str) -> str:
    return f"{order_id}:settlement"


def reversal_entry_id(entry_id: str) -> str:
    return f"{entry_id}:reversal"
