"""The daily channel sweeps: a Schedule at `channel_sweep_hour_utc` that starts each
channel's sweep of the day that is due (`channel_sweep_lag_days`), and the operator's way
to sweep one channel's day by hand (`python -m api.manage sweep-channel`).

Created by the worker at start if it does not exist, like the settlement Schedule.
"""

from __future__ import annotations

from datetime import date

from temporalio.client import Client, Schedule, ScheduleActionStartWorkflow, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from domain.keys import channel_sweep_workflow_id
from domain.sweeps import ChannelSweepInput, ChannelSweepResult, ChannelSweepsDue
from settings import Settings
from workflows.channel_sweep import ChannelSweepsDueWorkflow, ChannelSweepWorkflow
from workflows.schedule import daily_schedule, ensure_schedule


def channel_sweep_schedule_id(task_queue: str) -> str:
    return f"daily-channel-sweeps-{task_queue}"


def channel_sweep_schedule(settings: Settings) -> Schedule:
    action = ScheduleActionStartWorkflow(
        ChannelSweepsDueWorkflow.run,
        ChannelSweepsDue(
            lag_days=settings.channel_sweep_lag_days,
            polling=settings.poll,
            checks=settings.channel_sweep_checks,
        ),
        id=f"channel-sweeps-scheduled-{settings.task_queue}",
        task_queue=settings.task_queue,
        task_timeout=settings.workflow_task_timeout,
    )
    return daily_schedule(action, settings.channel_sweep_hour_utc)


async def ensure_channel_sweep_schedule(client: Client, settings: Settings) -> None:
    await ensure_schedule(
        client, channel_sweep_schedule_id(settings.task_queue), channel_sweep_schedule(settings)
    )


async def start_channel_sweep(
    client: Client, settings: Settings, channel: str, day: date
) -> WorkflowHandle[ChannelSweepWorkflow, ChannelSweepResult]:
    """Sweep one channel's day: the running or finished sweep of that day if there is one."""
    return await client.start_workflow(
        ChannelSweepWorkflow.run,
        ChannelSweepInput(
            channel=channel,
            day=day,
            polling=settings.poll,
            polls_left=settings.channel_sweep_checks,
        ),
        id=channel_sweep_workflow_id(channel, day),
        task_queue=settings.task_queue,
        task_timeout=settings.workflow_task_timeout,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
