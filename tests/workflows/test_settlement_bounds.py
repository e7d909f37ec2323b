"""A day's settlement over many merchants: the run pages through them, each history bounded.

In one history a child costs its run about five events, so 10,000 merchants would pass
Temporal's hard limit (51,200). Here the run settles pages of four merchants and continues
as new after each; each run's history must stay under a bound set by the page, not by the
day, the run's query must answer for the whole day across runs, and every merchant must
get its statement and its payout exactly once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from sqlmodel import Session, col, select
from temporalio.client import Client

from db.tables import Payout, Statement
from domain.keys import settlement_run_workflow_id
from domain.polling import PollTimings
from domain.settlement import SettlementProgress, SettlementRunInput
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, wait_for, wait_status
from tests.workflows.run_histories import run_histories
from workflows.settlement import SettlementRunWorkflow

MERCHANTS = 11
PAGE = 4  # three runs: 4, 4 and 3 merchants
# A run: its start, listing and continuation (about 10 events), then per merchant its
# child's three events and at most two workflow tasks (three events each) that wait for
# them. Measured: 32, 38 and 26 events; all eleven merchants in one history take ~85.
EVENTS_PER_RUN_BOUND = 12 + 9 * PAGE


async def _merchant_with_a_completed_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> str:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    return merchant_id


async def test_a_run_over_many_merchants_pages_through_them_with_bounded_histories(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchants = sorted(
        await asyncio.gather(
            *(_merchant_with_a_completed_order(api, sandbox) for _ in range(MERCHANTS))
        )
    )
    day = datetime.now(UTC).date()
    request = SettlementRunInput(
        day=day,
        merchant_ids=tuple(merchants),
        polling=PollTimings(payout_first_ms=100, max_interval_ms=100),
        merchants_per_run=PAGE,
    )
    handle = await temporal.start_workflow(
        SettlementRunWorkflow.run,
        request,
        id=settlement_run_workflow_id(day, tuple(merchants)),
        task_queue=system.task_queue,
    )
    assert handle.first_execution_run_id is not None
    latest = temporal.get_workflow_handle(handle.id, result_type=SettlementProgress)

    async def runs() -> int:
        return len(await run_histories(temporal, handle.id, handle.first_execution_run_id or ""))

    await wait_for(runs, lambda n: n >= 2, "a second run of the day")
    # What the API's GET /v1/settlements/runs/{day} asks: the latest run, for the whole day.
    assert (await latest.query(SettlementRunWorkflow.progress)).merchants == MERCHANTS

    progress = await latest.result()
    assert (progress.merchants, progress.settled, progress.already_settled) == (MERCHANTS,) * 2 + (
        0,
    )
    assert await latest.query(SettlementRunWorkflow.progress) == progress
    histories = await run_histories(temporal, handle.id, handle.first_execution_run_id)
    sizes = [len(events) for events in histories]
    assert len(sizes) == -(-MERCHANTS // PAGE), sizes
    assert all(size <= EVENTS_PER_RUN_BOUND for size in sizes), sizes

    async def paid() -> list[Payout]:
        with Session(system.engine) as session:
            return list(
                session.exec(select(Payout).where(col(Payout.merchant_id).in_(merchants))).all()
            )

    payouts = await wait_for(paid, lambda ps: all(p.status == "paid" for p in ps), "payouts")
    with Session(system.engine) as session:
        stated = session.exec(
            select(Statement.merchant_id).where(col(Statement.merchant_id).in_(merchants))
        ).all()
    assert sorted(stated) == merchants
    assert sorted(p.merchant_id for p in payouts) == merchants
