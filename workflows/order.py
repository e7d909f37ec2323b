"""OrderWorkflow: one durable saga per order.

    record order + reserve coupon -> create payment at the channel
    -> await the channel (signal, or our own polling) -> record payment
    -> settle (split + ledger) -> notify buyer and merchant -> completed

Unpaid endings (timeout, decline, cancel) close the payment at the channel
first: if the buyer paid at the last moment the close fails and the order is
paid after all. After payment, a step that fails for good unwinds the
registered compensations in reverse (reverse the ledger, refund the buyer).
A payment the channel reports for an order that no longer waits for one is
refunded at once.

While the buyer has not paid, a modification (an update) re-prices the order,
closes its payment at the channel and issues the next attempt under its own
reference; the run loop applies it between signals, so it never interleaves
with a payment. A payment of a replaced attempt is never the order's: it is
given back like a late one.

An order placed without a channel waits for the buyer to choose one on the hosted
checkout (the choose_method update, applied by the run loop like a modification):
nothing is asked of any channel before. Switching to another method closes the open
attempt at its channel and opens the next attempt at the new one, under the next
reference; a payment that reaches the closed attempt is given back like a late one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimeout

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.order_records import OrderRecords
    from channels.base import (
        ChannelName,
        CloseResult,
        NotificationKind,
        PaymentState,
        PaymentStatus,
        RefundState,
        RefundStatus,
        supports_currency,
    )
    from domain.failures import (
        CHANNEL_REJECTED,
        COUPON_REJECTED,
        MODIFICATION_FAILED,
        ORDER_INVALID,
        ORDER_NOT_MODIFIABLE,
        PAYMENT_NOT_FOUND,
        REFUND_REFUSED,
    )
    from domain.keys import (
        MAX_PAYMENT_ATTEMPTS,
        compensation_refund_id,
        late_payment_refund_id,
        payment_reference,
    )
    from domain.order_status import CANCELLABLE_STATUSES, FINAL_STATUSES, OrderStatus
    from domain.payment_check import payment_mismatch
    from domain.pricing import PricedOrder
    from domain.saga import (
        CancelRequest,
        Checkout,
        CheckoutRequest,
        MethodChoice,
        MethodChosen,
        ModifyRequest,
        OrderInput,
        OrderModification,
        OrderRef,
        OrderView,
        PaymentRecord,
        PaymentSignal,
        ReceiptConfirmation,
        RefundOrder,
        Repricing,
        ReviewFlag,
        SagaRefundInput,
        StatusChange,
    )
    from domain.split import Split
    from workflows import options
    from workflows.saga_refund import refund_in_child
    from workflows.search_attributes import NEEDS_REVIEW, ORDER_STATUS, PAYMENT_CHANNEL

T = TypeVar("T")
Compensation = Callable[[], Awaitable[None]]

StepFailed = options.StepFailed
# Re-issued attempts are named "{order id}__{n}" (Alipay takes letters, digits, "_").
UNDERSCORE_REFERENCES = "payment-reference-underscore"
# A poll that finds the payment closed at the channel ends the wait (it used to wait on).
POLL_SEES_CLOSED = "poll-sees-channel-close"
# A saga's own refund is asked and awaited in a child (workflows.saga_refund), whose
# history takes the polls and continues as new; before, the order's history polled.
REFUND_CHILD = "refund-waits-in-child"


def _failure_type(error: ActivityError | ApplicationError | StepTimeout) -> str | None:
    failure = error.cause if isinstance(error, ActivityError) else error
    return failure.type if isinstance(failure, ApplicationError) else None


def signal_from_state(
    state: PaymentState, source: str, attempt: int | None = None
) -> PaymentSignal:
    kind = (
        NotificationKind.PAYMENT_SUCCEEDED
        if state.status == PaymentStatus.PAID
        else NotificationKind.PAYMENT_DECLINED
    )
    return PaymentSignal(
        source=source,
        kind=kind,
        channel_txn_id=state.channel_txn_id,
        amount=state.amount,
        currency=state.currency,
        merchant_id=state.merchant_id,
        attempt=attempt,
    )


def _refused(
    message: str, error_type: str = ORDER_NOT_MODIFIABLE, *details: object
) -> ApplicationError:
    """A modification's refusal, as its update fails with it."""
    return ApplicationError(message, *details, type=error_type, non_retryable=True)


