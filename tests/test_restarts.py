"""Processes restarting mid-saga: every order still finishes, exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import Session, func, select
from temporalio.client import Client

from db.tables import JournalEntry, PartyNotification
from domain.keys import order_workflow_id, refund_workflow_id
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    merchant_payout,
    one_succeeded_refund,
    pay,
    post_refund,
    wait_for,
    wait_status,
)

pytestmark = pytest.mark.every_backend  # a process killed mid-transaction, on each database


def _count(system: System, model: type, order_id: str) -> int:
    with Session(system.engine) as session:
        statement = select(func.count()).select_from(model).where(model.order_id == order_id)  # type: ignore[attr-defined]
        return int(session.exec(statement).one())


async def test_every_saga_starts_with_the_configured_workflow_task_timeout(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    refund = await post_refund(api, order["id"], amount=100)
    assert refund.status_code == 201, refund.text
    configured = float(system.env["PAYSAGA_WORKFLOW_TASK_TIMEOUT_SECONDS"])
    for workflow_id in (order_workflow_id(order["id"]), refund_workflow_id(refund.json()["id"])):
        described = await temporal.get_workflow_handle(workflow_id).describe()
        timeout = described.raw_description.execution_config.default_workflow_task_timeout
        assert timeout.ToTimedelta().total_seconds() == configured, workflow_id


async def test_payment_while_worker_is_dead_completes_once_after_restart(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=120)
    await asyncio.to_thread(system.processes.stop, "worker", kill=True)
    await pay(sandbox, order["id"])  # the API signals a saga that has no worker right now
    await asyncio.to_thread(system.restart_worker, kill=True)
    done = await wait_status(api, order["id"], "completed", timeout=60)
    assert (
        done["split"]["merchant_net"] + done["split"]["commission"] + done["split"]["channel_fee"]
        == 7498
    )
    assert _count(system, JournalEntry, order["id"]) == 2  # settlement + release
    assert _count(system, PartyNotification, order["id"]) == 2


async def test_worker_killed_as_payments_land_completes_each_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    orders = [await create_order(api, merchant_id, payment_timeout_seconds=120) for _ in range(5)]
    # Payments land, and the worker dies while their sagas record, settle and notify.
    await asyncio.gather(*(pay(sandbox, order["id"]) for order in orders))
    await asyncio.to_thread(system.restart_worker, kill=True)
    for order in orders:
        await wait_status(api, order["id"], "completed", timeout=60)
        assert _count(system, JournalEntry, order["id"]) == 2  # settlement + release
        assert _count(system, PartyNotification, order["id"]) == 2


async def test_sandbox_channel_remembers_payments_across_its_restart(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=120)
    await asyncio.to_thread(system.restart_sandbox)
    await pay(sandbox, order["id"])  # the channel still knows the payment we created
    done = await wait_status(api, order["id"], "completed")
    assert done["payment"]["channel_payment_id"] == order["payment"]["channel_payment_id"]


async def test_a_late_payment_notified_across_a_channel_crash_is_given_back(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=1)
    await wait_status(api, order["id"], "closed")
    # Paid after the close: its saga has ended, and only the notification tells of it. The
    # channel crashes before sending it, and sends it once it is back, as a channel does.
    await pay(sandbox, order["id"], force=True, notify="delay", delay_ms=60_000)
    await asyncio.to_thread(system.restart_sandbox, kill=True)

    refund = await one_succeeded_refund(system.engine, order["id"])
    assert (refund.reason, refund.amount) == ("late_payment", order["amounts"]["payable"])


async def test_worker_killed_mid_settlement_pays_the_merchant_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    await sandbox.post(f"/control/payout-behaviour/{merchant_id}", json={"mode": "hold"})
    day = datetime.now(UTC).date().isoformat()
    started = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": day})
    assert started.status_code == 202, started.text

    held = await merchant_payout(system.engine, merchant_id, status=None)
    bank_auth = {"Authorization": f"Bearer {system.env['PAYSAGA_SANDBOX_API_KEY']}"}

    async def at_the_bank() -> int:
        response = await sandbox.get(f"/bank/api/payouts/{held.id}", headers=bank_auth)
        return response.status_code

    await wait_for(at_the_bank, lambda code: code == 200, "the bank to be asked")
    await asyncio.to_thread(system.restart_worker, kill=True)  # the bank has not answered yet
    again = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": day})
    assert again.status_code == 202
    completed = await sandbox.post(f"/control/payouts/{held.id}/complete")
    assert completed.status_code == 200, completed.text
    paid = await merchant_payout(system.engine, merchant_id)
    assert paid.amount == held.amount
    with Session(system.engine) as session:
        kinds = session.exec(
            select(JournalEntry.kind).where(JournalEntry.merchant_id == merchant_id)
        ).all()
    assert sorted(kinds).count("payout_started") == 1 and kinds.count("payout_paid") == 1
