"""Reconciliation (对账): a channel's bill for a day against our records.

    ReconciliationWorkflow(channel, day)   id reconciliation-{channel}-{day}
      start the run (its row) -> download the bill, retried while not published
      -> match it (exceptions recorded) -> settle what a channel query can settle
      -> finish the run (counts)
    ReconciliationDayWorkflow              the daily Schedule: yesterday, every channel

A bill still missing at the deadline, or still corrupt after its attempts, is an
exception of its own (bill_not_ready, bill_corrupt) and the run finishes with it.
The run is one row per channel-day and every exception is keyed by what it is about,
so running a day again records nothing twice. The Temporal UI shows each run by its
search attributes (ReconChannel, ReconDay, ReconExceptions) and its current details.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation_records import (
        BILL_CORRUPT,
        ReconciliationRecords,
    )
    from domain.reconciliation import (
        AutoOutcome,
        BillFetched,
        BillProblem,
        BillWait,
        ChannelDay,
        DiscrepancyType,
        MatchOutcome,
        ReconciliationDay,
        ReconciliationInput,
        RunFinish,
        RunResult,
        reconciliation_workflow_id,
    )
    from workflows import options
    from workflows.search_attributes import RECON_CHANNEL, RECON_DAY, RECON_EXCEPTIONS

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
# Matching reads the whole day: minutes for millions of lines, never an hour.
_MATCH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(hours=1),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1)),
}
_CHANNEL_QUERY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=10),
}


def _download_options(wait: BillWait) -> dict[str, Any]:
    """Retried at doubling intervals up to the deadline; a corrupt bill stops earlier."""
    return {
        "start_to_close_timeout": timedelta(minutes=10),
        "schedule_to_close_timeout": timedelta(seconds=wait.deadline_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=wait.first_retry_seconds),
            maximum_interval=timedelta(seconds=wait.max_retry_seconds),
            backoff_coefficient=2.0,
        ),
    }


@workflow.defn
class ReconciliationWorkflow:
    @workflow.init
    def __init__(self, run: ReconciliationInput) -> None:
        self._stage = "starting"

    @workflow.query
    def stage(self) -> str:
        return self._stage

    @workflow.run
    async def run(self, run: ReconciliationInput) -> RunResult:
        workflow.upsert_search_attributes(
            [RECON_CHANNEL.value_set(run.channel), RECON_DAY.value_set(run.day.isoformat())]
        )
        channel_day = ChannelDay(channel=run.channel, day=run.day)
        await workflow.execute_activity_method(
            ReconciliationRecords.start_reconciliation, channel_day, **options.DB_MUST_FINISH
        )
        self._show("waiting for the bill")
        lines = 0
        fetched = await self._download(run)
        if fetched is not None:
            self._show(f"matching {fetched.lines} lines")
            matched: MatchOutcome = await workflow.execute_activity_method(
                ReconciliationRecords.match_bill, run, **_MATCH
            )
            lines = matched.bill_lines
            self._count(sum(matched.counts.values()))
            await self._resolve(matched.auto)
        result: RunResult = await workflow.execute_activity_method(
            ReconciliationRecords.finish_reconciliation,
            RunFinish(channel=run.channel, day=run.day, bill_lines=lines),
            **options.DB_MUST_FINISH,
        )
        self._count(result.exceptions)
        self._show(f"finished: {result.exceptions} exceptions, {result.auto_resolved} settled")
        return result

    async def _download(self, run: ReconciliationInput) -> BillFetched | None:
        """The bill, or None after recording why there is none."""
        try:
            fetched: BillFetched = await workflow.execute_activity_method(
                ReconciliationRecords.download_bill, run, **_download_options(run.wait)
            )
            return fetched
        except ActivityError as error:
            cause = error.cause
            corrupt = isinstance(cause, ApplicationError) and cause.type == BILL_CORRUPT
            kind = DiscrepancyType.BILL_CORRUPT if corrupt else DiscrepancyType.BILL_NOT_READY
            detail = str(cause.message if isinstance(cause, ApplicationError) else cause)
        problem = BillProblem(channel=run.channel, day=run.day, type=kind, detail=detail)
        await workflow.execute_activity_method(
            ReconciliationRecords.record_bill_problem, problem, **options.DB_MUST_FINISH
        )
        return None

    async def _resolve(self, exception_ids: tuple[str, ...]) -> None:
        """Ask the channel about each; one the channel cannot settle waits for an operator."""
        for done, exception_id in enumerate(exception_ids, start=1):
            self._show(f"settling {done} of {len(exception_ids)} by asking the channel")
            try:
                outcome: AutoOutcome = await workflow.execute_activity_method(
                    ReconciliationRecords.resolve_automatically, exception_id, **_CHANNEL_QUERY
                )
            except ActivityError:
                continue  # left open: the operator queue has it
            workflow.logger.info("exception %s: %s", exception_id, outcome.note)

    def _count(self, exceptions: int) -> None:
        workflow.upsert_search_attributes([RECON_EXCEPTIONS.value_set(exceptions)])

    def _show(self, stage: str) -> None:
        self._stage = stage
        workflow.set_current_details(stage)


@workflow.defn
class ReconciliationDayWorkflow:
    """Started by the daily Schedule: yesterday's run for every channel, side by side."""

    @workflow.run
    async def run(self, day_input: ReconciliationDay) -> list[str]:
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        # The schedule fires in the morning UTC, after China's day (UTC+8) has begun: the
        # day before by UTC is the day before in every channel's zone.
        day = day_input.day or ((scheduled or workflow.now()) - timedelta(days=1)).date()
        started = []
        for channel in day_input.channels:
            run = ReconciliationInput(channel=channel, day=day, wait=day_input.wait)
            try:
                await workflow.start_child_workflow(
                    ReconciliationWorkflow.run,
                    run,
                    id=reconciliation_workflow_id(channel, day),
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
                started.append(channel)
            except WorkflowAlreadyStartedError:
                pass  # an operator started it already
        return started
