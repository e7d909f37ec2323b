"""Compensation: a paid order's step refused for a business reason unwinds what was done,
in reverse (reverse the ledger, refund the buyer). A refusal of the unwinding itself
parks the order as compensation_failed until ops signal retry_compensation.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.order.refunds import Refunds

with workflow.unsafe.imports_passed_through():
    from activities.order_records import OrderRecords
    from domain.keys import compensation_refund_id
    from domain.order_status import OrderStatus
    from domain.saga import RefundOrder
    from workflows import options


class Compensation(Refunds):
    async def _compensate(self, reason: str) -> None:
        """Unwind in reverse; a refusal parks the order as compensation_failed for ops."""
        self._close_reason = reason
        self._drop_poll_timer()
        await self._set_status(OrderStatus.REFUNDING)
        while self._compensations:
            try:
                await self._compensations[-1]()
            except options.StepFailed as error:
                await self._flag_for_review(f"compensation failed: {error.cause or error}")
                await self._set_status(OrderStatus.COMPENSATION_FAILED)
                await workflow.wait_condition(lambda: self._retry_compensation)
                self._retry_compensation = False
                self._compensation_attempt += 1
                await self._set_status(OrderStatus.REFUNDING)
                continue
            self._compensations.pop()
        await self._set_status(OrderStatus.REFUNDED, reason)

    async def _reverse_settlement(self) -> None:
        await self._db(OrderRecords.reverse_settlement, self._ref)
        self._steps.append("reverse_settlement")

    async def _refund_buyer(self) -> None:
        assert self._paid is not None
        paid = self._paid
        refund = RefundOrder(
            refund_id=compensation_refund_id(self._order.order_id, self._compensation_attempt),
            order_id=self._order.order_id,
            channel=self._channel_of(paid.attempt),
            channel_txn_id=paid.channel_txn_id,
            amount=paid.amount,
            currency=paid.currency,
            reason="compensation",
            payment_reference=self._reference_of(paid.attempt),
        )
        await self._refund(refund)
        self._steps.append("refund")
