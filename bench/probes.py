"""What an order costs in Temporal's history, and what a duplicate notification and a
merchant webhook add.

A duplicate is the very message the channel sent (same notify id, same signature scheme,
rendered by the sandbox's own protocol), posted to our notify route again and again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import bindparam, text
from temporalio.client import Client

from db.engine import make_engine
from domain.order_status import FINAL_STATUSES
from sandbox import alipay_front
from sandbox.protocol import Event, EventData
from settings import settings_from_env

SETTLE_S = 2.0  # after the resends, time for anything they set off to show
ENDED_POLL_S = 0.02
ENDED_WITHIN_S = 120.0
_NOT_ENDED = text(
    "SELECT count(*) FROM orders WHERE id IN :ids AND status NOT IN :ended"
).bindparams(bindparam("ids", expanding=True), bindparam("ended", expanding=True))
_ENDED = sorted(FINAL_STATUSES)


async def until_ended(database_url: str, order_ids: list[str]) -> None:
    """Until every one of these orders has ended in the database (completed, as a happy
    order does, or another final status: its saga's last write), read from the bench's
    own process: what the round set going is done. Read-only, so that on SQLite the
    polls never take the one writer's lock from the sagas."""
    engine = make_engine(database_url)
    reads = engine.execution_options(paysaga_read_only=True)

    def left() -> int:
        with reads.connect() as db:
            params = {"ids": order_ids, "ended": _ENDED}
            return int(db.execute(_NOT_ENDED, params).scalar_one())

    deadline = time.monotonic() + ENDED_WITHIN_S
    try:
        while order_ids and (remaining := await asyncio.to_thread(left)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{remaining} orders not ended in {ENDED_WITHIN_S} s")
            await asyncio.sleep(ENDED_POLL_S)
    finally:
        engine.dispose()


async def history_events(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events)


async def workflow_count(client: Client) -> int:
    return (await client.count_workflows()).count


@dataclass(frozen=True)
class DuplicateCost:
    sent: int
    answers: dict[int, int]  # status code -> how many
    events_added: int
    workflows_started: int


async def resend_payment_notification(
    client: Client,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    env: dict[str, str],
    payment: dict[str, object],
    times: int,
) -> DuplicateCost:
    """Post the paid order's payment notification (`payment`: the sandbox's view of it)
    `times` more times; count what changed."""
    order_id = str(payment["out_trade_no"])
    deliveries = (await sandbox.get(f"/control/payments/{order_id}/deliveries")).json()
    message = notification(env, deliveries[0]["event_id"], payment)
    events_before = await history_events(client, f"order-{order_id}")
    workflows_before = await workflow_count(client)
    answers: dict[int, int] = {}
    for _ in range(times):
        answer = await api.post(
            "/v1/channels/alipay/notify", content=message[0], headers=message[1]
        )
        answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
    await asyncio.sleep(SETTLE_S)
    return DuplicateCost(
        sent=times,
        answers=answers,
        events_added=await history_events(client, f"order-{order_id}") - events_before,
        workflows_started=await workflow_count(client) - workflows_before,
    )


def notification(
    env: dict[str, str], event_id: str, payment: dict[str, object]
) -> tuple[bytes, dict[str, str]]:
    protocol = alipay_front.notifications(settings_from_env(env))
    event = Event(
        id=event_id,
        type="payment.succeeded",
        created=int(time.time()),
        data=EventData(
            payment_id=str(payment["payment_id"]),
            out_trade_no=str(payment["out_trade_no"]),
            merchant_id=str(payment["merchant_id"]),
            amount=int(str(payment["amount"])),
            currency=str(payment["currency"]),
            txn_id=str(payment["txn_id"]),
            status="paid",
        ),
    )
    wire = protocol.render(event)
    return wire.body, dict(wire.headers)


WEBHOOKS = "WorkflowType = 'MerchantWebhookWorkflow'"
SAMPLE = 5  # histories read per kind


async def webhook_workflows(client: Client) -> int:
    return (await client.count_workflows(WEBHOOKS)).count


async def until_quiet(count: Callable[[], int], quiet_s: float = 1.0, within_s: float = 60) -> None:
    """Until `count()` has not moved for `quiet_s` (deliveries still in flight end)."""
    deadline = time.monotonic() + within_s
    last = count()
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        if count() == last:
            return
        last = count()


@dataclass(frozen=True)
class WebhookCost:
    orders: int
    workflows_per_order: float  # delivery workflows started per order
    events_per_delivery: float  # history events of one delivery workflow
    order_events_without: float  # an order's own history, its merchant without a webhook
    order_events_with: float

    @property
    def order_events_added(self) -> float:
        return self.order_events_with - self.order_events_without


async def webhook_cost(
    client: Client, before: int, plain_ids: list[str], hooked_ids: list[str]
) -> WebhookCost:
    """The delivery workflows the hooked orders started, and what they and the orders'
    own histories hold, beside orders of a merchant without a webhook."""
    started = await webhook_workflows(client) - before
    deliveries = []
    async for execution in client.list_workflows(WEBHOOKS, limit=SAMPLE):
        deliveries.append(await history_events(client, execution.id))
    return WebhookCost(
        orders=len(hooked_ids),
        workflows_per_order=started / len(hooked_ids),
        events_per_delivery=sum(deliveries) / len(deliveries) if deliveries else 0.0,
        order_events_without=await _mean_events(client, plain_ids),
        order_events_with=await _mean_events(client, hooked_ids),
    )


async def _mean_events(client: Client, order_ids: list[str]) -> float:
    counts = [await history_events(client, f"order-{o}") for o in order_ids[:SAMPLE]]
    return sum(counts) / len(counts)
