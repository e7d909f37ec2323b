"""Merchant settlement end to end: statements, payouts through the sandbox bank, the daily run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session, col, select
from temporalio.client import Client

from db.ledger import account_balance
from db.reconcile import statement_problems
from db.tables import JournalEntry, Statement
from domain.keys import settlement_run_workflow_id
from domain.ledger import PLATFORM, AccountKind, account_id
from domain.settlement import SettlementProgress
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    merchant_payout,
    pay,
    post_refund,
    wait_status,
)
from workflows.schedule import settlement_schedule_id

NET = 7498 - 45 - 375  # the standard test order's merchant share


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def _completed_orders(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant_id: str, count: int
) -> list[str]:
    orders = [await create_order(api, merchant_id) for _ in range(count)]
    for order in orders:
        await pay(sandbox, order["id"])
    for order in orders:
        await wait_status(api, order["id"], "completed")
    return [order["id"] for order in orders]


def _statements(system: System, merchant_id: str) -> list[Statement]:
    with Session(system.engine) as session:
        return list(session.exec(select(Statement).where(Statement.merchant_id == merchant_id)))


def _balance(system: System, kind: AccountKind, owner: str) -> int:
    with Session(system.engine) as session:
        return account_balance(session, account_id(kind, owner, "CNY"))


async def _settle(api: httpx.AsyncClient, merchant_id: str) -> dict[str, Any]:
    response = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": _today()})
    assert response.status_code == 202, response.text
    return dict(response.json())


async def test_statement_reconciles_and_payout_is_paid_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    first, _ = await _completed_orders(api, sandbox, merchant_id, 2)
    refund = await post_refund(api, first, amount=1000)
    assert refund.status_code == 201, refund.text
    bank_before = _balance(system, AccountKind.BANK, PLATFORM)

    await _settle(api, merchant_id)
    payout = await merchant_payout(system.engine, merchant_id, "paid")
    [statement] = _statements(system, merchant_id)
    refunded_net = 1000 - 6 - 50  # the refund's merchant part (fee 6, commission 50)
    assert (statement.gross_amount, statement.channel_fee_amount) == (2 * 7498, 2 * 45)
    assert statement.commission_amount == 2 * 375
    assert statement.refunded_amount == refunded_net
    assert statement.payout_amount == payout.amount == 2 * NET - refunded_net
    assert (statement.opening_balance, statement.closing_balance) == (0, 0)
    assert statement.order_count == 2 and statement_problems(statement) == []
    assert payout.bank_reference
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchant_id) == 0
    assert _balance(system, AccountKind.MERCHANT_IN_TRANSIT, merchant_id) == 0
    assert _balance(system, AccountKind.BANK, PLATFORM) == bank_before - payout.amount

    await _settle(api, merchant_id)  # again: the same statement, nothing paid twice
    assert len(_statements(system, merchant_id)) == 1
    with Session(system.engine) as session:
        started = session.exec(
            select(JournalEntry).where(
                JournalEntry.merchant_id == merchant_id, JournalEntry.kind == "payout_started"
            )
        ).all()
    assert len(started) == 1


async def test_refused_payout_returns_the_money_with_the_reason(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    await _completed_orders(api, sandbox, merchant_id, 1)
    behaviour = await sandbox.post(
        f"/control/payout-behaviour/{merchant_id}", json={"mode": "fail"}
    )
    assert behaviour.status_code == 200, behaviour.text
    await _settle(api, merchant_id)
    payout = await merchant_payout(system.engine, merchant_id, "failed")
    assert payout.failure_reason == "account_frozen"
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchant_id) == NET
    assert _balance(system, AccountKind.MERCHANT_IN_TRANSIT, merchant_id) == 0


async def test_unreachable_bank_is_retried_until_the_payout_is_made(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    await _completed_orders(api, sandbox, merchant_id, 1)
    await sandbox.post(f"/control/faults/{merchant_id}", json={"api_failures": 2})
    await _settle(api, merchant_id)
    payout = await merchant_payout(system.engine, merchant_id, "paid")
    assert payout.amount == NET


async def test_refund_after_payout_is_clawed_back_from_available(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    [order_id] = await _completed_orders(api, sandbox, merchant_id, 1)
    await _settle(api, merchant_id)
    await merchant_payout(system.engine, merchant_id, "paid")
    refund = await post_refund(api, order_id, amount=7498)
    assert refund.status_code == 201, refund.text
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchant_id) == -NET


async def test_daily_run_settles_each_merchant_once_and_shows_progress(
    api: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    schedule = temporal.get_schedule_handle(settlement_schedule_id(system.task_queue))
    description = await schedule.describe()
    assert description.schedule.spec.calendars[0].hour[0].start == 2  # T+1 at 02:00 UTC

    await create_merchant(api)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    started = await api.post("/v1/settlements/runs", json={"day": yesterday})
    assert started.status_code == 202, started.text
    handle = temporal.get_workflow_handle(
        settlement_run_workflow_id(date.fromisoformat(yesterday)), result_type=SettlementProgress
    )
    first = await handle.result()
    assert first.merchants == first.settled + first.already_settled
    again = await api.post("/v1/settlements/runs", json={"day": yesterday})
    assert again.status_code == 202
    second = await temporal.get_workflow_handle(
        settlement_run_workflow_id(date.fromisoformat(yesterday)), result_type=SettlementProgress
    ).result()
    assert second.settled == 0 and second.already_settled == second.merchants
    progress = await api.get(f"/v1/settlements/runs/{yesterday}")
    assert progress.json()["already_settled"] == second.merchants
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    refused = await api.post("/v1/settlements/runs", json={"day": future})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "day_in_future"
    with Session(system.engine) as session:
        assert session.exec(select(Statement).where(col(Statement.day) == yesterday)).all() == []


async def test_a_run_for_some_merchants_settles_them_and_a_rerun_pays_nothing_more(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchants = [await create_merchant(api) for _ in range(2)]
    for merchant_id in merchants:
        await _completed_orders(api, sandbox, merchant_id, 1)
    body = {"day": _today(), "merchant_ids": merchants}
    run_id = settlement_run_workflow_id(date.fromisoformat(_today()), tuple(sorted(merchants)))
    assert (await api.post("/v1/settlements/runs", json=body)).status_code == 202
    first = await temporal.get_workflow_handle(run_id, result_type=SettlementProgress).result()
    assert (first.merchants, first.settled) == (2, 2)
    for merchant_id in merchants:
        payout = await merchant_payout(system.engine, merchant_id, "paid")
        assert payout.amount == NET
    # A later order of the first merchant: the day's settlement is done, so it waits for
    # the next day's statement, and running the day again settles no one twice.
    await _completed_orders(api, sandbox, merchants[0], 1)
    assert (await api.post("/v1/settlements/runs", json=body)).status_code == 202
    second = await temporal.get_workflow_handle(run_id, result_type=SettlementProgress).result()
    assert (second.merchants, second.settled, second.already_settled) == (1, 0, 1)
    for merchant_id in merchants:
        assert len(_statements(system, merchant_id)) == 1
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchants[0]) == NET
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchants[1]) == 0
