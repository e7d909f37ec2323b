"""A later run of a day finds a merchant's settlement of the day already started: the payouts
the run prepared (or found unanswered) must still be asked for, once each.

The run prepares a page of merchants in one transaction, then starts each merchant's
settlement handed its payouts. A settlement of the day that has ended gets a new run of its
own for the new payouts; one still waiting for the bank is signalled, and asks the bank
only for those it does not drive already. (The page's other risk, a retried workflow task
after the page's commit, is the page step's: tests/db/test_settlement_pages.py shows a
retried step hands over the same payouts.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from db.tables import JournalEntry, Payout
from domain.keys import merchant_settlement_workflow_id, settlement_run_workflow_id
from domain.settlement import SettlementProgress
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, wait_for, wait_status
from workflows.settlement import MerchantSettlementWorkflow, SettlementRunWorkflow


async def completed_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant: str
) -> None:
    order = await create_order(api, merchant)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")


def settlement(temporal: Client, merchant: str, day: date) -> WorkflowHandle[Any, Any]:
    """The merchant's settlement of the day (its latest run)."""
    workflow_id = merchant_settlement_workflow_id(merchant, day)
    return temporal.get_workflow_handle_for(MerchantSettlementWorkflow.run, workflow_id)


async def run_day(api: httpx.AsyncClient, temporal: Client, merchants: list[str]) -> str:
    """Start the day's run for these merchants, as ops would; its workflow id."""
    today = datetime.now(UTC).date()
    body = {"day": today.isoformat(), "merchant_ids": merchants}
    started = await api.post("/v1/settlements/runs", json=body)
    assert started.status_code == 202, started.text
    return settlement_run_workflow_id(today, tuple(sorted(merchants)))


async def ended_settlement_then_paid_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> tuple[str, str]:
    """A merchant settled for today before it sold anything (its settlement ended with
    nothing to pay), then an order paid, then the day run again: (merchant, run id)."""
    merchant = await create_merchant(api)
    today = datetime.now(UTC).date()
    early = await api.post(f"/v1/merchants/{merchant}/settlements", json={"day": str(today)})
    assert early.status_code == 202, early.text
    nothing = await settlement(temporal, merchant, today).result()
    assert (nothing.statement_ids, nothing.payouts) == ((), ())
    await completed_order(api, sandbox, merchant)
    return merchant, await run_day(api, temporal, [merchant])


async def pending_payout_then_later_run(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> tuple[str, str, str]:
    """A merchant's payout held pending at the bank by the day's first run's settlement,
    then a later run of the day (with another merchant) that finds it unanswered, then
    the bank pays it: (merchant, payout, the later run's id)."""
    merchant, other = await create_merchant(api), await create_merchant(api)
    for seller in (merchant, other):
        await completed_order(api, sandbox, seller)
    held = await sandbox.post(f"/control/payout-behaviour/{merchant}", json={"mode": "hold"})
    assert held.status_code == 200, held.text
    await run_day(api, temporal, [merchant])
    today = datetime.now(UTC).date()

    async def pending() -> tuple[str, ...]:
        try:
            view = await settlement(temporal, merchant, today).query(
                MerchantSettlementWorkflow.view
            )
        except RPCError:  # not started yet
            return ()
        return view.pending_payouts

    [payout] = await wait_for(pending, lambda p: len(p) == 1, "a pending payout")
    later = await run_day(api, temporal, [merchant, other])
    progress = await temporal.get_workflow_handle_for(SettlementRunWorkflow.run, later).result()
    assert (progress.merchants, progress.settled, progress.already_settled) == (2, 1, 1)
    completed = await sandbox.post(f"/control/payouts/{payout}/complete")
    assert completed.status_code == 200, completed.text
    return merchant, payout, later


def _payout_rows(system: System, merchant: str) -> list[Payout]:
    with Session(system.engine) as session:
        return list(session.exec(select(Payout).where(Payout.merchant_id == merchant)).all())


def _payouts_started(system: System, merchant: str) -> int:
    with Session(system.engine) as session:
        entries = session.exec(
            select(JournalEntry).where(
                col(JournalEntry.merchant_id) == merchant, JournalEntry.kind == "payout_started"
            )
        ).all()
    return len(entries)


async def _asked_the_bank(handle: WorkflowHandle[Any, Any]) -> int:
    """How many times this run of the settlement asked the bank for a payout."""
    asked = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            asked += event.activity_task_scheduled_event_attributes.activity_type.name == (
                "send_payout"
            )
    return asked


async def test_a_later_run_drives_what_it_prepared_for_a_settlement_that_had_ended(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant, run_id = await ended_settlement_then_paid_order(api, sandbox, temporal)
    handle = temporal.get_workflow_handle_for(SettlementRunWorkflow.run, run_id)
    progress: SettlementProgress = await handle.result()
    assert (progress.merchants, progress.settled, progress.already_settled) == (1, 1, 0)

    view = await settlement(temporal, merchant, datetime.now(UTC).date()).result()
    [payout] = _payout_rows(system, merchant)
    assert [(p.payout_id, p.paid) for p in view.payouts] == [(payout.id, True)]
    assert payout.status == "paid" and _payouts_started(system, merchant) == 1


async def test_a_later_run_hands_an_unanswered_payout_to_its_settlement_which_asks_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant, payout_id, _ = await pending_payout_then_later_run(api, sandbox, temporal)
    handle = settlement(temporal, merchant, datetime.now(UTC).date())
    view = await handle.result()
    assert [(p.payout_id, p.paid) for p in view.payouts] == [(payout_id, True)]
    assert await _asked_the_bank(handle) == 1
    [payout] = _payout_rows(system, merchant)
    assert payout.status == "paid" and _payouts_started(system, merchant) == 1
