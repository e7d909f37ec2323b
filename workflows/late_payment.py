"""Giving back a late payment: a payment the channel took for an order that no longer
waits for one (it was closed, cancelled, paid already, or the attempt was replaced).

`give_back_late_payment` is the one way to do it: the order's saga calls it for the
late payments it hears of while it runs (with its own way of refunding and of
flagging), and LatePaymentRefundWorkflow calls it once the saga has ended: the API
starts that workflow for a payment notification, with an id derived from the channel
transaction (duplicates of the notification start nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.order_records import OrderRecords
    from channels.base import RefundState
    from domain.keys import late_payment_refund_id
    from domain.saga import LatePayment, OrderRef, RefundOrder, ReviewFlag
    from workflows import options
    from workflows.search_attributes import NEEDS_REVIEW

# A saga's way of refunding (and of waiting for the refund), and of flagging for review.
Refunder = Callable[[RefundOrder], Awaitable[RefundState]]
Flagger = Callable[[str], Awaitable[None]]


def late_payment_refund(late: LatePayment) -> RefundOrder:
    """The refund that gives a late payment back in full, keyed by its transaction."""
    return RefundOrder(
        refund_id=late_payment_refund_id(late.order_id, late.channel_txn_id),
        order_id=late.order_id,
        channel=late.channel,
        channel_txn_id=late.channel_txn_id,
        amount=late.amount,
        currency=late.currency,
        reason="late_payment",
        payment_reference=late.payment_reference,
    )


async def give_back_late_payment(
    late: LatePayment, refund: Refunder, flag_for_review: Flagger
) -> RefundState | None:
    """Refund the late payment; a refusal is flagged for ops' review instead (None)."""
    try:
        return await refund(late_payment_refund(late))
    except options.StepFailed as error:
        await flag_for_review(f"late payment refund refused: {error}")
        return None


@workflow.defn
class LatePaymentRefundWorkflow:
    @workflow.init
    def __init__(self, late: LatePayment) -> None:
        self._late = late

    @workflow.run
    async def run(self, late: LatePayment) -> RefundState | None:
        ref = OrderRef(order_id=late.order_id, channel=late.channel)
        paid_with = await workflow.execute_local_activity_method(
            OrderRecords.order_payment_txn_id, ref, **options.DB_WRITE
        )
        if paid_with == late.channel_txn_id:
            return None  # a repeat of the notice of the order's own payment
        return await give_back_late_payment(late, self._refund, self._flag_for_review)

    async def _refund(self, refund: RefundOrder) -> RefundState:
        """Asked and awaited by the activity's own retries (the saga waits in a child)."""
        return await workflow.execute_local_activity_method(
            ChannelCalls.refund_payment, refund, **options.CHANNEL_MUST_FINISH
        )

    async def _flag_for_review(self, reason: str) -> None:
        flag = ReviewFlag(order_id=self._late.order_id, reason=reason)
        await workflow.execute_local_activity_method(
            OrderRecords.flag_for_review, flag, **options.DB_WRITE
        )
        workflow.upsert_search_attributes([NEEDS_REVIEW.value_set(True)])
