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

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from activities.settlement_records import SettlementRecords
from db.engine import session_factory
from db.tables import JournalEntry, Payout
from domain.keys import merchant_settlement_workflow_id, settlement_run_workflow_id
from domain.polling import PollTimings
from domain.settlement import MerchantDay, PreparedStatements, SettlementProgress
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, wait_for, wait_status
from tests.workflows.run_histories import run_histories
from workflows.settlement import MerchantSettlementWorkflow


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
    progress = await temporal.get_workflow_handle(later, result_type=SettlementProgress).result()
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


async def _asked_the_bank(temporal: Client, handle: WorkflowHandle[Any, Any]) -> int:
    """How many times the settlement asked the bank for a payout, over all its runs."""
    first = (await handle.describe()).raw_description.workflow_execution_info
    runs = await run_histories(temporal, handle.id, first.first_run_id or first.execution.run_id)
    return sum(
        event.activity_task_scheduled_event_attributes.activity_type.name == "send_payout"
        for events in runs
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


async def test_a_later_run_drives_what_it_prepared_for_a_settlement_that_had_ended(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant, run_id = await ended_settlement_then_paid_order(api, sandbox, temporal)
    handle = temporal.get_workflow_handle(run_id, result_type=SettlementProgress)
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
    assert await _asked_the_bank(temporal, handle) == 1
    [payout] = _payout_rows(system, merchant)
    assert payout.status == "paid" and _payouts_started(system, merchant) == 1


async def test_a_settlement_waiting_for_the_bank_drives_a_new_payout_handed_to_it(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """A payout handed over while the settlement polls a held one (continuing as new every
    two polls) is asked for once, carried over, and recorded; the held one is not asked
    for again. (A merchant's new payout of the same day comes from a currency it had not
    sold in before; here it is its statement of the next day, made by hand.)"""
    merchant = await create_merchant(api)
    await completed_order(api, sandbox, merchant)
    held = await sandbox.post(f"/control/payout-behaviour/{merchant}", json={"mode": "hold"})
    assert held.status_code == 200, held.text
    today = datetime.now(UTC).date()
    fast = PollTimings(payout_first_ms=100, max_interval_ms=100, polls_per_run=2)
    handle = await temporal.start_workflow(
        MerchantSettlementWorkflow.run,
        MerchantDay(merchant_id=merchant, day=today, polling=fast),
        id=merchant_settlement_workflow_id(merchant, today),
        task_queue=system.task_queue,
    )
    latest = settlement(temporal, merchant, today)

    async def pending() -> tuple[str, ...]:
        return (await latest.query(MerchantSettlementWorkflow.view)).pending_payouts

    [first] = await wait_for(pending, lambda p: len(p) == 1, "the held payout")
    await completed_order(api, sandbox, merchant)
    records = SettlementRecords(session_factory(system.engine))
    tomorrow = MerchantDay(merchant_id=merchant, day=today + timedelta(days=1))
    [second] = records.prepare_statements(tomorrow)
    handed = PreparedStatements(
        merchant_id=merchant,
        statement_ids=tuple(records.day_statements(tomorrow)),
        payouts=(second,),
    )
    await latest.signal(MerchantSettlementWorkflow.hand_over, handed)
    await latest.signal(MerchantSettlementWorkflow.hand_over, handed)  # twice: asked once
    await wait_for(pending, lambda p: p == (first, second.payout_id), "both payouts pending")

    async def complete_both() -> list[int]:
        paths = [f"/control/payouts/{p}/complete" for p in (first, second.payout_id)]
        return [(await sandbox.post(path)).status_code for path in paths]

    await wait_for(complete_both, lambda codes: codes == [200, 200], "the bank has both")
    view = await latest.result()
    assert sorted(p.payout_id for p in view.payouts if p.paid) == sorted([first, second.payout_id])
    assert handed.statement_ids[0] in view.statement_ids and len(view.statement_ids) == 2
    assert await _asked_the_bank(temporal, handle) == 2
    assert _payouts_started(system, merchant) == 2
