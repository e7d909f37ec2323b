"""The daily reconciliation Schedule: at `reconciliation_hour_utc`, yesterday's bills.

Created by the worker at start if it does not exist (one per task queue), like the
settlement Schedule (workflows.schedule): overlapping runs are skipped, a run missed
while the server was down is caught up once. Operators pause, trigger or backfill it
in the Temporal UI, or start any past channel-day through the API.
"""

from __future__ import annotations

from temporalio.client import Client, Schedule, ScheduleActionStartWorkflow

from domain.reconciliation import ReconciliationDay
from settings import Settings
from workflows.reconciliation import ReconciliationDayWorkflow
from workflows.schedule import daily_schedule, ensure_schedule


def reconciliation_schedule_id(task_queue: str) -> str:
    return f"daily-reconciliation-{task_queue}"


def reconciliation_schedule(settings: Settings) -> Schedule:
    day = ReconciliationDay(
        channels=settings.reconciliation_channels, wait=settings.reconciliation_bill_wait
    )
    action = ScheduleActionStartWorkflow(
        ReconciliationDayWorkflow.run,
        day,  # no day: the run takes the one before its scheduled time
        id=f"reconciliation-day-scheduled-{settings.task_queue}",
        task_queue=settings.task_queue,
        task_timeout=settings.workflow_task_timeout,
    )
    return daily_schedule(action, settings.reconciliation_hour_utc)


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> None:
    await ensure_schedule(
        client, reconciliation_schedule_id(settings.task_queue), reconciliation_schedule(settings)
    )
