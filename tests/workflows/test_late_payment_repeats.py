"""A late payment's notice that comes twice in one batch is given back once.

Channels resend notices, and two copies can reach the saga between two of its workflow
tasks. Here they queue while the saga waits for an earlier late payment's refund (the
sandbox keeps it pending), so both are in the inbox when the saga next looks.
"""

from __future__ import annotations

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from channels.base import NotificationKind
from domain.keys import late_payment_refund_id, order_workflow_id, saga_refund_workflow_id
from domain.saga import OrderView, PaymentSignal
from tests.support import create_merchant, create_order, pay, wait_for, wait_status
from workflows.order import OrderWorkflow

LATE = 100  # each late payment, well within what the order's payment can refund


def _late_notice(merchant_id: str, txn_id: str) -> PaymentSignal:
    """A paid notice of the order's current attempt, as the API signals one."""
    return PaymentSignal(
        source=f"notification:{txn_id}",
        kind=NotificationKind.PAYMENT_SUCCEEDED.value,
        channel_txn_id=txn_id,
        amount=LATE,
        currency="CNY",
        merchant_id=merchant_id,
    )


def _children_started(events: list[HistoryEvent], child_id: str) -> int:
    return sum(
        1
        for event in events
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        and event.start_child_workflow_execution_initiated_event_attributes.workflow_id == child_id
    )


def _repeat_child(order_id: str) -> str:
    return saga_refund_workflow_id(late_payment_refund_id(order_id, "late-twice"))


async def _events(handle: WorkflowHandle[OrderWorkflow, OrderView]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


async def repeat_late_notice(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> tuple[str, WorkflowHandle[OrderWorkflow, OrderView]]:
    """A paid order in its receipt hold gets a late payment (its refund kept pending),
    then two copies of another one's notice; returns once the second is being refunded."""
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, auto_complete_seconds=3600)
    order_id = str(order["id"])
    await pay(sandbox, order_id)
    await wait_status(api, order_id, "awaiting_receipt")
    handle = temporal.get_workflow_handle(order_workflow_id(order_id), result_type=OrderView)
    behaviour = f"/control/refund-behaviour/{order_id}"
    assert (await sandbox.post(behaviour, json={"mode": "pending"})).status_code == 200

    first_refund = late_payment_refund_id(order_id, "late-first")
    first_child = saga_refund_workflow_id(first_refund)
    await handle.signal(OrderWorkflow.payment_notification, _late_notice(merchant_id, "late-first"))
    await wait_for(
        lambda: _events(handle), lambda e: _children_started(e, first_child) == 1, "first refund"
    )
    repeated = _late_notice(merchant_id, "late-twice")  # queued while the first refund waits
    await handle.signal(OrderWorkflow.payment_notification, repeated)
    await handle.signal(OrderWorkflow.payment_notification, repeated)
    assert (await sandbox.post(behaviour, json={"mode": "succeed"})).status_code == 200

    async def complete_first() -> httpx.Response:  # once the child has asked the sandbox
        return await sandbox.post(f"/control/refunds/{first_refund}/complete")

    await wait_for(
        complete_first, lambda r: r.status_code == 200, "the first refund at the channel"
    )
    repeat = _repeat_child(order_id)
    await wait_for(
        lambda: _events(handle), lambda e: _children_started(e, repeat) >= 1, "the repeat's refund"
    )
    return order_id, handle


async def test_a_repeated_late_notice_in_one_batch_is_given_back_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    order_id, handle = await repeat_late_notice(api, sandbox, temporal)
    assert (await api.post(f"/v1/orders/{order_id}/confirm-receipt")).status_code == 200
    view = await handle.result()
    assert view.refunded_amount == 2 * LATE
    assert view.steps_done.count("refund_late_payment") == 2
    assert _children_started(await _events(handle), _repeat_child(order_id)) == 1
