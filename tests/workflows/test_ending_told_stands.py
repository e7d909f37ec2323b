"""An ending the saga told stands, even when the workflow task that told it is lost.

The step that closes an unpaid order writes `closed` and tells the buyer and the merchant
(a local activity, run inside the workflow task). If that task is then lost, the saga is
replayed from before it and may decide anew: a payment's notice that landed meanwhile (a
buyer paying a stale QR code after the close) is then taken as the order's payment, and
the order told closed completes. make chaos found it so (a worker too slow for its task
timeout); here a payment's notice landing as the saga completes loses the task (the
server refuses the completion: UNHANDLED_COMMAND). A worker of the test's own, on the
real Temporal server, database and sandbox, holds the closing write once it committed
until the notice is in the history, which opens that window on purpose.

With two workers the race has another order: the worker of the closing try goes silent
before its write, another worker takes the payment, and the stale write lands last. Its
test pauses the first worker's link to Temporal (tests/pausable_link.py).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from api.services.order_creation import notify_url
from db.tables import Refund, WebhookEvent
from domain.keys import order_workflow_id
from domain.pricing import OrderLine, price_order
from domain.saga import SAGA_VERSION, OrderInput
from settings import Settings
from tests.conftest import System
from tests.support import create_merchant, get_order, order_refunds, pay, wait_for
from tests.workflows.conftest import CutOffWorker, OwnWorker
from worker import built_worker
from workflows.order import OrderWorkflow

PAYABLE = 7498


def _order(settings: Settings, merchant_id: str) -> OrderInput:
    """What the API would start for a 1 s payment window at Alipay."""
    lines = [OrderLine(sku="tea-001", name="Oolong", quantity=2, unit_amount=3749)]
    return OrderInput(
        order_id=f"ord_{secrets.token_hex(12)}",
        merchant_id=merchant_id,
        channel="alipay",
        priced=price_order(lines, "CNY", None, datetime.now(UTC)),
        channel_fee_rate=settings.channel_fee_rates["alipay"],
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=1,
        polling=settings.poll,
        auto_complete_seconds=0,
        notify_url=notify_url(settings, "alipay"),
        saga_version=SAGA_VERSION,
    )


async def _history(handle: WorkflowHandle[Any, Any]) -> list[EventType.ValueType]:
    return [event.event_type async for event in handle.fetch_history_events()]


async def _notice_taken(sandbox: httpx.AsyncClient, order_id: str) -> bool:
    """The API answered the channel's notice, so its signal is at the server (buffered
    there, out of the history, while a workflow task runs)."""
    response = await sandbox.get(f"/control/payments/{order_id}/deliveries")
    response.raise_for_status()
    return any(delivery["accepted"] for delivery in response.json())


async def closing_task_lost_to_a_payment(
    own_worker: OwnWorker, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> tuple[OrderInput, WorkflowHandle[Any, Any]]:
    """An order closed on its timeout whose closing task is lost to a payment's notice
    (also the recorded history of that path: tests/workflows/record_histories)."""
    order = _order(own_worker.settings, await create_merchant(api))
    handle = await own_worker.client.start_workflow(
        OrderWorkflow.run,
        order,
        id=order_workflow_id(order.order_id),
        task_queue=own_worker.settings.task_queue,
        task_timeout=timedelta(seconds=10),  # the hold below never outlasts the task
    )
    await asyncio.wait_for(own_worker.held.holding.wait(), timeout=20)
    told = await get_order(api, order.order_id)
    assert told["status"] == "closed"  # what the buyer and the merchant were told

    # The buyer pays the closed order's stale QR code; its notice reaches the saga while
    # the task that closed the order is still running, and the task is lost.
    await pay(sandbox, order.order_id, force=True)
    await wait_for(lambda: _notice_taken(sandbox, order.order_id), bool, "the notice taken")
    own_worker.held.release.set()
    return order, handle


async def test_a_payment_noticed_as_the_closing_task_is_lost_goes_back_and_the_order_stays_closed(
    own_worker: OwnWorker, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    order, handle = await closing_task_lost_to_a_payment(own_worker, api, sandbox)
    view = await asyncio.wait_for(handle.result(), timeout=30)
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in await _history(handle)  # it was lost
    assert (view.status, view.close_reason) == ("closed", "payment_timeout")
    assert (await get_order(api, order.order_id))["status"] == "closed"
    with Session(system.engine) as session:
        refunds = session.exec(select(Refund).where(Refund.order_id == order.order_id)).all()
        events = session.exec(
            select(WebhookEvent.type).where(WebhookEvent.order_id == order.order_id)
        ).all()
    assert [(r.reason, r.amount, r.status) for r in refunds] == [
        ("late_payment", PAYABLE, "succeeded")
    ]
    assert list(events) == ["order.closed"]  # never told it was paid


async def test_a_stale_closing_write_never_lands_on_an_order_another_worker_paid(
    cut_off_worker: CutOffWorker, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    """The other order of the race: the closing task's worker goes silent before its write
    (a process paused, a network cut), the task times out, and a second worker, replaying,
    takes a payment that landed meanwhile and completes the order. The first worker then
    wakes and its stale write runs: it must not close the paid order."""
    stale = cut_off_worker
    order = _order(stale.settings, await create_merchant(api))
    async with built_worker(stale.settings) as second:  # reaches Temporal directly
        handle = await second.client.start_workflow(
            OrderWorkflow.run,
            order,
            id=order_workflow_id(order.order_id),
            task_queue=stale.settings.task_queue,
            task_timeout=timedelta(seconds=2),
        )
        await asyncio.wait_for(stale.held.holding.wait(), timeout=20)
        stale.link.pause()  # closed at the channel, its write not yet run, and silent
        await pay(sandbox, order.order_id, force=True)
        await wait_for(lambda: _notice_taken(sandbox, order.order_id), bool, "the notice taken")
        async with second.worker:
            view = await asyncio.wait_for(handle.result(), timeout=30)
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in await _history(handle)
        assert view.status == "completed"

    # It wakes: its write runs before it hears from Temporal that its task is gone (heard
    # first, the run would be evicted and the write never tried).
    stale.held.release.set()
    refusal = await asyncio.wait_for(stale.held.ran, timeout=20)  # the stale write ran
    stale.link.resume()
    assert (await get_order(api, order.order_id))["status"] == "completed"
    assert refusal is not None and "completed" in str(refusal)
    with Session(system.engine) as session:
        events = session.exec(
            select(WebhookEvent.type).where(WebhookEvent.order_id == order.order_id)
        ).all()
    assert list(events) == ["order.paid"]  # never told it was closed
    assert order_refunds(system.engine, order.order_id) == []