def _repricing_refusal(error: ActivityError | ApplicationError | StepTimeout) -> ApplicationError:
    """The refusal of new lines the repricing would not price (the coupon, say)."""
    failure = error.cause if isinstance(error, ActivityError) else error
    if isinstance(failure, ApplicationError) and failure.type in (COUPON_REJECTED, ORDER_INVALID):
        return _refused(failure.message, failure.type, *failure.details)
    return _refused(f"the order could not be re-priced: {failure}", MODIFICATION_FAILED)


# Where a paid saga may stand, replayed, while the database already says awaiting_receipt.
_PAID_BEFORE_THE_HOLD = frozenset(
    {OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID, OrderStatus.SETTLED}
)
_CONFIRMABLE = frozenset({OrderStatus.AWAITING_RECEIPT, OrderStatus.COMPLETED})


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, order: OrderInput) -> None:
        self._order = order
        self._ref = OrderRef(order_id=order.order_id, channel=order.channel)
        self._status = OrderStatus.CREATED
        self._published_status = OrderStatus.CREATED  # the API starts us with this attribute
        self._steps: list[str] = []
        self._inbox: list[PaymentSignal] = []
        self._seen_txn_ids: set[str] = set()
        self._checkout: Checkout | None = None
        self._paid: PaymentSignal | None = None
        self._cancel: CancelRequest | None = None
        self._split: Split | None = None
        self._close_reason: str | None = None
        self._review_reasons: list[str] = []
        self._refunded_amount = 0
        self._compensations: list[Compensation] = []
        self._retry_compensation = False
        self._compensation_attempt = 1
        self._receipt_confirmed = False
        self._released_amount: int | None = None
        # Modifications: taken while the run loop waits for the buyer, one at a time; each
        # update waits for its answer under its ticket (None: applied).
        self._awaiting_payment = False
        self._modifications_asked = 0
        self._modification: tuple[int, ModifyRequest] | None = None
        self._modification_answers: dict[int, ApplicationError | None] = {}
        self._replaced_attempts: dict[int, OrderInput] = {}
        # The buyer's choice of method on the hosted checkout, taken like a modification.
        self._choices_asked = 0
        self._choice: tuple[int, MethodChoice] | None = None
        self._choice_answers: dict[int, ApplicationError | None] = {}

    @workflow.run
    async def run(self, order: OrderInput) -> OrderView:
        if await self._record_order() and await self._collect_payment():
            await self._fulfil()
        await self._refund_late_payments()
        return self.view()

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
        self._check_choosable(request)
        self._choice = (ticket, request)
        await workflow.wait_condition(lambda: ticket in self._choice_answers)
        refusal = self._choice_answers.pop(ticket)
        if refusal is not None:
            raise refusal
        return self.view()

    @choose_method.validator
    def _validate_choice(self, request: MethodChoice) -> None:
        self._check_choosable(request)

    # -- the steps -----------------------------------------------------------

    async def _record_order(self) -> bool:
        try:
            await workflow.execute_local_activity_method(
                OrderRecords.record_order, self._order, **options.DB_WRITE
            )
        except StepFailed as error:
            if _failure_type(error) != COUPON_REJECTED:
                raise
            self._close_reason = "coupon_unavailable"
            self._status = OrderStatus.REJECTED  # nothing was stored: no projection to write
            self._publish(self._status)
            return False
        self._steps.append("record_order")
        if self._order.coupon_code:
            self._steps.append("reserve_coupon")
        return True

    async def _collect_payment(self) -> bool:
        """True once the order is paid; False when it ended unpaid (closed / cancelled)."""
        if self._order.priced.payable_amount == 0:
            self._paid = PaymentSignal(
                source="zero_amount",
                kind=NotificationKind.PAYMENT_SUCCEEDED,
                amount=0,
                currency=self._order.priced.currency,
                merchant_id=self._order.merchant_id,
            )
            return True
        outcome = "cancelled" if self._cancel else await self._create_and_await_payment()
        if outcome == "paid":
            return True
        if self._order.channel and await self._close_at_channel():
            return True  # the buyer paid before the close reached the channel
        reasons = {
            "timeout": "payment_timeout",
            "declined": "payment_declined",
            "channel_failed": "channel_unavailable",
        }
        if outcome == "cancelled":
            assert self._cancel is not None
            await self._finish(OrderStatus.CANCELLED, self._cancel.reason)
        else:
            await self._finish(OrderStatus.CLOSED, reasons[outcome])
        return False

    async def _create_and_await_payment(self) -> str:
        timeout = timedelta(seconds=self._order.payment_timeout_seconds)
        if not self._order.channel:  # the buyer chooses on the hosted checkout
            return await self._await_choice_and_payment(timeout)
        try:
            self._checkout = await workflow.execute_local_activity_method(
                ChannelCalls.create_payment, self._order, **options.channel_create(timeout)
            )
        except StepFailed:
            return "channel_failed"
        self._steps.append("create_payment")
        self._status = OrderStatus.AWAITING_PAYMENT  # create_payment wrote the projection
        self._publish(self._status)
        self._awaiting_payment = True  # modifications are taken from here on
        first_poll = self._order.polling.first_payment_poll(timeout)
        outcome = await self._await_payment(workflow.now() + timeout, first_poll)
        self._stop_modifications()
        return outcome

    async def _await_payment(self, deadline: datetime, poll_delay: timedelta) -> str:
        """Wait for the channel's word; query it at growing intervals so nothing is lost."""
        while True:
            outcome = await self._take_inbox()
            if outcome:
                return outcome
            if self._cancel is not None:
                return "cancelled"
            if self._choice is not None:
                outcome = await self._apply_choice()
                if outcome:
                    return outcome
                poll_delay = self._order.polling.first_payment_poll(
                    timedelta(seconds=self._order.payment_timeout_seconds)
                )
                continue
            if self._modification is not None:
                outcome = await self._apply_modification()
                if outcome:
                    return outcome
                poll_delay = self._order.polling.first_payment_poll(
                    timedelta(seconds=self._order.payment_timeout_seconds)
                )
                continue
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                return "timeout"
            try:
                await workflow.wait_condition(
                    lambda: (
                        bool(self._inbox)
                        or self._cancel is not None
                        or self._modification is not None
                        or self._choice is not None
                    ),
                    timeout=min(poll_delay, remaining),
                )
            except TimeoutError:
                if not self._order.channel:
                    continue  # no method chosen yet: nothing to ask a channel about
                await self._poll_channel()
                poll_delay = self._order.polling.next_poll(poll_delay)

    async def _take_inbox(self) -> str | None:
        """Judge queued signals: "paid", "declined", or None to keep waiting."""
        while self._inbox:
            signal = self._inbox.pop(0)
            if (signal.attempt or 1) != self._order.payment_attempt:
                await self._give_back_replaced(signal)  # a modification replaced its attempt
                continue
            if signal.kind == NotificationKind.PAYMENT_DECLINED:
                return "declined"
            if signal.kind != NotificationKind.PAYMENT_SUCCEEDED:
                continue  # refund notices: refunds are confirmed by their own activity
            if await self._accept(signal):
                return "paid"
        return None

    async def _accept(self, signal: PaymentSignal) -> bool:
        if signal.channel_txn_id in self._seen_txn_ids:
            return False  # a duplicate of a payment already judged
        problem = payment_mismatch(self._order, signal)
        if problem is not None:
            if signal.channel_txn_id:  # ops decide about this money; never refund it blindly
                self._seen_txn_ids.add(signal.channel_txn_id)
            await self._flag_for_review(problem)
            return False
        assert signal.channel_txn_id is not None
        self._seen_txn_ids.add(signal.channel_txn_id)
        self._paid = signal
        return True

    async def _poll_channel(self) -> None:
        try:
            state: PaymentState = await workflow.execute_local_activity_method(
                ChannelCalls.query_payment, self._payment_ref(), **options.CHANNEL_POLL
            )
        except StepFailed:
            return  # the next poll, the notification or the timeout will tell
        if state.status in (PaymentStatus.PAID, PaymentStatus.DECLINED) or (
            # Closed at the channel while we wait (Alipay's TRADE_CLOSED after a decline,
            # WeChat Pay's CLOSED or REVOKED, a canceled card intent): the buyer can no
            # longer pay it, and its lost notification would have said "declined".
            state.status == PaymentStatus.CLOSED and workflow.patched(POLL_SEES_CLOSED)
        ):
            self._inbox.append(signal_from_state(state, "query", self._order.payment_attempt))

    async def _close_at_channel(self) -> bool:
        """Close the payment; True when the channel says the buyer paid first."""
        try:
            result: CloseResult = await workflow.execute_local_activity_method(
                ChannelCalls.close_payment, self._payment_ref(), **options.CHANNEL_MUST_FINISH
            )
        except StepFailed as error:
            if _failure_type(error) != PAYMENT_NOT_FOUND:
                # The channel refused the close: the payment may still be payable there.
                await self._flag_for_review(f"close refused by the channel: {error}")
            return False  # a late payment is refunded when it is reported
        self._steps.append("close_payment")
        if result.closed or result.payment.status != PaymentStatus.PAID:
            return False
        attempt = self._order.payment_attempt
        return await self._accept(signal_from_state(result.payment, "close", attempt))

    async def _fulfil(self) -> None:
        """Record, settle, notify; a step refused for a business reason is compensated."""
        assert self._paid is not None
        paid = self._paid
        record = PaymentRecord(
            order_id=self._order.order_id,
            channel_txn_id=paid.channel_txn_id,
            amount=paid.amount,
            currency=paid.currency,
        )
        # Orders from before: the reversal was registered after record_payment, any failure
        # (a bug too) compensated, and a failed notification compensated the paid order.
        ordered = workflow.patched("compensate-business-refusals-only")
        try:
            if paid.amount > 0:
                self._compensations.append(self._refund_buyer)
            if ordered:  # record_payment posts the settlement entry: reversed even if the
                self._compensations.append(self._reverse_settlement)  # step fails after it
            await self._db(OrderRecords.record_payment, record)
            self._steps.append("record_payment")
            self._status = OrderStatus.PAID
            if not ordered:
                self._compensations.append(self._reverse_settlement)
            self._split = await self._db(OrderRecords.settle_order, self._ref)
            self._steps.append("settle")
            self._status = OrderStatus.SETTLED
            if not ordered:
                await self._db(OrderRecords.notify_parties, self._ref)
                self._steps.append("notify")
        except StepFailed as error:
            if ordered and options.business_failure(error) is None:
                raise options.UnclassifiedFailure(f"{error.cause or error}") from error
            await self._compensate(str(error.cause or error))
            return
        if ordered:
            await self._notify_parties()
        if workflow.patched("hold-funds-until-receipt"):
            await self._hold_until_receipt()
        self._status = OrderStatus.COMPLETED  # release_funds wrote the projection
        self._publish(self._status)

    async def _notify_parties(self) -> None:
        """Tell the buyer and the merchant: retried until written, and never a reason to
        give a paid order's money back (a refusal is flagged for ops)."""
        try:
            await workflow.execute_local_activity_method(
                OrderRecords.notify_parties, self._ref, **options.DB_MUST_FINISH
            )
        except StepFailed as error:
            await self._flag_for_review(f"notifying the parties failed: {error.cause or error}")
            return
        self._steps.append("notify")

    async def _hold_until_receipt(self) -> None:
        """The merchant's share stays pending until the buyer confirms or the delay passes.

        Past payment there is no compensation: refunds are their own workflows, and the
        release is a database write retried until it succeeds.
        """
        self._status = OrderStatus.AWAITING_RECEIPT  # notify_parties wrote the projection
        delay = self._order.auto_complete_seconds or 0
        if delay > 0:
            self._publish(self._status)
            if workflow.patched("refund-late-payments-during-hold"):
                await self._await_receipt(workflow.now() + timedelta(seconds=delay))
            else:  # orders from before gave late payments back only once completed
                with contextlib.suppress(TimeoutError):  # the delay passed: auto-completion
                    await workflow.wait_condition(
                        lambda: self._receipt_confirmed, timeout=timedelta(seconds=delay)
                    )
        self._released_amount = await workflow.execute_local_activity_method(
            OrderRecords.release_funds, self._ref, **options.DB_MUST_FINISH
        )
        self._steps.append("release_funds")

    async def _await_receipt(self, deadline: datetime) -> None:
        """Until the buyer confirms or the hold ends; a payment that reaches the order
        meanwhile (a second one, or one of a replaced attempt) is given back at once."""
        while not self._receipt_confirmed:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                return  # the delay passed: auto-completion
            try:
                await workflow.wait_condition(
                    lambda: self._receipt_confirmed or bool(self._inbox), timeout=remaining
                )
            except TimeoutError:
                return
            await self._refund_inbox()

    # -- compensation --------------------------------------------------------

    async def _compensate(self, reason: str) -> None:
        """Unwind in reverse; a refusal parks the order as compensation_failed for ops."""
        self._close_reason = reason
        await self._set_status(OrderStatus.REFUNDING)
        while self._compensations:
            try:
                await self._compensations[-1]()
            except StepFailed as error:
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
        refund_id = compensation_refund_id(self._order.order_id, self._compensation_attempt)
        await self._refund(self._paid, refund_id, "compensation")
        self._steps.append("refund")

    async def _refund_late_payments(self) -> None:
        """Give back any payment that arrived for an order no longer waiting for one."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not await self._refund_inbox():
                return

    async def _refund_inbox(self) -> bool:
        """Refund the payments queued in the inbox that are not the order's; False when
        there were none."""
        late = [
            s
            for s in self._inbox
            if s.kind == NotificationKind.PAYMENT_SUCCEEDED
            and s.channel_txn_id
            and s.channel_txn_id not in self._seen_txn_ids
        ]
        self._inbox.clear()
        for signal in late:
            assert signal.channel_txn_id is not None
            if (signal.attempt or 1) != self._order.payment_attempt:
                await self._give_back_replaced(signal)
                continue
            self._seen_txn_ids.add(signal.channel_txn_id)
            refund_id = late_payment_refund_id(self._order.order_id, signal.channel_txn_id)
            try:
                await self._refund(signal, refund_id, "late_payment")
            except StepFailed as error:
                await self._flag_for_review(f"late payment refund refused: {error}")
                continue
            self._steps.append("refund_late_payment")
        return bool(late)

    async def _refund(self, payment: PaymentSignal, refund_id: str, reason: str) -> None:
        refund = RefundOrder(
            refund_id=refund_id,
            order_id=self._order.order_id,
            channel=self._channel_of(payment.attempt),
            channel_txn_id=payment.channel_txn_id,
            amount=payment.amount,
            currency=payment.currency,
            reason=reason,
            payment_reference=self._reference_of(payment.attempt),
        )
        if workflow.patched(REFUND_CHILD):
            await refund_in_child(SagaRefundInput(refund=refund, polling=self._order.polling))
        elif workflow.patched("refund-waits-with-timers"):
            await self._refund_and_wait(refund)
        else:  # orders started before: the activity's own retries waited for the channel
            await workflow.execute_local_activity_method(
                ChannelCalls.refund_payment, refund, **options.CHANNEL_MUST_FINISH
            )
        self._refunded_amount += payment.amount

    async def _refund_and_wait(self, refund: RefundOrder) -> None:
        """Ask once (a regular activity), then query at growing intervals until it is final:
        a refund pending for days costs a timer and a query per interval, nothing more."""
        state: RefundState = await workflow.execute_activity_method(
            ChannelCalls.refund_once, refund, **options.CHANNEL_MUST_FINISH
        )
        delay = self._order.polling.first_refund_check
        while state.status == RefundStatus.PENDING:
            await workflow.sleep(delay)
            delay = self._order.polling.next_poll(delay)
            with contextlib.suppress(*StepFailed):  # the next check will tell
                state = await workflow.execute_local_activity_method(
                    ChannelCalls.check_refund, refund, **options.CHANNEL_POLL
                )
        if state.status == RefundStatus.FAILED:
            raise ApplicationError(
                state.failure_reason or "refund refused", type=REFUND_REFUSED, non_retryable=True
            )

    # -- modification --------------------------------------------------------

    def _check_modifiable(self) -> None:
        state = None
        if self._paid is not None:
            state = "paid"
        elif self._cancel is not None:
            state = "being cancelled"
        elif not self._awaiting_payment:  # not yet waiting for the buyer, or ending unpaid
            waiting = self._status == OrderStatus.AWAITING_PAYMENT
            state = "closing" if waiting else self._status.value
        if state is not None:
            raise _refused(f"the order is {state}; only an order awaiting payment can be modified")
        if not self._order.channel:
            raise _refused("choose a payment method first; then the order can be modified")
        if self._order.payment_attempt >= MAX_PAYMENT_ATTEMPTS:
            raise _refused(f"an order can be modified at most {MAX_PAYMENT_ATTEMPTS - 1} times")

    def _stop_modifications(self) -> None:
        """The buyer paid or the order is ending: a modification not yet applied is refused."""
        self._awaiting_payment = False
        if self._choice is not None:
            ticket, _ = self._choice
            self._choice = None
            self._choice_answers[ticket] = _refused("the order no longer awaits payment")
        if self._modification is not None:
            ticket, _ = self._modification
            self._modification = None
            self._modification_answers[ticket] = _refused("the order no longer awaits payment")

    async def _apply_modification(self) -> str | None:
        """Apply the waiting modification and answer its update; returns "paid" when the
        close found the buyer had paid the old amount, "channel_failed" when the new
        payment could not be created, None to keep waiting for the buyer."""
        assert self._modification is not None
        ticket, request = self._modification
        outcome, refusal = await self._modify(request)
        self._modification = None
        self._modification_answers[ticket] = refusal
        return outcome

    async def _modify(self, request: ModifyRequest) -> tuple[str | None, ApplicationError | None]:
        """Re-price (coupon checked again), close the pending payment, record the new lines,
        issue the next attempt. Until the close succeeds, a refusal changes nothing."""
        repricing = Repricing(order_id=self._order.order_id, lines=request.lines)
        try:
            # A regular activity, not a local one: scheduling it ends the workflow task, so
            # the update is durably accepted before anything changes at the channel, and a
            # failed task later replays these steps instead of losing the update.
            priced: PricedOrder = await workflow.execute_activity_method(
                OrderRecords.reprice_order, repricing, **options.DB_WRITE
            )
        except StepFailed as error:
            return None, _repricing_refusal(error)
        if priced.payable_amount == 0:
            message = "nothing would be left to pay; cancel the order instead"
            return None, _refused(message, ORDER_INVALID, "payable_zero", "lines")
        closing = await self._close_for_modification()
        if closing is not None:
            return closing
        attempt = self._order.payment_attempt + 1
        change = OrderModification(
            order_id=self._order.order_id, priced=priced, payment_attempt=attempt
        )
        await workflow.execute_local_activity_method(
            OrderRecords.record_modification, change, **options.DB_MUST_FINISH
        )
        self._steps.append("record_modification")
        self._replaced_attempts[self._order.payment_attempt] = self._order
        # Orders that issued an attempt before the "__" form keep the "-" one: the
        # channel knows their attempts by it (the answer is the same for the whole order).
        legacy = not workflow.patched(UNDERSCORE_REFERENCES)
        reference = payment_reference(self._order.order_id, attempt, legacy=legacy)
        self._order = self._order.model_copy(
            update={"priced": priced, "payment_attempt": attempt, "payment_reference": reference}
        )
        return await self._open_attempt("the channel did not take the new payment")

    async def _close_for_modification(self) -> tuple[str | None, ApplicationError] | None:
        """Close the pending payment so its amount can no longer be paid: None once it is
        closed, else the modification's outcome and refusal."""
        try:
            result: CloseResult = await workflow.execute_local_activity_method(
                ChannelCalls.close_payment, self._payment_ref(), **options.CHANNEL_TRY
            )
        except StepFailed as error:
            if _failure_type(error) == PAYMENT_NOT_FOUND:
                return None  # nothing at the channel can take the old amount
            message = f"the pending payment could not be closed: {error.cause or error}"
            if _failure_type(error) == CHANNEL_REJECTED:
                return None, _refused(message)
            return None, _refused(f"{message}; try again", MODIFICATION_FAILED)
        self._steps.append("close_payment")
        if result.closed:
            return None
        if result.payment.status == PaymentStatus.PAID:
            signal = signal_from_state(result.payment, "close", self._order.payment_attempt)
            if await self._accept(signal):
                return "paid", _refused("the buyer paid the order first; it stays as it was")
            return None, _refused("the channel reports a payment that needs review")
        return None, _refused("the channel would not close the pending payment")

    async def _give_back_replaced(self, signal: PaymentSignal) -> None:
        """A payment of an attempt a modification replaced is never the order's payment:
        refunded like a late one when it is what that attempt asked, flagged otherwise."""
        txn_id = signal.channel_txn_id
        if signal.kind != NotificationKind.PAYMENT_SUCCEEDED or not txn_id:
            return  # a decline or refund notice of a replaced attempt changes nothing
        if txn_id in self._seen_txn_ids:
            return
        self._seen_txn_ids.add(txn_id)
        attempt = signal.attempt or 1
        asked = self._replaced_attempts.get(attempt)
        problem = "no such attempt" if asked is None else payment_mismatch(asked, signal)
        if problem is not None:
            await self._flag_for_review(f"payment of replaced attempt {attempt}: {problem}")
            return
        refund_id = late_payment_refund_id(self._order.order_id, txn_id)
        try:
            await self._refund(signal, refund_id, "late_payment")
        except StepFailed as error:
            await self._flag_for_review(f"late payment refund refused: {error}")
            return
        self._steps.append("refund_late_payment")

    def _channel_of(self, attempt: int | None) -> str:
        """The channel an attempt was opened at (a switch of method changes it)."""
        replaced = self._replaced_attempts.get(attempt or 1)
        if replaced is not None and (attempt or 1) != self._order.payment_attempt:
            return replaced.channel
        return self._order.channel

    def _payment_ref(self) -> OrderRef:
        """The current payment at the channel; the first attempt's is the order id."""
        reference = self._reference_of(self._order.payment_attempt)
        if reference is None:
            return self._ref
        return self._ref.model_copy(update={"payment_reference": reference})

    def _reference_of(self, attempt: int | None) -> str | None:
        """The channel reference of a payment attempt; None for the first (the order id)."""
        if attempt is None or attempt == 1:
            return None
        issued = self._order if attempt == self._order.payment_attempt else None
        issued = issued or self._replaced_attempts.get(attempt)
        if issued is not None and issued.payment_reference is not None:
            return issued.payment_reference
        return payment_reference(self._order.order_id, attempt)

    # -- choice of method (hosted checkout) ----------------------------------

    async def _await_choice_and_payment(self, timeout: timedelta) -> str:
        """No channel yet: the order awaits payment, and the buyer's choice opens it."""
        await self._set_status(OrderStatus.AWAITING_PAYMENT)
        self._awaiting_payment = True  # choices (and then modifications) are taken
        outcome = await self._await_payment(workflow.now() + timeout, timeout)
        self._stop_modifications()
        return outcome

    def _check_choosable(self, request: MethodChoice) -> None:
        if self._paid is not None or self._cancel is not None or not self._awaiting_payment:
            raise _refused("the order no longer awaits payment; no method can be chosen")
        if request.channel not in {name.value for name in ChannelName}:
            raise _refused(f"no channel {request.channel}", ORDER_INVALID, "channel", "channel")
        if not supports_currency(ChannelName(request.channel), self._order.priced.currency):
            message = f"{request.channel} does not take {self._order.priced.currency}"
            raise _refused(message, ORDER_INVALID, "currency_not_supported", "channel")
        if request.channel != self._order.channel and (
            self._order.payment_attempt >= MAX_PAYMENT_ATTEMPTS
        ):
            raise _refused(f"an order can open at most {MAX_PAYMENT_ATTEMPTS} payments")

    async def _apply_choice(self) -> str | None:
        """Apply the waiting choice and answer its update; "paid" when closing the open
        attempt found it paid, "channel_failed" when the new channel would not take the
        payment, None to keep waiting for the buyer."""
        assert self._choice is not None
        ticket, request = self._choice
        outcome, refusal = await self._open_at(request)
        self._choice = None
        self._choice_answers[ticket] = refusal
        return outcome

    async def _open_at(self, request: MethodChoice) -> tuple[str | None, ApplicationError | None]:
        """Close the attempt open at another channel (if any), record the choice, open the
        next attempt at the chosen channel. Until the close succeeds, nothing changes."""
        if request.channel == self._order.channel:
            return None, None  # already open there: the same checkout
        attempt = self._order.payment_attempt
        if self._order.channel:
            closing = await self._close_for_modification()
            if closing is not None:
                return closing
            self._replaced_attempts[attempt] = self._order
            attempt += 1
        chosen = MethodChosen(
            order_id=self._order.order_id,
            channel=request.channel,
            channel_fee_rate=request.channel_fee_rate,
            payment_attempt=attempt,
        )
        await workflow.execute_local_activity_method(
            OrderRecords.record_method_choice, chosen, **options.DB_MUST_FINISH
        )
        self._steps.append("choose_method")
        reference = payment_reference(self._order.order_id, attempt) if attempt > 1 else None
        self._order = self._order.model_copy(
            update={
                "channel": request.channel,
                "channel_fee_rate": request.channel_fee_rate,
                "notify_url": request.notify_url,
                "payment_attempt": attempt,
                "payment_reference": reference,
            }
        )
        self._ref = self._ref.model_copy(update={"channel": request.channel})
        workflow.upsert_search_attributes([PAYMENT_CHANNEL.value_set(request.channel)])
        return await self._open_attempt("the channel did not take the payment")

    # -- small helpers -------------------------------------------------------

    async def _open_attempt(self, refusal: str) -> tuple[str | None, ApplicationError | None]:
        """Create the order's current attempt at its channel (after a modification or the
        buyer's choice of method): (None, None), or the outcome that closes the order."""
        self._checkout = None
        timeout = timedelta(seconds=self._order.payment_timeout_seconds)
        try:
            self._checkout = await workflow.execute_local_activity_method(
                ChannelCalls.create_payment, self._order, **options.channel_create(timeout)
            )
        except StepFailed:
            return "channel_failed", _refused(f"{refusal}; the order closes", MODIFICATION_FAILED)
        self._steps.append("create_payment")
        return None, None

    async def _db(self, method: Callable[[Any, Any], T], argument: object) -> T:
        return await workflow.execute_local_activity_method(method, argument, **options.DB_WRITE)

    async def _finish(self, status: OrderStatus, reason: str) -> None:
        self._close_reason = reason
        await self._set_status(status, reason)

    async def _set_status(self, status: OrderStatus, reason: str | None = None) -> None:
        change = StatusChange(order_id=self._order.order_id, status=status, reason=reason)
        await self._db(OrderRecords.set_order_status, change)
        self._status = status
        self._publish(status)

    async def _flag_for_review(self, reason: str) -> None:
        if reason not in self._review_reasons:
            self._review_reasons.append(reason)
            flag = ReviewFlag(order_id=self._order.order_id, reason=reason)
            await self._db(OrderRecords.flag_for_review, flag)
            workflow.upsert_search_attributes([NEEDS_REVIEW.value_set(True)])

    def _publish(self, status: OrderStatus) -> None:
        """Keep the OrderStatus search attribute current (one history event per change)."""
        if status != self._published_status:
            self._published_status = status
            workflow.upsert_search_attributes([ORDER_STATUS.value_set(status.value)])
