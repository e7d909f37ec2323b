"""Daily settlement (T+1): a run per day, a child workflow per merchant.

    SettlementRunWorkflow(day)            started by the daily Schedule, or by ops to backfill
      -> MerchantSettlementWorkflow       id settlement-{day}-{merchant}: one per (merchant, day)
           prepare statements (one per currency; each with its payout entry, in one transaction)
           -> ask the bank for each payout -> await its notification or query it
           -> paid: money leaves in transit | refused: it returns to available, with the reason

The child's id makes a (merchant, day) settle once however often the day is run:
a second run finds the child already started (or done) and counts the merchant as
settled. Statements and payouts are keyed by (merchant, day, currency) in the
database too, so a crash half-way resumes where it stopped and never pays twice.
Progress is on the run's query and its current details in the Temporal UI.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.payout_calls import PayoutCalls
    from activities.settlement_records import SettlementRecords
    from channels.bank import PayoutState, PayoutStatus
    from domain.keys import merchant_settlement_workflow_id
    from domain.polling import PollTimings
    from domain.settlement import (
        MerchantDay,
        MerchantSettlementView,
        PayoutOrder,
        PayoutOutcome,
        SettlementProgress,
        SettlementRunInput,
    )
    from workflows import options

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
CONCURRENT_MERCHANTS = 10


@workflow.defn
class SettlementRunWorkflow:
    def __init__(self) -> None:
        self._progress = SettlementProgress(day=None)

    @workflow.run
    async def run(self, request: SettlementRunInput) -> SettlementProgress:
        day = request.day or self._yesterday()
        scope = request.model_copy(update={"day": day})
        merchants: list[str] = await workflow.execute_local_activity_method(
            SettlementRecords.merchants_to_settle, scope, **options.DB_MUST_FINISH
        )
        self._progress = SettlementProgress(day=day, merchants=len(merchants))
        self._show()
        for start in range(0, len(merchants), CONCURRENT_MERCHANTS):
            batch = merchants[start : start + CONCURRENT_MERCHANTS]
            await asyncio.gather(
                *(self._settle(merchant, day, request.polling) for merchant in batch)
            )
        return self._progress

    @workflow.query
    def progress(self) -> SettlementProgress:
        return self._progress

    async def _settle(self, merchant_id: str, day: date, polling: PollTimings) -> None:
        try:
            await workflow.execute_child_workflow(
                MerchantSettlementWorkflow.run,
                MerchantDay(merchant_id=merchant_id, day=day, polling=polling),
                id=merchant_settlement_workflow_id(merchant_id, day),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                task_timeout=workflow.info().task_timeout,  # the run's own, as configured
            )
            self._count(settled=1)
        except WorkflowAlreadyStartedError:
            self._count(already=1)  # an earlier run settles (or settled) this merchant-day

    def _count(self, settled: int = 0, already: int = 0) -> None:
        p = self._progress
        self._progress = p.model_copy(
            update={"settled": p.settled + settled, "already_settled": p.already_settled + already}
        )
        self._show()

    def _show(self) -> None:
        p = self._progress
        workflow.set_current_details(
            f"day {p.day}: {p.settled + p.already_settled} of {p.merchants} merchants settled"
        )

    def _yesterday(self) -> date:
        """The day before the scheduled start (or before now, when started by hand)."""
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        return ((scheduled or workflow.now()) - timedelta(days=1)).date()


@workflow.defn
class MerchantSettlementWorkflow:
    def __init__(self) -> None:
        self._polling = PollTimings()
        self._view: MerchantSettlementView | None = None
        self._notices: dict[str, PayoutOutcome] = {}

    @workflow.run
    async def run(self, merchant_day: MerchantDay) -> MerchantSettlementView:
        self._polling = merchant_day.polling
        self._view = MerchantSettlementView(
            merchant_id=merchant_day.merchant_id, day=merchant_day.day
        )
        payouts: list[PayoutOrder] = await workflow.execute_local_activity_method(
            SettlementRecords.prepare_statements, merchant_day, **options.DB_MUST_FINISH
        )
        statements: list[str] = await workflow.execute_local_activity_method(
            SettlementRecords.day_statements, merchant_day, **options.DB_MUST_FINISH
        )
        self._update(
            statement_ids=tuple(statements), pending_payouts=tuple(p.payout_id for p in payouts)
        )
        outcomes = await asyncio.gather(*(self._pay(payout) for payout in payouts))
        self._update(payouts=tuple(outcomes), pending_payouts=())
        return self.view()

    @workflow.query
    def view(self) -> MerchantSettlementView:
        assert self._view is not None
        return self._view

    @workflow.signal
    def payout_notification(self, outcome: PayoutOutcome) -> None:
        self._notices[outcome.payout_id] = outcome

    def _update(self, **changes: object) -> None:
        assert self._view is not None
        self._view = self._view.model_copy(update=changes)

    async def _pay(self, payout: PayoutOrder) -> PayoutOutcome:
        state: PayoutState = await workflow.execute_activity_method(
            PayoutCalls.send_payout, payout, **options.CHANNEL_MUST_FINISH
        )
        outcome = await self._await_final(payout, state)
        await workflow.execute_local_activity_method(
            SettlementRecords.record_payout, outcome, **options.DB_MUST_FINISH
        )
        return outcome

    async def _await_final(self, payout: PayoutOrder, state: PayoutState) -> PayoutOutcome:
        """The bank's notification, or its answer to a query when the notification is late."""
        delay = self._polling.first_payout_poll
        while state.status == PayoutStatus.PENDING:
            try:
                await workflow.wait_condition(
                    lambda: payout.payout_id in self._notices, timeout=delay
                )
                return self._notices[payout.payout_id]
            except TimeoutError:
                delay = self._polling.next_poll(delay)
                try:
                    state = await workflow.execute_local_activity_method(
                        PayoutCalls.query_payout, payout, **options.CHANNEL_POLL
                    )
                except options.StepFailed:
                    continue  # the next query or the notification will tell
        return PayoutOutcome(
            payout_id=payout.payout_id,
            paid=state.status == PayoutStatus.PAID,
            bank_reference=state.bank_reference,
            failure_reason=state.failure_reason,
        )
