"""Daily settlement (T+1): a run per day, a child workflow per merchant.

    SettlementRunWorkflow(day)            started by the daily Schedule, or by ops to backfill
      -> prepare the page                 a page of merchants at once, set-wise, in one
                                          transaction (a statement per merchant and currency,
                                          each with its payout entry): a regular activity
      -> MerchantSettlementWorkflow       id settlement-{day}-{merchant}: one per (merchant, day)
           its statements and payouts (handed by the run; prepared by itself, the same
           way, when started alone or by a run from before PREPARED_PAGES)
           -> ask the bank for each payout -> await its notification or query it
           -> paid: money leaves in transit | refused: it returns to available, with the reason

Statements and payouts are keyed by (merchant, day, currency) in the database, so a
crash half-way resumes where it stopped and never pays twice. Every payout a run
prepares is asked for: the page's result is in the run's history before any child
starts (a retried workflow task replays it), and the page is every merchant after the
cursor with a statement to make or a payout of the day the bank has not answered, so a
retried page step (or a later run of the day) hands over the same payouts. A merchant
whose settlement of the day already exists is signalled them (`hand_over`: it asks the
bank only for those it does not drive already) or, when that settlement has ended, gets
a new run of it. Progress is on the run's query and its current details in the Temporal
UI.

A day's run started by the Schedule looks back, after its last page: each of the
`LOOK_BACK_DAYS` days before with a payout the bank has not answered is run again (a run
of its own, for those payouts only, which hands them over as above). A payout whose run
ended between its page's commit and its merchant's start (terminated, timed out) is asked
for by the next day's run at the latest; one the bank is slow to answer is driven already,
and the run of its day changes nothing.

No history grows with the day's size or the bank's delay: a run starts the children of
one page of merchants (`merchants_per_run`, in id order) and continues as new after the
last of them, carrying the day's counts, so its query answers for the whole day; a
merchant's settlement that keeps polling a pending payout continues as new after
`polls_per_run` polls, carrying its statements, its outcomes so far and the payouts it
still waits for (or was handed and has not asked for yet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.payout_calls import PayoutCalls
    from activities.settlement_records import SettlementRecords
    from channels.bank import PayoutState, PayoutStatus
    from domain.keys import merchant_settlement_workflow_id, unanswered_payouts_run_id
    from domain.polling import PollTimings
    from domain.settlement import (
        MerchantDay,
        MerchantSettlementView,
        MerchantsPage,
        PayoutOrder,
        PayoutOutcome,
        PayoutsWait,
        PendingPayout,
        PreparedPage,
        PreparedStatements,
        SettlementProgress,
        SettlementRunInput,
    )
    from workflows import options

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
CONCURRENT_MERCHANTS = 10
HAND_OVER_TRIES = 3  # signal, else start: a race with its end may need another turn
# Patches: a run started before them replays and ends on the code it started with.
PAGED_RUNS = "settlement-run-pages"  # a page of merchants a run, then continue as new
BOUNDED_PAYOUT_POLLS = "payout-polls-per-run"  # continue as new after polls_per_run polls
# The run prepares its page in one transaction and hands each child its payouts.
PREPARED_PAGES = "settlement-run-prepares-pages"  # not "settlement-prepared-pages": that
# id was a removed version's, whose runs prepared their page in a local activity
LOOKS_BACK = "settlement-run-looks-back"  # a scheduled run runs earlier days again
LOOK_BACK_DAYS = 7  # how far: older unanswered payouts are the PayoutsUnansweredTooLong alert's


@workflow.defn
class SettlementRunWorkflow:
    @workflow.init
    def __init__(self, request: SettlementRunInput) -> None:
        self._progress = request.progress or SettlementProgress(day=request.day)

    @workflow.run
    async def run(self, request: SettlementRunInput) -> SettlementProgress:
        day = request.day or self._yesterday()
        scope = request.model_copy(update={"day": day})
        if not workflow.patched(PAGED_RUNS):
            return await self._settle_all(scope, day)
        # Asked before the first command, as PAGED_RUNS is: both markers land in the run's
        # first workflow task, so only runs started on this code take the prepared path.
        if workflow.patched(PREPARED_PAGES):
            if request.day is None and workflow.patched(LOOKS_BACK):
                looks_back = request.look_back_days or LOOK_BACK_DAYS
                scope = scope.model_copy(update={"look_back_days": looks_back})
            return await self._settle_prepared_page(scope, day)
        page: MerchantsPage = await workflow.execute_local_activity_method(
            SettlementRecords.merchants_page, scope, **options.DB_MUST_FINISH
        )
        self._begin_page(day, page.remaining)
        await self._settle_batches(page.merchant_ids, day, request.polling)
        if page.remaining > len(page.merchant_ids):
            await self._continue_after(scope, page.merchant_ids[-1])
        return self._progress

    async def _settle_prepared_page(
        self, scope: SettlementRunInput, day: date
    ) -> SettlementProgress:
        """The page prepared in one step (its result is in this history before any child
        starts), then every merchant of it handed its statements and unanswered payouts."""
        page: PreparedPage = await workflow.execute_activity_method(
            SettlementRecords.prepare_page, scope, **options.DB_PAGE_MUST_FINISH
        )
        self._begin_page(day, page.remaining)
        prepared = {p.merchant_id: p for p in page.merchants}
        await self._settle_batches(list(prepared), day, scope.polling, prepared)
        if page.through is not None and page.remaining > len(page.merchants):
            await self._continue_after(scope, page.through)
        if scope.look_back_days:
            await self._run_earlier_days_again(scope, day)
        return self._progress

    async def _run_earlier_days_again(self, scope: SettlementRunInput, day: date) -> None:
        """Each day of the last `look_back_days` with a payout the bank has not answered,
        run again for those payouts only (of this run's merchants, if it names them):
        started and left to run on (ABANDON). The days unread after a few tries are left to
        the next day's run."""
        try:
            days: list[date] = await workflow.execute_local_activity_method(
                SettlementRecords.days_to_run_again, scope, **options.DB_TRY_TODAY
            )
        except options.StepFailed:
            # A local activity that fails for good raises its ApplicationError (or its
            # timeout) itself, not an ActivityError: caught as options.StepFailed.
            workflow.logger.warning("could not read the days with payouts unanswered")
            return
        started: list[date] = []
        looking_back = workflow.info().workflow_id
        for earlier in days:
            again = SettlementRunInput(
                day=earlier,
                merchant_ids=scope.merchant_ids,
                polling=scope.polling,
                merchants_per_run=scope.merchants_per_run,
                unanswered_only=True,
            )
            try:
                await workflow.start_child_workflow(
                    SettlementRunWorkflow.run,
                    again,
                    id=unanswered_payouts_run_id(looking_back, earlier),
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    task_timeout=workflow.info().task_timeout,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
                started.append(earlier)
            except WorkflowAlreadyStartedError:
                continue  # a run of this id, still running (a rerun of ours): it does it
        if started:
            workflow.logger.info("ran again the days with payouts unanswered: %s", started)
        self._progress = self._progress.model_copy(update={"days_run_again": tuple(started)})
        self._show()

    def _begin_page(self, day: date, remaining: int) -> None:
        done = self._progress.settled + self._progress.already_settled
        self._progress = self._progress.model_copy(
            update={"day": day, "merchants": done + remaining}
        )
        self._show()

    async def _continue_after(self, scope: SettlementRunInput, after: str) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            scope.model_copy(update={"after": after, "progress": self._progress})
        )

    async def _settle_all(self, scope: SettlementRunInput, day: date) -> SettlementProgress:
        """Runs started before PAGED_RUNS: every merchant in this one history."""
        merchants: list[str] = await workflow.execute_local_activity_method(
            SettlementRecords.merchants_to_settle, scope, **options.DB_MUST_FINISH
        )
        self._progress = SettlementProgress(day=day, merchants=len(merchants))
        self._show()
        await self._settle_batches(merchants, day, scope.polling)
        return self._progress

    async def _settle_batches(
        self,
        merchants: Sequence[str],
        day: date,
        polling: PollTimings,
        prepared: Mapping[str, PreparedStatements] | None = None,
    ) -> None:
        prepared = prepared or {}
        for start in range(0, len(merchants), CONCURRENT_MERCHANTS):
            batch = merchants[start : start + CONCURRENT_MERCHANTS]
            await asyncio.gather(*(self._settle(m, day, polling, prepared.get(m)) for m in batch))

    @workflow.query
    def progress(self) -> SettlementProgress:
        return self._progress

    async def _settle(
        self,
        merchant_id: str,
        day: date,
        polling: PollTimings,
        prepared: PreparedStatements | None = None,
    ) -> None:
        merchant_day = MerchantDay(
            merchant_id=merchant_id, day=day, polling=polling, prepared=prepared
        )
        try:
            await self._settle_merchant(merchant_day, WorkflowIDReusePolicy.REJECT_DUPLICATE)
            self._count(settled=1)
        except WorkflowAlreadyStartedError:
            # An earlier run settles (or settled) this merchant-day; payouts prepared since
            # are handed over to it, or to a new run of it.
            handed = await self._hand_over(merchant_day) if prepared and prepared.payouts else ""
            self._count(
                settled=int(handed == "started"),
                already=int(handed in ("", "signalled")),
                not_handed=int(handed == "not_handed_over"),
            )

    async def _settle_merchant(
        self, merchant_day: MerchantDay, reuse: WorkflowIDReusePolicy
    ) -> None:
        """A merchant handed its prepared statements is only started: its payouts are
        already in transit, so it asks the bank for them at once, whatever the rest of the
        page waits for, and lives on if this run ends (ABANDON). One that prepares its own
        (runs started before the pages) is awaited, as it was."""
        child_id = merchant_settlement_workflow_id(merchant_day.merchant_id, merchant_day.day)
        task_timeout = workflow.info().task_timeout  # the run's own, as configured
        if merchant_day.prepared is None:
            await workflow.execute_child_workflow(
                MerchantSettlementWorkflow.run,
                merchant_day,
                id=child_id,
                id_reuse_policy=reuse,
                task_timeout=task_timeout,
            )
            return
        await workflow.start_child_workflow(
            MerchantSettlementWorkflow.run,
            merchant_day,
            id=child_id,
            id_reuse_policy=reuse,
            task_timeout=task_timeout,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )

    async def _hand_over(self, merchant_day: MerchantDay) -> str:
        """Payouts this run prepared (or found unanswered) for a merchant whose settlement
        of the day already exists: signalled to it while it runs (it drives those it does
        not drive already), else driven by a new run of it. "signalled", "started", or
        "not_handed_over"."""
        assert merchant_day.prepared is not None
        settlement: workflow.ExternalWorkflowHandle[MerchantSettlementWorkflow]
        settlement = workflow.get_external_workflow_handle_for(
            MerchantSettlementWorkflow.run,
            merchant_settlement_workflow_id(merchant_day.merchant_id, merchant_day.day),
        )
        for _ in range(HAND_OVER_TRIES):
            try:
                await settlement.signal(MerchantSettlementWorkflow.hand_over, merchant_day.prepared)
                return "signalled"
            except FailureError:
                pass  # it has ended: no one asks the bank for these now
            try:
                await self._settle_merchant(merchant_day, WorkflowIDReusePolicy.ALLOW_DUPLICATE)
                return "started"
            except WorkflowAlreadyStartedError:
                continue  # another run of the day started it meanwhile: tell that one
        # Neither signalled nor started, again and again: not a race. Failing the task would
        # fail it again on every replay (the same answers are in the history); the payouts
        # stay unanswered, so a later run of the day lists the merchant again; the run's
        # progress counts it apart, for someone to start one.
        workflow.logger.error(
            "could not hand over payouts to %s's settlement", merchant_day.merchant_id
        )
        return "not_handed_over"

    def _count(self, settled: int = 0, already: int = 0, not_handed: int = 0) -> None:
        p = self._progress
        self._progress = p.model_copy(
            update={
                "settled": p.settled + settled,
                "already_settled": p.already_settled + already,
                "not_handed_over": p.not_handed_over + not_handed,
            }
        )
        self._show()

    def _show(self) -> None:
        p = self._progress
        stuck = f"; {p.not_handed_over} not handed over" if p.not_handed_over else ""
        again = ", ".join(str(d) for d in p.days_run_again)
        workflow.set_current_details(
            f"day {p.day}: {p.settled + p.already_settled} of {p.merchants} merchants settled"
            + stuck
            + (f"; ran again: {again}" if again else "")
        )

    def _yesterday(self) -> date:
        """The day before the scheduled start (or before now, when started by hand)."""
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        return ((scheduled or workflow.now()) - timedelta(days=1)).date()


@workflow.defn
class MerchantSettlementWorkflow:
    @workflow.init
    def __init__(self, merchant_day: MerchantDay) -> None:
        self._polling = merchant_day.polling
        waiting = merchant_day.waiting
        self._view = MerchantSettlementView(
            merchant_id=merchant_day.merchant_id,
            day=merchant_day.day,
            statement_ids=waiting.statement_ids if waiting else (),
            payouts=waiting.finished if waiting else (),
            pending_payouts=tuple(p.order.payout_id for p in waiting.pending) if waiting else (),
        )
        notices = waiting.notices if waiting else ()
        self._notices: dict[str, PayoutOutcome] = {n.payout_id: n for n in notices}
        # Payouts a later run of the day handed over, not yet asked for; and every payout
        # this settlement drives or drove, so one handed over twice is driven once.
        self._handed: list[PayoutOrder] = list(waiting.handed) if waiting else []
        self._known = {*self._view.pending_payouts, *(p.payout_id for p in self._view.payouts)}
        self._known.update(p.payout_id for p in self._handed)
        handed_ids = tuple(p.payout_id for p in self._handed)
        self._update(pending_payouts=self._view.pending_payouts + handed_ids)
        self._driving: list[asyncio.Future[PayoutOutcome | PendingPayout]] = []
        self._polls = 0  # bank queries in this run
        self._bounded = False  # whether this run continues as new after polls_per_run

    @workflow.run
    async def run(self, merchant_day: MerchantDay) -> MerchantSettlementView:
        self._bounded = workflow.patched(BOUNDED_PAYOUT_POLLS)
        if merchant_day.waiting is None:
            waits = [self._pay(payout) for payout in await self._prepare(merchant_day)]
        else:
            waits = [
                self._await_final(p.order, timedelta(milliseconds=p.next_poll_ms))
                for p in merchant_day.waiting.pending
            ]
        self._drive(waits)
        ends = await self._all_driven()
        finished = self._view.payouts + tuple(e for e in ends if isinstance(e, PayoutOutcome))
        pending = tuple(e for e in ends if isinstance(e, PendingPayout))
        if pending:
            await self._continue_waiting(merchant_day, finished, pending)
        self._update(payouts=finished, pending_payouts=())
        return self.view()

    @workflow.query
    def view(self) -> MerchantSettlementView:
        return self._view

    @workflow.signal
    def payout_notification(self, outcome: PayoutOutcome) -> None:
        self._notices[outcome.payout_id] = outcome

    @workflow.signal
    def hand_over(self, prepared: PreparedStatements) -> None:
        """A later run of the day prepared these (or found them unanswered): this settlement
        asks the bank for those it does not drive already."""
        new = [p for p in prepared.payouts if p.payout_id not in self._known]
        self._known.update(p.payout_id for p in new)
        self._handed.extend(new)
        self._update(
            statement_ids=tuple(sorted({*self._view.statement_ids, *prepared.statement_ids})),
            pending_payouts=self._view.pending_payouts + tuple(p.payout_id for p in new),
        )

    def _drive(self, waits: Sequence[Awaitable[PayoutOutcome | PendingPayout]]) -> None:
        self._driving.extend(asyncio.ensure_future(wait) for wait in waits)

    async def _all_driven(self) -> list[PayoutOutcome | PendingPayout]:
        """Every payout's end in this run, those handed over meanwhile included."""
        while True:
            await workflow.wait_condition(
                lambda: bool(self._handed) or all(d.done() for d in self._driving)
            )
            if not self._handed:
                return [d.result() for d in self._driving]
            handed, self._handed = self._handed, []
            self._drive([self._pay(payout) for payout in handed])

    def _update(self, **changes: object) -> None:
        self._view = self._view.model_copy(update=changes)

    async def _prepare(self, merchant_day: MerchantDay) -> list[PayoutOrder]:
        """Its statements and payouts: as the day's run handed them (prepared with its page,
        the bank not asked yet for those), else prepared here."""
        if merchant_day.prepared is not None:
            payouts = list(merchant_day.prepared.payouts)
            statements = list(merchant_day.prepared.statement_ids)
        else:
            payouts = await workflow.execute_local_activity_method(
                SettlementRecords.prepare_statements, merchant_day, **options.DB_MUST_FINISH
            )
            statements = await workflow.execute_local_activity_method(
                SettlementRecords.day_statements, merchant_day, **options.DB_MUST_FINISH
            )
        payouts = [p for p in payouts if p.payout_id not in self._known]  # handed over first
        self._known.update(p.payout_id for p in payouts)
        self._update(
            statement_ids=tuple(sorted({*self._view.statement_ids, *statements})),
            pending_payouts=self._view.pending_payouts + tuple(p.payout_id for p in payouts),
        )
        return payouts

    async def _pay(self, payout: PayoutOrder) -> PayoutOutcome | PendingPayout:
        state: PayoutState = await workflow.execute_activity_method(
            PayoutCalls.send_payout, payout, **options.CHANNEL_MUST_FINISH
        )
        if state.status != PayoutStatus.PENDING:
            return await self._record(state.outcome())
        return await self._await_final(payout, self._polling.first_payout_poll)

    async def _await_final(
        self, payout: PayoutOrder, delay: timedelta
    ) -> PayoutOutcome | PendingPayout:
        """The bank's notification, or its answer to a query when the notification is late;
        still pending once this run has polled enough: carried over to the next run."""
        while True:
            if self._run_is_long() and payout.payout_id not in self._notices:
                return PendingPayout(order=payout, next_poll_ms=delay // timedelta(milliseconds=1))
            try:
                await workflow.wait_condition(
                    lambda: payout.payout_id in self._notices, timeout=delay
                )
                return await self._record(self._notices[payout.payout_id])
            except TimeoutError:
                delay = self._polling.next_poll(delay)
                self._polls += 1
                try:
                    state: PayoutState = await workflow.execute_local_activity_method(
                        PayoutCalls.query_payout, payout, **options.CHANNEL_POLL
                    )
                except options.StepFailed:
                    continue  # the next query or the notification will tell
                if state.status != PayoutStatus.PENDING:
                    return await self._record(state.outcome())

    def _run_is_long(self) -> bool:
        if not self._bounded:
            return False  # started before BOUNDED_PAYOUT_POLLS: polls in this one history
        suggested = workflow.info().is_continue_as_new_suggested()
        return self._polls >= self._polling.polls_per_run or suggested

    async def _record(self, outcome: PayoutOutcome) -> PayoutOutcome:
        await workflow.execute_local_activity_method(
            SettlementRecords.record_payout, outcome, **options.DB_MUST_FINISH
        )
        return outcome

    async def _continue_waiting(
        self,
        merchant_day: MerchantDay,
        finished: tuple[PayoutOutcome, ...],
        pending: tuple[PendingPayout, ...],
    ) -> None:
        """Continue as new with the payouts still pending. A notice that arrives while this
        task completes makes the server refuse the completion; the task then runs again
        with the notice queued, and it is carried over."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        waiting_for = {p.order.payout_id for p in pending}
        waiting = PayoutsWait(
            statement_ids=self._view.statement_ids,
            finished=finished,
            pending=pending,
            notices=tuple(n for n in self._notices.values() if n.payout_id in waiting_for),
            handed=tuple(self._handed),
        )
        workflow.continue_as_new(merchant_day.model_copy(update={"waiting": waiting}))
