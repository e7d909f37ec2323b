"""An order keeps the steps of the saga version it was started with, on today's worker.

The API starts every order with `domain.saga.SAGA_VERSION`; an order an API from before
this deploy started (version 2) is still waiting for its payment when the new worker takes
it over, and must finish with version 2's steps (its history so far has them: any other
step would not replay). The recorded histories prove each version's steps replay; here a
live order of each version runs on the real worker from its start to its completion.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from api.services.order_creation import notify_url
from api.services.records import new_id
from domain.keys import order_workflow_id
from domain.pricing import OrderLine, price_order
from domain.saga import SAGA_VERSION, CheckoutRequest, OrderInput
from tests.conftest import System
from tests.support import create_merchant, pay, settings_from_env, wait_status
from workflows.order import OrderWorkflow

STEPS = {
    2: ["record_order", "create_payment", "record_and_settle", "notify_and_release"],
    3: ["record_and_create_payment", "fulfil_payment"],
}


def _order(system: System, merchant_id: str, version: int, currency: str = "CNY") -> OrderInput:
    """What the API of that version would have started the saga with."""
    settings = settings_from_env(system.env)
    lines = [OrderLine(sku="tea-001", name="Oolong tea", quantity=2, unit_amount=3749)]
    return OrderInput(
        order_id=new_id("ord"),
        merchant_id=merchant_id,
        channel="alipay",
        merchant_name="Tea shop",
        priced=price_order(lines, currency, None, datetime.now(UTC)),
        channel_fee_rate=settings.channel_fee_rates["alipay"],
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=600,
        notify_url=notify_url(settings, "alipay"),
        polling=settings.poll,
        auto_complete_seconds=0,
        saga_version=version,
    )


def _local_activities(history_json: str) -> list[str]:
    """The steps an order's history recorded, in order (one marker each)."""
    steps = []
    for event in json.loads(history_json)["events"]:
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_local_activity":
            [payload] = marker["details"]["data"]["payloads"]
            steps.append(json.loads(base64.b64decode(payload["data"]))["activity_type"])
    return steps


def test_today_s_version_is_the_last_one_here() -> None:
    assert max(STEPS) == SAGA_VERSION


@pytest.mark.parametrize("version", sorted(STEPS))
async def test_an_order_finishes_with_the_steps_of_its_version(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    version: int,
) -> None:
    order = _order(system, await create_merchant(api), version)
    handle = await temporal.start_workflow(
        OrderWorkflow.run,
        order,
        id=order_workflow_id(order.order_id),
        task_queue=system.task_queue,
    )
    opened = await handle.execute_update(OrderWorkflow.await_checkout, CheckoutRequest())
    assert opened.checkout is not None
    await pay(sandbox, order.order_id)
    done = await wait_status(api, order.order_id, "completed")
    assert done["payment"]["status"] == "paid"

    view = await handle.result()
    assert view.released_amount is not None and view.released_amount > 0
    steps = ("record_order", "create_payment", "record_payment", "settle", "notify")
    assert view.steps_done == (*steps, "release_funds")  # the same steps, however grouped
    history = await handle.fetch_history()
    assert _local_activities(history.to_json()) == STEPS[version]


async def test_a_payment_the_channel_refuses_closes_a_recorded_order(
    api: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """Version 3's first step records the order, then creates its payment: when the channel
    refuses it for good (here Alipay, asked for Bahraini dinars, which the API would have
    refused first) the order is still recorded (the API reads it) and closes as the
    channel's failure, as when creating the payment was a step of its own."""
    order = _order(system, await create_merchant(api), SAGA_VERSION, currency="BHD")
    handle = await temporal.start_workflow(
        OrderWorkflow.run,
        order,
        id=order_workflow_id(order.order_id),
        task_queue=system.task_queue,
    )
    view = await handle.result()
    assert view.status == "closed" and view.close_reason == "channel_unavailable"
    assert view.checkout is None and "create_payment" not in view.steps_done
    closed = await wait_status(api, order.order_id, "closed")
    assert closed["close_reason"] == "channel_unavailable"
    history = await handle.fetch_history()
    steps = _local_activities(history.to_json())
    assert steps[:2] == ["record_and_create_payment", "record_order"], steps
