"""Whether a channel's word on a payment may be taken as the order's payment."""

from __future__ import annotations

from domain.saga import OrderInput, PaymentSignal


def payment_mismatch(order: OrderInput, signal: PaymentSignal) -> str | None:
    """The reason this payment does not match the order, or None when it does.

    A mismatch is never taken as payment: it marks the order for ops review.
    """
    # A quoted order is paid exactly its quoted amount, in the buyer's currency.
    amount, currency = order.charge_amount, order.charge_currency
    if signal.currency != currency:
        return f"currency mismatch: expected {currency}, got {signal.currency}"
    if signal.amount != amount:
        return f"amount mismatch: expected {amount}, got {signal.amount}"
    if signal.merchant_id is not None and signal.merchant_id != order.merchant_id:
        return f"merchant mismatch: expected {order.merchant_id}, got {signal.merchant_id}"
    if not signal.channel_txn_id:
        return "payment without a channel transaction id"
    return None
