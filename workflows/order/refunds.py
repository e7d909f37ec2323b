"""The saga's own refunds: how one is asked and awaited, and the late payments it gives
back (a payment for an order no longer waiting, or for an attempt since replaced).

Late payments are given back by workflows.late_payment's `give_back_late_payment`,
the same code that refunds them once the saga has ended.
"""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.late_payment import give_back_late_payment
from workflows.order.state import OrderState
from workflows.order.versions import patched_or_v2
from workflows.saga_refund import refund_in_child

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from channels.base import RefundState, RefundStatus
    from domain.failures import REFUND_REFUSED
    from domain.inbox import (
        NoticeRole,
        already_judged,
        attempt_of,
        triage_late,
        triage_replaced,
        unjudged_payments,
    )
    from domain.payment_check import payment_mismatch
    from domain.saga import LatePayment, PaymentSignal, RefundOrder, SagaRefundInput
    from workflows import options

# A saga's own refund is asked and awaited in a child (workflows.saga_refund), whose
# history takes the polls and continues as new; before, the order's history polled.
REFUND_CHILD = "refund-waits-in-child"
# Two notices of one late payment in the same batch are given back once; before, both
# were (one refund at the channel, counted twice, its child started again).
ONE_GIVE_BACK_PER_PAYMENT = "one-give-back-per-payment"


class Refunds(OrderState):
    async def _refund(self, refund: RefundOrder) -> RefundState:
        """Ask the channel for one of the saga's own refunds and wait until it is final;
        a refusal raises (the step's failure)."""
        if patched_or_v2(REFUND_CHILD, self._order):
            polling = self._order.polling
            state = await refund_in_child(SagaRefundInput(refund=refund, polling=polling))
        elif patched_or_v2("refund-waits-with-timers", self._order):
            state = await self._refund_and_wait(refund)
        else:  # orders started before: the activity's own retries waited for the channel
            state = await workflow.execute_local_activity_method(
                ChannelCalls.refund_payment, refund, **options.CHANNEL_MUST_FINISH
            )
        self._refunded_amount += refund.amount
        return state

    async def _refund_and_wait(self, refund: RefundOrder) -> RefundState:
        """Ask once (a regular activity), then query at growing intervals until it is final:
        a refund pending for days costs a timer and a query per interval, nothing more."""
        state: RefundState = await workflow.execute_activity_method(
            ChannelCalls.refund_once, refund, **options.CHANNEL_MUST_FINISH
        )
        delay = self._order.polling.first_refund_check
        while state.status == RefundStatus.PENDING:
            await workflow.sleep(delay)
            delay = self._order.polling.next_poll(delay)
            with contextlib.suppress(*options.StepFailed):  # the next check will tell
                state = await workflow.execute_local_activity_method(
                    ChannelCalls.check_refund, refund, **options.CHANNEL_POLL
                )
        if state.status == RefundStatus.FAILED:
            raise ApplicationError(
                state.failure_reason or "refund refused", type=REFUND_REFUSED, non_retryable=True
            )
        return state

    # -- late payments ---------------------------------------------------------

    async def _refund_late_payments(self) -> None:
        """Give back any payment that arrived for an order no longer waiting for one."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not await self._refund_inbox():
                return

    async def _refund_inbox(self) -> bool:
        """Refund the payments queued in the inbox that are not the order's; False when
        there were none."""
        late = unjudged_payments(self._inbox, self._seen_txn_ids)
        self._inbox.clear()
        if late:
            self._drop_poll_timer()
        for signal in late:
            assert signal.channel_txn_id is not None
            # Marked only on an order that meets a repeat: no event on any other.
            if already_judged(signal, self._seen_txn_ids) and workflow.patched(
                ONE_GIVE_BACK_PER_PAYMENT
            ):
                continue  # a repeat of a notice given back a moment ago
            if triage_late(signal, self._order.payment_attempt) is NoticeRole.FOR_REPLACED_ATTEMPT:
                await self._give_back_replaced(signal)
                continue
            self._seen_txn_ids.add(signal.channel_txn_id)
            await self._give_back(signal)
        return bool(late)

    async def _give_back_replaced(self, signal: PaymentSignal) -> None:
        """A payment of an attempt a modification replaced is never the order's payment:
        refunded like a late one when it is what that attempt asked, flagged otherwise."""
        if triage_replaced(signal, self._seen_txn_ids) is not NoticeRole.REPLACED_PAYMENT:
            return  # a decline or refund notice, or a payment judged before
        assert signal.channel_txn_id is not None
        self._seen_txn_ids.add(signal.channel_txn_id)
        attempt = attempt_of(signal)
        asked = self._replaced_attempts.get(attempt)
        problem = "no such attempt" if asked is None else payment_mismatch(asked, signal)
        if problem is not None:
            await self._flag_for_review(f"payment of replaced attempt {attempt}: {problem}")
            return
        await self._give_back(signal)

    async def _give_back(self, signal: PaymentSignal) -> None:
        """Refund a payment the order does not keep (a refusal is flagged for ops)."""
        assert signal.channel_txn_id is not None
        late = LatePayment(
            order_id=self._order.order_id,
            channel=self._channel_of(signal.attempt),
            channel_txn_id=signal.channel_txn_id,
            amount=signal.amount,
            currency=signal.currency,
            payment_reference=self._reference_of(signal.attempt),
        )
        if await give_back_late_payment(late, self._refund, self._flag_for_review) is not None:
            self._steps.append("refund_late_payment")
