"""ChannelSweepWorkflow: post what a channel paid into our bank for one day.

    what we booked for the day -> ask the bank for the channel's transfers (at growing
    intervals, until every currency we booked has one) -> post each (bank +net,
    channel_fee +fees, clearing -(gross - refunds)) -> the channel's fees beside ours

A transfer the channel converted (the card's USD paid to us in CNY) covers the currency
it took; posting it first realises each quoted order's FX at the channel's rate
(`db.sweeps.realise_converted`).

Its id, channel-sweep-{channel}-{day} (`domain.keys.channel_sweep_workflow_id`), makes a
channel's day swept once however often it is started (by the daily Schedule, or by an
operator: `python -m api.manage sweep-channel`); each posting is keyed by the bank's
transfer id as well. A fee that differs from ours, or a booked currency the channel
never paid over within `polls_left` checks, is in the result and sets NeedsReview.
After `polls_per_run` checks it continues as new, so a late channel costs a bounded
history.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.sweep_calls import SweepCalls
    from activities.sweep_records import SweepRecords
    from channels.bank import ChannelTransfer, ChannelTransfers
    from domain.keys import channel_sweep_workflow_id
    from domain.reconciliation import channel_day
    from domain.sweeps import (
        BookedDay,
        ChannelDay,
        ChannelSweepInput,
        ChannelSweepResult,
        ChannelSweepsDue,
    )
    from workflows import options
    from workflows.search_attributes import NEEDS_REVIEW

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn
class ChannelSweepWorkflow:
    @workflow.run
    async def run(self, sweep: ChannelSweepInput) -> ChannelSweepResult:
        day = ChannelDay(channel=sweep.channel, day=sweep.day)
        booked: BookedDay = await workflow.execute_local_activity_method(
            SweepRecords.booked_day, day, **options.DB_MUST_FINISH
        )
        transfers = await self._await_transfers(sweep, day, booked)
        outcomes = [
            await workflow.execute_local_activity_method(
                SweepRecords.post_sweep, transfer, **options.DB_MUST_FINISH
            )
            for transfer in transfers
        ]
        swept = {t.taken_currency for t in transfers}
        result = ChannelSweepResult(
            channel=sweep.channel,
            day=sweep.day,
            transfers=outcomes,
            missing_currencies=[c for c in booked.currencies if c not in swept],
        )
        if result.needs_review:
            workflow.logger.warning(
                "channel %s day %s needs review: fees differ %s, not swept %s",
                sweep.channel,
                sweep.day,
                result.fee_differences,
                result.missing_currencies,
            )
            workflow.upsert_search_attributes([NEEDS_REVIEW.value_set(True)])
        return result

    async def _await_transfers(
        self, sweep: ChannelSweepInput, day: ChannelDay, booked: BookedDay
    ) -> list[ChannelTransfer]:
        """The channel's transfers once every booked currency has one, or when the checks
        allowed run out (what arrived by then)."""
        if sweep.next_check_ms is None:
            delay = sweep.polling.first_payout_poll
        else:
            delay = timedelta(milliseconds=sweep.next_check_ms)
        polls, left = 0, sweep.polls_left
        while True:
            answer: ChannelTransfers = await workflow.execute_activity_method(
                SweepCalls.incoming_transfers, day, **options.CHANNEL_MUST_FINISH
            )
            swept = {t.taken_currency for t in answer.transfers}
            if all(c in swept for c in booked.currencies) or left == 0:
                return answer.transfers
            if polls >= sweep.polling.polls_per_run:
                next_check_ms = delay // timedelta(milliseconds=1)
                workflow.continue_as_new(
                    sweep.model_copy(update={"next_check_ms": next_check_ms, "polls_left": left})
                )
            await workflow.sleep(delay)
            delay = sweep.polling.next_poll(delay)
            polls += 1
            left = None if left is None else left - 1


@workflow.defn
class ChannelSweepsDueWorkflow:
    """Started daily by the sweep Schedule: each channel's day that is due (T+lag before
    the scheduled time, in the channel's business days) gets its ChannelSweepWorkflow,
    which outlives this one."""

    @workflow.run
    async def run(self, due: ChannelSweepsDue) -> list[str]:
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        now = scheduled or workflow.now()
        started: list[str] = []
        for channel, lag in sorted(due.lag_days.items()):
            # T+lag in the channel's own days: the day its bill covers (Beijing's for
            # the wallets), ended by now whatever the hour.
            day = channel_day(channel, now) - timedelta(days=lag)
            sweep = ChannelSweepInput(
                channel=channel, day=day, polling=due.polling, polls_left=due.checks
            )
            try:
                await workflow.start_child_workflow(
                    ChannelSweepWorkflow.run,
                    sweep,
                    id=channel_sweep_workflow_id(channel, day),
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    task_timeout=workflow.info().task_timeout,
                )
            except WorkflowAlreadyStartedError:
                continue  # an operator (or an earlier run) swept that day
            started.append(channel_sweep_workflow_id(channel, day))
        return started
