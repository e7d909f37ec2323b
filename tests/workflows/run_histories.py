"""Reading a workflow's whole chain of runs (continue-as-new) from the Temporal server."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client


async def run_histories(
    client: Client, workflow_id: str, first_run_id: str
) -> list[list[HistoryEvent]]:
    """The events of each run of `workflow_id`, from its first run along its continuations."""
    histories: list[list[HistoryEvent]] = []
    run_id: str | None = first_run_id
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [event async for event in handle.fetch_history_events()]
        histories.append(events)
        last = events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = attributes.new_execution_run_id if continued else None
    return histories


def timers_fired(events: list[HistoryEvent]) -> int:
    """How many timers fired in these events (a saga that polls: one per poll)."""
    return sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED)
