"""OrderWorkflow: the order saga's entry point, its state's view, and its handlers.

Its run is three steps: record the order, collect the payment (payment_wait.py),
fulfil it (fulfilment.py); then it gives back any payment that arrived too late
(refunds.py). Signals, updates and queries only record what was asked: the run loop
applies it, so nothing they ask interleaves with a step.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.order.failures import failure_type
from workflows.order.fulfilment import Fulfilment

with workflow.unsafe.imports_passed_through():
    from activities.order_records import OrderRecords
    from domain.failures import COUPON_REJECTED
    from domain.order_status import CANCELLABLE_STATUSES, FINAL_STATUSES, OrderStatus
    from domain.saga import (
        CancelRequest,
        CheckoutRequest,
        MethodChoice,
        ModifyRequest,
        OrderInput,
        OrderView,
        PaymentSignal,
        ReceiptConfirmation,
    )
    from workflows import options

# Where a paid saga may stand, replayed, while the database already says awaiting_receipt.
_PAID_BEFORE_THE_HOLD = frozenset(
    {OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID, OrderStatus.SETTLED}
)
_CONFIRMABLE = frozenset({OrderStatus.AWAITING_RECEIPT, OrderStatus.COMPLETED})


# The type name recorded in every order's history: it must never change.
@workflow.defn(name="OrderWorkflow")
class OrderWorkflow(Fulfilment):
    @workflow.init
    def __init__(self, order: OrderInput) -> None:
        super().__init__(order)

    @workflow.run
    async def run(self, order: OrderInput) -> OrderView:
        if await self._record_order() and await self._collect_payment():
            await self._fulfil()
        await self._refund_late_payments()
        return self.view()

    async def _record_order(self) -> bool:
        """Record the order and reserve its coupon; False when the coupon was taken. An
        order of version 3 whose channel is known creates its payment in the same step."""
        try:
            if self._opens_at_once():
                await self._record_and_create_payment()
            else:
                await workflow.execute_local_activity_method(
                    OrderRecords.record_order, self._order, **options.DB_WRITE
                )
        except options.StepFailed as error:
            if failure_type(error) != COUPON_REJECTED:
                raise
            self._close_reason = "coupon_unavailable"
            self._status = OrderStatus.REJECTED  # nothing was stored: no projection to write
            self._publish(self._status)
            return False
        self._steps.append("record_order")
        if self._order.coupon_code:
            self._steps.append("reserve_coupon")
        return True

    # -- handlers ------------------------------------------------------------

    @workflow.query
    def view(self) -> OrderView:
        return OrderView(
            order_id=self._order.order_id,
            status=self._status,
            steps_done=tuple(self._steps),
            payable_amount=self._order.priced.payable_amount,
            currency=self._order.priced.currency,
            checkout=self._checkout,
            channel_txn_id=self._paid.channel_txn_id if self._paid else None,
            split=self._split,
            close_reason=self._close_reason,
            review_reasons=tuple(self._review_reasons),
            refunded_amount=self._refunded_amount,
            released_amount=self._released_amount,
            payment_attempt=self._order.payment_attempt,
        )

    @workflow.signal
    def payment_notification(self, signal: PaymentSignal) -> None:
        self._inbox.append(signal)

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        if self._cancel is None and self._status in CANCELLABLE_STATUSES:
            self._cancel = request

    @workflow.signal
    def retry_compensation(self) -> None:
        """Ops' word that a refused compensation may be tried again (ignored otherwise)."""
        if self._status == OrderStatus.COMPENSATION_FAILED:
            self._retry_compensation = True

    @workflow.update
    async def await_checkout(self, request: CheckoutRequest) -> OrderView:
        """Answers once the buyer can pay (or the order ended without a payment)."""
        await workflow.wait_condition(
            lambda: self._checkout is not None or self._status != OrderStatus.CREATED
        )
        return self.view()

    @workflow.update
    async def cancel_order(self, request: CancelRequest) -> OrderView:
        """Cancel an unpaid order; answers with the outcome (cancelled, or paid after all)."""
        self.cancel(request)
        await workflow.wait_condition(
            lambda: self._status in FINAL_STATUSES or self._paid is not None
        )
        return self.view()

    @workflow.update
    async def confirm_receipt(self, request: ReceiptConfirmation) -> OrderView:
        """The buyer has the goods: complete the order now; answers once it has."""
        self._receipt_confirmed = True
        await workflow.wait_condition(lambda: self._status in FINAL_STATUSES)
        return self.view()

    @confirm_receipt.validator
    def _validate_receipt(self, request: ReceiptConfirmation) -> None:
        # After a worker restart the saga replays to where its history ends, which can lag
        # the projection the API read (awaiting_receipt is written by the step before the
        # hold): a paid order on its way to the hold takes the confirmation, and the hold
        # sees it when it is reached; one that is compensated instead answers as refunded.
        on_its_way = self._paid is not None and self._status in _PAID_BEFORE_THE_HOLD
        if not on_its_way and self._status not in _CONFIRMABLE:
            raise ValueError(f"order is {self._status.value}; receipt can be confirmed once paid")

    @cancel_order.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self._status not in CANCELLABLE_STATUSES | {OrderStatus.CANCELLED}:
            raise ValueError(f"order is {self._status.value}; only unpaid orders can be cancelled")

    @workflow.update
    async def modify_order(self, request: ModifyRequest) -> OrderView:
        """New lines for an unpaid order: re-priced, its payment closed and issued anew.

        Answers with the modified order, or fails with the refusal (nothing changed, or
        the buyer paid the old amount first and the order is paid as it was).
        """
        self._modifications_asked += 1
        ticket = self._modifications_asked
        await workflow.wait_condition(lambda: self._modification is None)  # one at a time
        self._check_modifiable()
        self._modification = (ticket, request)
        await workflow.wait_condition(lambda: ticket in self._modification_answers)
        refusal = self._modification_answers.pop(ticket)
        if refusal is not None:
            raise refusal
        return self.view()

    @modify_order.validator
    def _validate_modify(self, request: ModifyRequest) -> None:
        self._check_modifiable()

    @workflow.update
    async def choose_method(self, request: MethodChoice) -> OrderView:
        """The buyer's payment method: its payment opened at that channel (an attempt open
        at another channel is closed there first). Answers with the order and its new
        checkout, or fails with the refusal (nothing changed, or the buyer paid the open
        attempt first and the order is paid)."""
        self._choices_asked += 1
        ticket = self._choices_asked
        await workflow.wait_condition(lambda: self._choice is None and self._modification is None)
        self._check_choosable(request, validating=False)
        self._choice = (ticket, request)
        await workflow.wait_condition(lambda: ticket in self._choice_answers)
        refusal = self._choice_answers.pop(ticket)
        if refusal is not None:
            raise refusal
        return self.view()

    @choose_method.validator
    def _validate_choice(self, request: MethodChoice) -> None:
        self._check_choosable(request, validating=True)
