"""The order saga's first step for orders of version 3: the order recorded (its coupon
reserved) and its payment created at the channel, in one local activity (one history
event) where the saga ran two.

Both parts are idempotent as they were as steps: `record_order` finds the order an earlier
attempt committed, and the channel finds the payment by its reference, so a retry of the
whole (a channel down, say) creates nothing twice.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.channel_calls import ChannelCalls
from activities.order_records import OrderRecords
from domain.saga import Checkout, OrderInput


class OrderOpening:
    """Receives the saga's OrderRecords and ChannelCalls (wired by worker.py)."""

    def __init__(self, records: OrderRecords, calls: ChannelCalls) -> None:
        self._records = records
        self._calls = calls

    @activity.defn
    async def record_and_create_payment(self, order: OrderInput) -> Checkout:
        """Record the order, then create its payment and record the checkout. A coupon
        taken meanwhile refuses it before anything is stored (CouponRejected); the
        channel's refusal (ChannelRejected) comes with the order recorded."""
        await asyncio.to_thread(self._records.record_order, order)
        return await self._calls.create_payment(order)
