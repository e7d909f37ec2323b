"""Confirming receipt while the saga lags the database it wrote.

The step before the hold (notify_parties) writes `awaiting_receipt`; a worker killed
before its workflow task completes leaves a history that ends earlier, and the next
worker replays to there and runs the steps again. An update arriving then is judged by
that replayed state. Here a worker of the test's own, on the real Temporal server,
holds notify_parties (its stand-in) after "writing" the projection, which opens the same
window on purpose: the buyer confirms then, as the API would on reading the database.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest_asyncio
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateStage
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from channels.base import NotificationKind
from domain.order_status import OrderStatus
from domain.pricing import OrderLine, price_order
from domain.saga import (
    Checkout,
    CheckoutRequest,
    OrderInput,
    OrderRef,
    PaymentRecord,
    PaymentSignal,
    ReceiptConfirmation,
    StatusChange,
)
from domain.split import Split, split_payment
from tests.conftest import System
from workflows.order import OrderWorkflow

FEE, COMMISSION = Decimal("0.006"), Decimal("0.05")


@dataclass
class StandInSteps:
    """The saga's database and channel steps, answering at once, but notify_parties
    waits for `release` after it would have written awaiting_receipt."""

    projection_written: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    statuses: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="record_order")
        async def record_order(order: OrderInput) -> None:
            self.statuses.append("created")

        @activity.defn(name="create_payment")
        async def create_payment(order: OrderInput) -> Checkout:
            self.statuses.append("awaiting_payment")
            return Checkout(channel_payment_id=order.order_id, checkout_url="http://pay.test")

        @activity.defn(name="record_payment")
        async def record_payment(record: PaymentRecord) -> None:
            self.statuses.append("paid")

        @activity.defn(name="settle_order")
        async def settle_order(ref: OrderRef) -> Split:
            return split_payment(7498, FEE, COMMISSION)

        @activity.defn(name="notify_parties")
        async def notify_parties(ref: OrderRef) -> None:
            self.statuses.append("awaiting_receipt")
            self.projection_written.set()
            await self.release.wait()

        @activity.defn(name="release_funds")
        async def release_funds(ref: OrderRef) -> int:
            self.statuses.append("completed")
            return 7000

        @activity.defn(name="set_order_status")
        async def set_order_status(change: StatusChange) -> None:
            self.statuses.append(change.status.value)

        return [
            record_order,
            create_payment,
            record_payment,
            settle_order,
            notify_parties,
            release_funds,
            set_order_status,
        ]


@pytest_asyncio.fixture
async def steps_and_client(system: System) -> AsyncIterator[tuple[StandInSteps, Client, str]]:
    """A worker of the test's own (fresh task queue) running OrderWorkflow on stand-ins."""
    client = await Client.connect(system.temporal_address, data_converter=pydantic_data_converter)
    steps = StandInSteps()
    task_queue = f"receipt-{secrets.token_hex(4)}"
    async with Worker(
        client, task_queue=task_queue, workflows=[OrderWorkflow], activities=steps.activities()
    ):
        yield steps, client, task_queue


def _order(order_id: str) -> OrderInput:
    lines = [OrderLine(sku="tea-001", name="Oolong", quantity=2, unit_amount=3749)]
    return OrderInput(
        order_id=order_id,
        merchant_id="mer_test",
        channel="alipay",
        priced=price_order(lines, "CNY", None, datetime.now(UTC)),
        channel_fee_rate=FEE,
        commission_rate=COMMISSION,
        payment_timeout_seconds=600,
        notify_url="http://api.test/notify",
        auto_complete_seconds=3600,
    )


async def test_receipt_confirmed_while_the_saga_lags_the_projection_completes_the_order(
    steps_and_client: tuple[StandInSteps, Client, str],
) -> None:
    steps, client, task_queue = steps_and_client
    order = _order(f"ord_{secrets.token_hex(8)}")
    handle = await client.start_workflow(
        OrderWorkflow.run,
        order,
        id=f"order-{order.order_id}",
        task_queue=task_queue,
        task_timeout=timedelta(seconds=1),  # the held step's task is renewed within a second
    )
    await handle.execute_update(OrderWorkflow.await_checkout, CheckoutRequest())
    paid = PaymentSignal(
        source="notification:1",
        kind=NotificationKind.PAYMENT_SUCCEEDED.value,
        channel_txn_id="txn_1",
        amount=order.priced.payable_amount,
        currency="CNY",
        merchant_id=order.merchant_id,
    )
    await handle.signal(OrderWorkflow.payment_notification, paid)
    await asyncio.wait_for(steps.projection_written.wait(), timeout=10)
    assert steps.statuses[-1] == "awaiting_receipt"  # what the API reads now

    # The buyer confirms; the saga has not finished the step that wrote it.
    confirmation = await asyncio.wait_for(
        handle.start_update(
            OrderWorkflow.confirm_receipt,
            ReceiptConfirmation(),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        ),
        timeout=10,
    )
    assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.SETTLED
    steps.release.set()

    view = await asyncio.wait_for(confirmation.result(), timeout=10)
    assert view.status == OrderStatus.COMPLETED  # at once, not after the hour's hold
    assert view.steps_done[-1] == "release_funds"
