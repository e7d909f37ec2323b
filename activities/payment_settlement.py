"""The order saga's steps after payment, two at a time: one local activity (one history
event, `MARKER_RECORDED`) where the saga ran two.

Each runs OrderRecords' own steps one after the other, in their own transactions, as the
saga ran them: each is idempotent by order id, so a retry of the pair redoes nothing the
first attempt committed. One transaction for both would mean opening OrderRecords'
sessions from here; the pair gives the history its saving without that.
"""

from __future__ import annotations

from temporalio import activity

from activities.order_records import OrderRecords
from domain.saga import OrderRef, PaymentRecord
from domain.split import Split


class PaymentSettlement:
    """The pairs; receives the saga's OrderRecords (wired by worker.py)."""

    def __init__(self, records: OrderRecords) -> None:
        self._records = records

    @activity.defn
    def record_and_settle(self, record: PaymentRecord) -> Split:
        """Record the payment and its settlement entry, then take the split; refused
        (merchant_suspended) after the payment is recorded, as settle_order is."""
        self._records.record_payment(record)
        ref = OrderRef(order_id=record.order_id, channel="")  # settle_order reads the id only
        return self._records.settle_order(ref)

    @activity.defn
    def notify_and_release(self, ref: OrderRef) -> int:
        """An order completed at payment (no receipt hold): tell the buyer and the
        merchant, then make the merchant's share available; returns the amount."""
        self._records.notify_parties(ref)
        return self._records.release_funds(ref)
