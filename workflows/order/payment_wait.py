"""Collecting the payment: create it at the channel (or wait for the buyer to choose
one), then wait for the channel's word, from its notices in the inbox or from our own
queries at growing intervals, until the buyer pays, the channel declines, the buyer
cancels or the payment window closes.

An unpaid ending closes the payment at the channel first: if the buyer paid at the
last moment the close fails and the order is paid after all. What each notice and
each query's finding means is decided in domain.inbox and domain.payment_outcome.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.order.failures import failure_type
from workflows.order.modifications import Modifications
from workflows.order.state import signal_from_state
from workflows.order.versions import patched_or_v2, since_v2

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.order_opening import OrderOpening
    from activities.order_records import OrderRecords
    from channels.base import CloseResult, NotificationKind, PaymentState, PaymentStatus
    from domain.failures import COUPON_REJECTED, PAYMENT_NOT_FOUND
    from domain.inbox import NoticeRole, triage_while_waiting
    from domain.order_status import OrderStatus
    from domain.payment_outcome import PaymentOutcome, WaitEnd, outcome_of_poll
    from domain.saga import PaymentSignal
    from workflows import options

# A poll that finds the payment closed at the channel ends the wait (it used to wait on).
POLL_SEES_CLOSED = "poll-sees-channel-close"


class PaymentWait(Modifications):
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
        if self._cancel is not None:
            ended = WaitEnd.CANCELLED
        else:
            ended = await self._create_and_await_payment()
        if ended is WaitEnd.PAID:
            return True  # the poll's timer runs on: cancelled only if the saga waits again
        self._drop_poll_timer()
        if self._order.channel and await self._close_at_channel():
            return True  # the buyer paid before the close reached the channel
        if ended is WaitEnd.CANCELLED:
            assert self._cancel is not None
            await self._finish(OrderStatus.CANCELLED, self._cancel.reason)
        else:
            assert ended.close_reason is not None
            await self._finish(OrderStatus.CLOSED, ended.close_reason)
        return False

    async def _create_and_await_payment(self) -> WaitEnd:
        timeout = timedelta(seconds=self._order.payment_timeout_seconds)
        if not self._order.channel:  # the buyer chooses on the hosted checkout
            return await self._await_choice_and_payment(timeout)
        if self._opens_at_once():  # the order's first step created it, or could not
            if self._checkout is None:
                return WaitEnd.CHANNEL_FAILED
        else:
            try:
                self._checkout = await workflow.execute_local_activity_method(
                    ChannelCalls.create_payment, self._order, **options.channel_create(timeout)
                )
            except options.StepFailed:
                return WaitEnd.CHANNEL_FAILED
        self._steps.append("create_payment")
        self._status = OrderStatus.AWAITING_PAYMENT  # create_payment wrote the projection
        self._publish(self._status)
        self._awaiting_payment = True  # modifications are taken from here on
        first_poll = self._order.polling.first_payment_poll(timeout)
        ended = await self._await_payment(workflow.now() + timeout, first_poll)
        self._stop_modifications()
        return ended

    def _opens_at_once(self) -> bool:
        """Orders of version 3 with a channel and something to pay: the order is recorded
        and its payment created in one step (`_record_and_create_payment`)."""
        return self._order.opens_at_once

    async def _record_and_create_payment(self) -> None:
        """The order's first step for orders of version 3 (one history event where two
        were). The coupon's refusal fails it with nothing stored, as recording alone
        does. Any other failure (the channel refused the payment, or it stayed down for
        the payment window) leaves no checkout: the order is recorded on its own (a
        no-op once the step did it; retried until the database takes it, as before) and
        ends as the channel's failure, as when creating the payment failed. (A database
        down for the whole window ends so too; version 2 opened a window after it.)"""
        timeout = timedelta(seconds=self._order.payment_timeout_seconds)
        try:
            self._checkout = await workflow.execute_local_activity_method(
                OrderOpening.record_and_create_payment,
                self._order,
                **options.record_and_create(timeout),
            )
        except options.StepFailed as error:
            if failure_type(error) == COUPON_REJECTED:
                raise
            await self._db(OrderRecords.record_order, self._order)

    async def _await_choice_and_payment(self, timeout: timedelta) -> WaitEnd:
        """No channel yet: the order awaits payment, and the buyer's choice opens it."""
        await self._set_status(OrderStatus.AWAITING_PAYMENT)
        self._awaiting_payment = True  # choices (and then modifications) are taken
        ended = await self._await_payment(workflow.now() + timeout, timeout)
        self._stop_modifications()
        return ended

    async def _await_payment(self, deadline: datetime, poll_delay: timedelta) -> WaitEnd:
        """Wait for the channel's word; query it at growing intervals so nothing is lost."""
        while True:
            ended = await self._take_inbox()
            if ended is None and self._cancel is not None:
                ended = WaitEnd.CANCELLED
            if ended is not None:
                return ended
            if self._choice is not None or self._modification is not None:
                ended = await self._apply_change()
                if ended is not None:
                    return ended
                self._drop_poll_timer()  # the first poll comes anew for the new attempt
                poll_delay = self._order.polling.first_payment_poll(
                    timedelta(seconds=self._order.payment_timeout_seconds)
                )
                continue
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                return WaitEnd.TIMEOUT
            # No method chosen yet: nothing to ask a channel about when the wait runs out.
            if not await self._news_within(min(poll_delay, remaining)) and self._order.channel:
                await self._poll_channel()
                poll_delay = self._order.polling.next_poll(poll_delay)

    def _has_news(self) -> bool:
        """A notice, a cancel or a change arrived."""
        return (
            bool(self._inbox)
            or self._cancel is not None
            or self._modification is not None
            or self._choice is not None
        )

    async def _news_within(self, timeout: timedelta) -> bool:
        """Wait until a notice, a cancel or a change arrives: False if none did in time."""
        if since_v2(self._order):
            return await self._news_before_poll(timeout)
        try:  # orders of version 1: a timer per wait, cancelled when news comes first
            await workflow.wait_condition(self._has_news, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def _news_before_poll(self, delay: timedelta) -> bool:
        """Wait until news arrives or the poll's timer fires: False when the timer fired.

        News leaves the timer running, and the next wait takes the same one: a payment
        that comes before the first poll cancels no timer (a TIMER_CANCELED event), and
        an order completed in that same task drops it unfired.
        """
        if self._poll_timer is None or self._poll_timer.done():
            self._poll_timer = asyncio.create_task(workflow.sleep(delay))
        timer = self._poll_timer
        await workflow.wait_condition(lambda: self._has_news() or timer.done())
        if self._has_news():
            return True
        self._poll_timer = None
        return False

    async def _take_inbox(self) -> WaitEnd | None:
        """Judge queued signals: PAID, DECLINED, or None to keep waiting."""
        while self._inbox:
            signal = self._inbox.pop(0)
            role = triage_while_waiting(signal, self._order.payment_attempt)
            if role is NoticeRole.FOR_REPLACED_ATTEMPT:
                await self._give_back_replaced(signal)  # a modification replaced its attempt
            elif role is NoticeRole.DECLINE:
                return WaitEnd.DECLINED
            elif role is NoticeRole.PAYMENT and await self._accept(signal):
                return WaitEnd.PAID
            # NOT_A_PAYMENT: refund notices; refunds are confirmed by their own activity
        return None

    async def _poll_channel(self) -> None:
        try:
            state: PaymentState = await workflow.execute_local_activity_method(
                ChannelCalls.query_payment, self._payment_ref(), **options.CHANNEL_POLL
            )
        except options.StepFailed:
            return  # the next poll, the notification or the timeout will tell
        outcome = outcome_of_poll(state.status)
        if outcome in (PaymentOutcome.PAID, PaymentOutcome.DECLINED) or (
            # Closed at the channel while we wait (Alipay's TRADE_CLOSED after a decline,
            # WeChat Pay's CLOSED or REVOKED, a canceled card intent): the buyer can no
            # longer pay it, and its lost notification would have said "declined".
            outcome is PaymentOutcome.CLOSED_AT_CHANNEL
            and patched_or_v2(POLL_SEES_CLOSED, self._order)
        ):
            self._inbox.append(signal_from_state(state, "query", self._order.payment_attempt))

    async def _close_at_channel(self) -> bool:
        """Close the payment; True when the channel says the buyer paid first."""
        try:
            result: CloseResult = await workflow.execute_local_activity_method(
                ChannelCalls.close_payment, self._payment_ref(), **options.CHANNEL_MUST_FINISH
            )
        except options.StepFailed as error:
            if failure_type(error) != PAYMENT_NOT_FOUND:
                # The channel refused the close: the payment may still be payable there.
                await self._flag_for_review(f"close refused by the channel: {error}")
            return False  # a late payment is refunded when it is reported
        self._steps.append("close_payment")
        if result.closed or result.payment.status != PaymentStatus.PAID:
            return False
        attempt = self._order.payment_attempt
        return await self._accept(signal_from_state(result.payment, "close", attempt))
