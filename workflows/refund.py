"""RefundWorkflow: one durable refund, from the ask to the money back with the buyer.

    reserve (rules + ledger: parts -> refunds in flight) -> ask the channel
    -> await its notification, or query it at growing intervals
    -> succeeded: post it (in flight -> out of clearing) | failed: the money goes back

The workflow id is `refund-{refund id}`, and the refund id is the channel's
idempotency key, so a repeated request joins the same workflow and the channel
never refunds twice. An unknown outcome is resolved by asking the channel,
never by guessing; there is no timeout: a refund ends succeeded or failed.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.errors import REFUND_REJECTED
    from activities.refund_records import RefundRecords
    from channels.base import RefundState
    from channels.base import RefundStatus as ChannelRefundStatus
    from domain.refunds import (
        RefundAcceptance,
        RefundAsk,
        RefundFailure,
        RefundNotice,
        RefundStatus,
        RefundTicket,
        RefundView,
    )
    from workflows import options


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, ask: RefundAsk) -> None:
        self._ask = ask
        self._status: RefundStatus | None = None
        self._ticket: RefundTicket | None = None
        self._failure_reason: str | None = None
        self._rejection: tuple[str | None, str | None] = (None, None)
        self._notices: list[RefundNotice] = []

    @workflow.run
    async def run(self, ask: RefundAsk) -> RefundView:
        if not await self._reserve():
            return self.view()
        outcome = await self._await_outcome(await self._ask_channel())
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

    async def _await_outcome(self, state: RefundState) -> RefundState:
        """Wait for a final state: the notification, or a query when it is slow to come."""
        delay = self._ask.polling.first_refund_check
        while state.status == ChannelRefundStatus.PENDING:
            try:
                await workflow.wait_condition(lambda: bool(self._notices), timeout=delay)
            except TimeoutError:
                state = await self._query(state)
                delay = self._ask.polling.next_poll(delay)
                continue
            notice = self._notices.pop(0)
            status = (
                ChannelRefundStatus.SUCCEEDED if notice.succeeded else ChannelRefundStatus.FAILED
            )
            state = state.model_copy(
                update={"status": status, "failure_reason": notice.failure_reason}
            )
        return state

    async def _query(self, state: RefundState) -> RefundState:
        try:
            queried: RefundState = await workflow.execute_local_activity_method(
                ChannelCalls.query_refund, self._accepted, **options.CHANNEL_POLL
            )
        except options.StepFailed:
            return state  # the next query or the notification will tell
        return queried
