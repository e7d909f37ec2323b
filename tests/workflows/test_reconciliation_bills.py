"""Reconciliation on the channels' REAL bills: each channel's sandbox publishes its day in its
own format (Alipay's GBK zip, WeChat Pay's backticked CSV, the card gateway's report), with
two discrepancies planted through the sandbox's bill controls; the system's own worker
(which reads the real bills, `worker._channel_bills`) finds exactly those, an operator
resolves one with an adjusting entry, and the books still hold.

The bill day is the channel's (Beijing for Alipay and WeChat Pay, UTC for the card
gateway). The sandbox is the session's, and its plants are per (channel, day): each test
clears its own. A test whose payments straddle the bill day's midnight cannot say which
bill they are on, and skips. Runs take ids of their own: the Temporal server is shared.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from api.manage_reconcile import print_books, print_exceptions, reconcile
from channels.alipay.bills import AlipayBillClient
from channels.bills import bill_day_window
from channels.card.bills import CardBillClient
from channels.wechatpay.bills import WeChatPayBillClient
from db.reconcile import ledger_problems, trial_balance
from db.tables import Order, ReconciliationException, Refund
from domain.keys import late_payment_refund_id, order_workflow_id
from domain.reconciliation import (
    BILL_ZONES,
    BillWait,
    ReconciliationInput,
    RunResult,
    day_window,
)
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    pay,
    post_refund,
    wait_for,
    wait_status,
)
from workflows.reconciliation import ReconciliationWorkflow

FAST = BillWait(first_retry_seconds=1, max_retry_seconds=1, deadline_seconds=10, corrupt_attempts=2)
CHANNELS = ("alipay", "wechatpay", "card")


def bill_day(channel: str) -> date:
    return datetime.now(BILL_ZONES.get(channel, UTC)).date()


def _same_day(channel: str, day: date) -> None:
    if bill_day(channel) != day:
        pytest.skip("the test ran across the bill day's midnight")


class Plants:
    """The sandbox's bill controls for one channel-day; cleared when the test ends."""

    def __init__(self, sandbox: httpx.AsyncClient, channel: str, day: date) -> None:
        self._sandbox = sandbox
        self._base = f"/control/bills/{channel}/{day.isoformat()}"

    async def plant(self, **body: Any) -> dict[str, Any]:
        response = await self._sandbox.post(f"{self._base}/discrepancies", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def publish(self) -> None:
        response = await self._sandbox.post(f"{self._base}/publish")
        assert response.status_code in (200, 204), response.text

    async def clear(self) -> None:
        response = await self._sandbox.delete(f"{self._base}/discrepancies")
        assert response.status_code == 204, response.text


@pytest_asyncio.fixture
async def plants(sandbox: httpx.AsyncClient) -> AsyncIterator[dict[str, Plants]]:
    made: dict[str, Plants] = {}
    yield made
    for desk in made.values():
        await desk.clear()


async def _reconcile(temporal: Client, system: System, channel: str, day: date) -> RunResult:
    """The run, on the system's worker (real bill clients), under an id of the test's own."""
    result: RunResult = await temporal.execute_workflow(
        ReconciliationWorkflow.run,
        ReconciliationInput(channel=channel, day=day, wait=FAST),
        id=f"reconciliation-{channel}-{day}-{secrets.token_hex(4)}",
        task_queue=system.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        execution_timeout=timedelta(minutes=2),
    )
    return result


def _exceptions_of(system: System, channel: str, day: date, orders: set[str]) -> list[Any]:
    with Session(system.engine) as session:
        rows = session.exec(
            select(ReconciliationException).where(
                ReconciliationException.channel == channel,
                ReconciliationException.day == day.isoformat(),
                col(ReconciliationException.order_id).in_(orders),
            )
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


async def _paid(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant_id: str, channel: str
) -> str:
    order = await create_order(api, merchant_id, channel=channel)
    await pay(sandbox, order["id"], channel=channel)
    await wait_status(api, order["id"], "completed")
    return str(order["id"])


async def _paid_after_a_change(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant_id: str, channel: str
) -> str:
    """An order modified once: its bill line is its second attempt's, `{order}__2`."""
    order = await create_order(api, merchant_id, channel=channel)
    lines = [{"sku": "pot-003", "name": "Tea pot", "quantity": 1, "unit_amount": 4200}]
    modified = await api.post(f"/v1/orders/{order['id']}/modify", json={"lines": lines})
    assert modified.status_code == 200, modified.text
    reference = modified.json()["payment"]["reference"]
    assert reference == f"{order['id']}__2"
    await pay(sandbox, reference, channel=channel)
    await wait_status(api, order["id"], "completed")
    return str(order["id"])


def _assert_books_hold(system: System) -> None:
    with Session(system.engine) as session:
        assert ledger_problems(session) == []
        assert all(total == 0 for total in trial_balance(session).values())


@pytest.mark.parametrize("channel", CHANNELS)
async def test_two_planted_differences_on_the_real_bill_are_found_and_one_resolved(
    channel: str,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    plants: dict[str, Plants],
) -> None:
    day = bill_day(channel)
    merchant_id = await create_merchant(api)
    fine, changed, left_out = [await _paid(api, sandbox, merchant_id, channel) for _ in range(3)]
    again = await _paid_after_a_change(api, sandbox, merchant_id, channel)
    refund = await post_refund(api, fine, amount=100)
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    await wait_for(
        lambda: api.get(f"/v1/refunds/{refund_id}"),
        lambda r: r.json()["status"] == "succeeded",
        "the refund to succeed",
    )
    _same_day(channel, day)
    desk = plants[channel] = Plants(sandbox, channel, day)
    shifted = await desk.plant(kind="amount_changed", reference=changed, amount=5000)
    await desk.plant(kind="missing_payment", reference=left_out)
    await desk.publish()

    result = await _reconcile(temporal, system, channel, day)

    found = _exceptions_of(system, channel, day, {fine, changed, left_out, again})
    assert {(e.reference, e.type) for e in found} == {
        (changed, "amount_mismatch"),
        (left_out, "missing_there"),
    }
    assert result.bill_lines > 0
    exception = {e.reference: e for e in found}
    short = exception[changed]
    assert (short.ours_amount, short.theirs_amount) == (shifted["recorded_amount"], 5000)
    assert short.currency == "CNY" and short.status == "open"
    unbilled = exception[left_out]
    assert unbilled.ours_amount == 7498 and unbilled.theirs_amount is None

    difference = 5000 - shifted["recorded_amount"]
    body = {
        "reason": f"the {channel} bill states {difference} more: held until the bank confirms",
        "adjustment": {"account_kind": "channel_clearing", "amount": difference},
    }
    resolved = await api.post(
        f"/v1/reconciliation/exceptions/{short.id}/resolve",
        json=body,
        headers={"Idempotency-Key": f"resolve-{short.id}"},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["adjustment_entry_id"]
    queue = await api.get(
        "/v1/reconciliation/exceptions",
        params={"channel": channel, "day": str(day), "status": "open", "type": "missing_there"},
    )
    assert queue.status_code == 200, queue.text
    assert unbilled.id in {e["id"] for e in queue.json()["data"]}
    _assert_books_hold(system)


async def test_a_late_payment_whose_notification_was_lost_is_found_and_refunded(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    channel = "wechatpay"
    day = bill_day(channel)
    merchant_id = await create_merchant(api)
    late = (await create_order(api, merchant_id, channel=channel, payment_timeout_seconds=1))["id"]
    await wait_status(api, late, "closed")
    await temporal.get_workflow_handle(order_workflow_id(late)).result()  # the saga ended
    paid = await pay(sandbox, late, channel=channel, notify="drop", force=True)
    _same_day(channel, day)
    response = await sandbox.post(f"/control/bills/{channel}/{day.isoformat()}/publish")
    assert response.status_code in (200, 204), response.text

    # As `make reconcile` runs it (api.manage_reconcile), under an id of the test's own.
    run_id = f"reconciliation-{channel}-{day}-{secrets.token_hex(4)}"
    await reconcile(system.temporal_address, "default", system.task_queue, channel, day, run_id)
    print_exceptions(system.env["PAYSAGA_DATABASE_URL"], channel, day)
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["reference"] == late and e["theirs_amount"] == paid["amount"] for e in shown)

    found = _exceptions_of(system, channel, day, {late})
    assert [(e.type, e.status, e.theirs_amount) for e in found] == [
        ("status_mismatch", "auto_resolved", paid["amount"])
    ]
    refund_id = late_payment_refund_id(late, paid["txn_id"])

    def refund_status() -> str | None:
        with Session(system.engine) as session:
            row = session.get(Refund, refund_id)
            return None if row is None else row.status

    async def status() -> str | None:
        return refund_status()

    await wait_for(status, lambda s: s == "succeeded", "the late payment's refund")
    with Session(system.engine) as session:
        order = session.get(Order, late)
        assert order is not None and order.status == "closed"
    assert print_books(system.env["PAYSAGA_DATABASE_URL"])  # as `make books` shows them


@pytest.mark.parametrize(
    "client", [AlipayBillClient, WeChatPayBillClient, CardBillClient], ids=lambda c: c.channel
)
def test_the_matchers_day_is_the_bill_clients_day(client: Any) -> None:
    """What the matcher takes as the day's (ours missing there) is what the bill covers."""
    for day in (date(2026, 1, 1), date(2026, 6, 30), date(2026, 11, 29)):
        start, end = bill_day_window(client.zone, day)
        assert day_window(client.channel.value, day) == (start.astimezone(UTC), end)
