"""Processes restarting mid-saga: every order still finishes, exactly once."""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import Session, func, select

from db.tables import JournalEntry, PartyNotification
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, wait_status


def _count(system: System, model: type, order_id: str) -> int:
    with Session(system.engine) as session:
        statement = select(func.count()).select_from(model).where(model.order_id == order_id)  # type: ignore[attr-defined]
        return int(session.exec(statement).one())


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
