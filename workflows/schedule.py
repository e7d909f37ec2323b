"""The daily settlement Schedule: T+1, at `settlement_hour_utc`, for the day before.

Created by the worker at start if it does not exist (one per task queue, so
several stacks can share a Temporal server). Runs that would overlap are
skipped, and a run missed while the server was down is caught up once.
Operators pause, trigger or backfill it in the Temporal UI or through the API.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from domain.settlement import SettlementRunInput
from settings import Settings
from workflows.settlement import SettlementRunWorkflow


def settlement_schedule_id(task_queue: str) -> str:
    return f"daily-settlement-{task_queue}"


def daily_schedule(action: ScheduleActionStartWorkflow, hour_utc: int) -> Schedule:
    """`action` every day at `hour_utc`:00 UTC; an overlapping run is skipped, and a run
    missed while the server was down is caught up once."""
    return Schedule(
        action=action,
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(hour_utc)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                )
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> None:
    # Already there from an earlier start: keep it, with any change operators made.
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(schedule_id, schedule)


def settlement_schedule(settings: Settings) -> Schedule:
    action = ScheduleActionStartWorkflow(
        SettlementRunWorkflow.run,
        # No day: the run settles the day before its scheduled time.
        SettlementRunInput(polling=settings.poll),
        id=f"settlement-run-scheduled-{settings.task_queue}",
        task_queue=settings.task_queue,
        task_timeout=settings.workflow_task_timeout,
    )
    return daily_schedule(action, settings.settlement_hour_utc)


async def ensure_settlement_schedule(client: Client, settings: Settings) -> None:
    await ensure_schedule(
        client, settlement_schedule_id(settings.task_queue), settlement_schedule(settings)
    )
