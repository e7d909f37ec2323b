"""RefundWorkflow: one durable refund, from the ask to the money back with the buyer.

    reserve (rules + ledger: parts -> refunds in flight) -> ask the channel
    -> await its notification, or query it at growing intervals
    -> succeeded: post it (in flight -> out of clearing) | failed: the money goes back

The workflow id is `refund-{refund id}`, and the refund id is the channel's
idempotency key, so a repeated request joins the same workflow and the channel
never refunds twice. An unknown outcome is resolved by asking the channel,
never by guessing; there is no timeout: a refund ends succeeded or failed.

A refund the channel keeps pending (for weeks, even) is queried at most every
few minutes; after `polls_per_run` queries the workflow continues as new with
its ticket, its next interval and the notices not yet judged, so its history
stays bounded while the query, the ask and the API's update keep answering.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.refund_records import RefundRecords
    from channels.base import RefundState
    from channels.base import RefundStatus as ChannelRefundStatus
    from domain.failures import REFUND_REJECTED
    from domain.refunds import (
        RefundAcceptance,
        RefundAsk,
        RefundFailure,
        RefundNotice,
        RefundStatus,
        RefundTicket,
        RefundView,
        RefundWait,
    )
    from workflows import options


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, ask: RefundAsk) -> None:
        self._ask = ask.model_copy(update={"waiting": None})  # as the API asked it
        waiting = ask.waiting  # a run continued from an earlier one: still pending
        self._status: RefundStatus | None = RefundStatus.PENDING if waiting else None
        self._ticket: RefundTicket | None = waiting.ticket if waiting else None
        self._failure_reason: str | None = None
        self._rejection: tuple[str | None, str | None] = (None, None)
        self._notices: list[RefundNotice] = list(waiting.notices) if waiting else []

    @workflow.run
    async def run(self, ask: RefundAsk) -> RefundView:
        if ask.waiting is None:
            if not await self._reserve():
                return self.view()
            state = await self._ask_channel()
            delay = self._ask.polling.first_refund_check
        else:
            state = self._still_pending()
            delay = timedelta(milliseconds=ask.waiting.next_check_ms)
        outcome = await self._await_outcome(state, delay)
        refund_id = self._accepted.refund_id
        if outcome.status == ChannelRefundStatus.SUCCEEDED:
            await workflow.execute_local_activity_method(
                RefundRecords.complete_refund, refund_id, **options.DB_MUST_FINISH
            )
            self._status = RefundStatus.SUCCEEDED
        else:
            self._failure_reason = outcome.failure_reason or "refused by the channel"
            failure = RefundFailure(refund_id=refund_id, reason=self._failure_reason)
            await workflow.execute_local_activity_method(
                RefundRecords.fail_refund, failure, **options.DB_MUST_FINISH
            )
            self._status = RefundStatus.FAILED
        return self.view()

    @workflow.query
    def view(self) -> RefundView:
        code, param = self._rejection
        return RefundView(
            refund_id=self._ask.refund_id,
            order_id=self._ask.order_id,
            status=self._status,
            amount=self._ticket.amount if self._ticket else None,
            currency=self._ticket.currency if self._ticket else None,
            failure_reason=self._failure_reason,
            rejection_code=code,
            rejection_param=param,
        )

    @workflow.query
    def ask(self) -> RefundAsk:
        return self._ask

    @workflow.signal
    def refund_notification(self, notice: RefundNotice) -> None:
        self._notices.append(notice)

    @workflow.update
    async def await_acceptance(self, request: RefundAcceptance) -> RefundView:
        await workflow.wait_condition(lambda: self._status is not None)
        return self.view()

    @property
    def _accepted(self) -> RefundTicket:
        assert self._ticket is not None, "the refund was not accepted"
        return self._ticket

    async def _reserve(self) -> bool:
        try:
            self._ticket = await workflow.execute_local_activity_method(
                RefundRecords.reserve_refund, self._ask, **options.DB_WRITE
            )
        except options.StepFailed as error:
            failure = error.cause if isinstance(error.cause, ApplicationError) else error
            if not isinstance(failure, ApplicationError) or failure.type != REFUND_REJECTED:
                raise
            code, param = (*failure.details, None, None)[:2]
            self._rejection = (code, param)
            self._failure_reason = failure.message
            self._status = RefundStatus.REJECTED
            return False
        self._status = RefundStatus.PENDING
        return True

    async def _ask_channel(self) -> RefundState:
        """A regular activity, not a local one: scheduling it ends the workflow task, so the
        API's update gets its answer now rather than after the channel has been asked."""
        state: RefundState = await workflow.execute_activity_method(
            ChannelCalls.request_refund, self._accepted, **options.CHANNEL_MUST_FINISH
        )
        return state

    async def _await_outcome(self, state: RefundState, delay: timedelta) -> RefundState:
        """Wait for a final state: the notification, or a query when it is slow to come."""
        polls = 0
        while state.status == ChannelRefundStatus.PENDING:
            long_run = polls >= self._ask.polling.polls_per_run
            if (long_run or workflow.info().is_continue_as_new_suggested()) and not self._notices:
                await self._continue_waiting(delay)
            try:
                await workflow.wait_condition(lambda: bool(self._notices), timeout=delay)
            except TimeoutError:
                state = await self._query(state)
                delay = self._ask.polling.next_poll(delay)
                polls += 1
                continue
            notice = self._notices.pop(0)
            status = (
                ChannelRefundStatus.SUCCEEDED if notice.succeeded else ChannelRefundStatus.FAILED
            )
            state = state.model_copy(
                update={"status": status, "failure_reason": notice.failure_reason}
            )
        return state

    async def _continue_waiting(self, delay: timedelta) -> None:
        """Continue as new, still pending. A notice that arrives while this task completes
        makes the server refuse the completion; the task then runs again with the notice
        queued, and it is judged here or carried over."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        waiting = RefundWait(
            ticket=self._accepted,
            next_check_ms=delay // timedelta(milliseconds=1),
            notices=tuple(self._notices),
        )
        workflow.continue_as_new(self._ask.model_copy(update={"waiting": waiting}))

    def _still_pending(self) -> RefundState:
        ticket = self._accepted
        return RefundState(
            refund_id=ticket.refund_id,
            order_id=ticket.order_id,
            status=ChannelRefundStatus.PENDING,
            amount=ticket.amount,
            currency=ticket.currency,
        )

    async def _query(self, state: RefundState) -> RefundState:
        try:
            queried: RefundState = await workflow.execute_local_activity_method(
                ChannelCalls.query_refund, self._accepted, **options.CHANNEL_POLL
            )
        except options.StepFailed:
            return state  # the next query or the notification will tell
        return queried
