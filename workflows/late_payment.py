"""LatePaymentRefundWorkflow: refund a payment that reached an order already finished.

The order's own saga refunds late payments while it runs; once it has ended,
the API starts this workflow for a payment notification, with an id derived
from the channel transaction (duplicates of the notification start nothing).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.order_records import OrderRecords
    from channels.base import RefundState
    from domain.keys import late_payment_refund_id
    from domain.saga import LatePayment, OrderRef, RefundOrder, ReviewFlag
    from workflows import options
    from workflows.order import StepFailed
    from workflows.search_attributes import NEEDS_REVIEW


@workflow.defn
class LatePaymentRefundWorkflow:
    @workflow.run
    async def run(self, late: LatePayment) -> RefundState | None:
        ref = OrderRef(order_id=late.order_id, channel=late.channel)
        paid_with = await workflow.execute_local_activity_method(
            OrderRecords.order_payment_txn_id, ref, **options.DB_WRITE
        )
        if paid_with == late.channel_txn_id:
            return None  # a repeat of the notice of the order's own payment
        refund = RefundOrder(
            refund_id=late_payment_refund_id(late.order_id, late.channel_txn_id),
            order_id=late.order_id,
            channel=late.channel,
            channel_txn_id=late.channel_txn_id,
            amount=late.amount,
            currency=late.currency,
            reason="late_payment",
            payment_reference=late.payment_reference,
        )
        try:
            return await workflow.execute_local_activity_method(
                ChannelCalls.refund_payment, refund, **options.CHANNEL_MUST_FINISH
            )
        except StepFailed as error:
            flag = ReviewFlag(
                order_id=late.order_id, reason=f"late payment refund refused: {error}"
            )
            await workflow.execute_local_activity_method(
                OrderRecords.flag_for_review, flag, **options.DB_WRITE
            )
            workflow.upsert_search_attributes([NEEDS_REVIEW.value_set(True)])
            return None
