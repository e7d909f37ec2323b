"""A compensation refund the channel keeps pending is awaited in a child workflow.

The order's own history would otherwise take a timer and a check per poll for as long
as the channel sits on the refund. The system's sagas continue as new after 300 polls;
this order is started as the API starts one (same input, same search attributes) but
with timings of its own, so its refund's child continues as new after every poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api.services.order_creation import notify_url
from api.services.records import new_id
from domain.keys import compensation_refund_id, order_workflow_id, saga_refund_workflow_id
from domain.order_status import OrderStatus
from domain.polling import PollTimings
from domain.pricing import OrderLine, price_order
from domain.saga import CheckoutRequest, OrderInput, OrderView
from tests.conftest import System
from tests.support import create_merchant, get_order, pay, settings_from_env, wait_for, wait_status
from tests.workflows.run_histories import run_histories, timers_fired
from workflows.order import OrderWorkflow
from workflows.search_attributes import MERCHANT_ID, ORDER_STATUS

POLLS_PER_RUN = 1
RUNS = 2  # the refund keeps pending through this many runs of the child
# A run: the start (about 10 events), then per poll a timer and a check (about 6 events).
EVENTS_PER_RUN_BOUND = 20 + 8 * POLLS_PER_RUN


def _order(system: System, merchant_id: str) -> OrderInput:
    settings = settings_from_env(system.env)
    lines = [OrderLine(sku="tea-001", name="Oolong tea", quantity=2, unit_amount=1999)]
    return OrderInput(
        order_id=new_id("ord"),
        merchant_id=merchant_id,
        channel="alipay",
        priced=price_order(lines, "CNY", None, datetime.now(UTC)),
        channel_fee_rate=settings.channel_fee_rates["alipay"],
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=60,
        notify_url=notify_url(settings, "alipay"),
        auto_complete_seconds=0,
        polling=PollTimings(
            payment_first_max_ms=1000,
            refund_first_ms=100,
            max_interval_ms=100,
            polls_per_run=POLLS_PER_RUN,
        ),
    )


def _configured_task_timeout(system: System) -> timedelta:
    return timedelta(seconds=float(system.env["PAYSAGA_WORKFLOW_TASK_TIMEOUT_SECONDS"]))


def _child_first_run(events: list[HistoryEvent], child_id: str) -> str | None:
    """The run id of the child `child_id` as the order's history recorded its start."""
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            execution = event.child_workflow_execution_started_event_attributes.workflow_execution
            if execution.workflow_id == child_id:
                return execution.run_id
    return None


@dataclass(frozen=True)
class PendingCompensation:
    order: OrderInput
    handle: WorkflowHandle[OrderWorkflow, OrderView]
    refund_id: str
    child_id: str
    child_first_run: str


async def pending_compensation(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> PendingCompensation:
    """An order of these timings, paid to a suspended merchant, whose compensation refund
    the sandbox keeps pending; returns once the refund's child has started."""
    merchant_id = await create_merchant(api)
    order = _order(system, merchant_id)
    handle = await temporal.start_workflow(
        OrderWorkflow.run,
        order,
        id=order_workflow_id(order.order_id),
        task_queue=system.task_queue,
        task_timeout=_configured_task_timeout(system),  # as the API's client sets it
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(ORDER_STATUS, OrderStatus.CREATED.value),
                SearchAttributePair(MERCHANT_ID, merchant_id),
            ]
        ),
    )
    await handle.execute_update(OrderWorkflow.await_checkout, CheckoutRequest())
    behaviour = f"/control/refund-behaviour/{order.order_id}"
    assert (await sandbox.post(behaviour, json={"mode": "pending"})).status_code == 200
    assert (await api.post(f"/v1/merchants/{merchant_id}/suspend")).status_code == 200
    await pay(sandbox, order.order_id)  # settlement is refused: the buyer is refunded

    refund_id = compensation_refund_id(order.order_id)
    child_id = saga_refund_workflow_id(refund_id)
    started = await wait_for(
        lambda: _events(handle),
        lambda e: _child_first_run(e, child_id) is not None,
        "the refund's child",
    )
    first_run = _child_first_run(started, child_id) or ""
    return PendingCompensation(order, handle, refund_id, child_id, first_run)


async def _events(handle: WorkflowHandle[OrderWorkflow, OrderView]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


async def test_a_pending_compensation_refund_polls_in_a_child_that_continues_as_new(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    pending = await pending_compensation(api, sandbox, system, temporal)
    order, handle, refund_id = pending.order, pending.handle, pending.refund_id
    child_id, first_run = pending.child_id, pending.child_first_run

    async def order_events() -> list[HistoryEvent]:
        return await _events(handle)

    async def child_runs() -> int:
        return len(await run_histories(temporal, child_id, first_run))

    await wait_for(child_runs, lambda n: n >= RUNS, f"{RUNS} runs of the refund's child")
    assert (await get_order(api, order.order_id))["status"] == "refunding"
    assert timers_fired(await order_events()) == 0  # the polls are the child's, not the order's
    described = await temporal.get_workflow_handle(child_id).describe()
    task_timeout = described.raw_description.execution_config.default_workflow_task_timeout
    assert task_timeout.ToTimedelta() == _configured_task_timeout(system)  # as every saga's

    completed = await sandbox.post(f"/control/refunds/{refund_id}/complete")
    assert completed.status_code == 200, completed.text
    refunded = await wait_status(api, order.order_id, "refunded")
    assert refunded["refunded_amount"] == order.priced.payable_amount
    assert (await handle.result()).status == OrderStatus.REFUNDED

    histories = await run_histories(temporal, child_id, first_run)
    sizes = [len(events) for events in histories]
    assert all(size <= EVENTS_PER_RUN_BOUND for size in sizes), sizes
    polls = sum(timers_fired(events) for events in histories)
    assert polls >= POLLS_PER_RUN * (RUNS - 1), (polls, sizes)
    assert timers_fired(await order_events()) == 0
