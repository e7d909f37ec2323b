"""SagaRefundWorkflow: a saga's own refund (compensation, late payment), asked and awaited.

    ask the channel once -> check at growing intervals until the refund is final
    -> succeeded: its state | failed: RefundRefused (non-retryable)

The order saga runs it as a child, with the refund id as its workflow id
(`saga-refund-{refund id}`), so a refund the channel keeps pending for weeks polls
in this workflow's history, not the order's: after `polls_per_run` checks it
continues as new with its next interval, and every history stays bounded.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.errors import REFUND_REFUSED
    from channels.base import RefundState, RefundStatus
    from domain.keys import saga_refund_workflow_id
    from domain.saga import SagaRefundInput
    from workflows import options


# The child ended with no answer from the channel (ops terminated or cancelled it): the
# saga treats it as a failed refund, which parks a compensation for ops and flags a late
# payment for review, rather than failing the order.
REFUND_WAIT_ENDED = "RefundWaitEnded"


async def refund_in_child(wait: SagaRefundInput) -> RefundState:
    """Run the refund's wait as a child of the calling saga; a refusal comes back as the
    failure the saga's steps report (ActivityError or ApplicationError, options.StepFailed)."""
    try:
        return await workflow.execute_child_workflow(
            SagaRefundWorkflow.run,
            wait,
            id=saga_refund_workflow_id(wait.refund.refund_id),
            task_timeout=workflow.info().task_timeout,  # the saga's own, as configured
        )
    except ChildWorkflowError as error:
        if isinstance(error.cause, ActivityError | ApplicationError):
            raise error.cause from error
        message = f"the refund's wait ended without the channel's answer: {error.cause or error}"
        raise ApplicationError(message, type=REFUND_WAIT_ENDED, non_retryable=True) from error


@workflow.defn
class SagaRefundWorkflow:
    @workflow.run
    async def run(self, wait: SagaRefundInput) -> RefundState:
        state: RefundState | None = None
        if wait.next_check_ms is None:
            # A regular activity, as in the order saga before: the channel is asked once.
            state = await workflow.execute_activity_method(
                ChannelCalls.refund_once, wait.refund, **options.CHANNEL_MUST_FINISH
            )
            delay = wait.polling.first_refund_check
        else:
            delay = timedelta(milliseconds=wait.next_check_ms)
        polls = 0
        while state is None or state.status == RefundStatus.PENDING:
            if polls >= wait.polling.polls_per_run:
                next_check_ms = delay // timedelta(milliseconds=1)
                workflow.continue_as_new(wait.model_copy(update={"next_check_ms": next_check_ms}))
            await workflow.sleep(delay)
            delay = wait.polling.next_poll(delay)
            polls += 1
            with contextlib.suppress(*options.StepFailed):  # the next check will tell
                state = await workflow.execute_local_activity_method(
                    ChannelCalls.check_refund, wait.refund, **options.CHANNEL_POLL
                )
        if state.status == RefundStatus.FAILED:
            raise ApplicationError(
                state.failure_reason or "refund refused", type=REFUND_REFUSED, non_retryable=True
            )
        return state
