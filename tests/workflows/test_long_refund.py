"""A refund the channel keeps pending for weeks: its history stays bounded.

At the production maximum interval (5 minutes) a month of polling is about 8,600
queries, some 50,000 events: Temporal's hard limit. Here the refund polls as often
as the server fires timers (about once a second) and continues as new every two
polls; each run's history must stay under a bound that does not grow with the wait,
while the refund still ends when the channel answers, and answers the API's query
and ask across the runs.
"""

from __future__ import annotations

import httpx
from temporalio.client import Client

from api.services.refund_requests import refund_id_for
from domain.keys import refund_workflow_id
from domain.polling import PollTimings
from domain.refunds import RefundAsk, RefundStatus, RefundView, Requester
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, wait_for, wait_status
from tests.workflows.run_histories import run_histories, timers_fired
from workflows.refund import RefundWorkflow

POLLS_PER_RUN = 2
RUNS = 3  # the refund keeps pending through this many runs before the channel answers
# A run: the start (about 10 events), then per poll a timer and a query (about 6 events).
EVENTS_PER_RUN_BOUND = 20 + 8 * POLLS_PER_RUN


async def test_a_refund_pending_for_weeks_continues_as_new_with_bounded_histories(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api))
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    fast = PollTimings(refund_first_ms=100, max_interval_ms=100, polls_per_run=POLLS_PER_RUN)
    ask = RefundAsk(
        refund_id=refund_id_for(order["id"], "pending-for-weeks"),
        order_id=order["id"],
        requested_by=Requester.OPERATOR,
        amount=700,
        polling=fast,
    )
    handle = await temporal.start_workflow(
        RefundWorkflow.run, ask, id=refund_workflow_id(ask.refund_id), task_queue=system.task_queue
    )
    assert handle.first_execution_run_id is not None

    async def runs() -> int:
        return len(await run_histories(temporal, handle.id, handle.first_execution_run_id or ""))

    await wait_for(runs, lambda n: n >= RUNS, f"{RUNS} runs of the pending refund")
    # The latest run still answers as the refund, and as the ask the API compares.
    latest = temporal.get_workflow_handle(handle.id, result_type=RefundView)
    assert (await latest.query(RefundWorkflow.view)).status == RefundStatus.PENDING
    assert await latest.query(RefundWorkflow.ask) == ask

    completed = await sandbox.post(f"/control/refunds/{ask.refund_id}/complete")
    assert completed.status_code == 200, completed.text
    assert (await latest.result()).status == RefundStatus.SUCCEEDED

    histories = await run_histories(temporal, handle.id, handle.first_execution_run_id)
    sizes = [len(events) for events in histories]
    assert all(size <= EVENTS_PER_RUN_BOUND for size in sizes), sizes
    polls = sum(timers_fired(events) for events in histories)
    assert polls >= POLLS_PER_RUN * (RUNS - 1), (polls, sizes)
    refund = await api.get(f"/v1/refunds/{ask.refund_id}")
    assert refund.json()["status"] == "succeeded", refund.text
