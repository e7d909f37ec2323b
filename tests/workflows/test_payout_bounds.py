"""A payout the bank sits on: the merchant's settlement polls it with bounded histories.

At the production maximum interval (5 minutes) a payout pending for a month is some
8,600 queries, about 50,000 events in one history. Here the settlement polls as often as
the server fires timers and continues as new every two polls, carrying its statements and
the payout it waits for; the payout completes after it did, and is recorded once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlmodel import Session, select
from temporalio.client import Client

from db.tables import JournalEntry, Payout
from domain.keys import merchant_settlement_workflow_id
from domain.polling import PollTimings
from domain.settlement import MerchantDay, MerchantSettlementView
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, wait_for, wait_status
from tests.workflows.run_histories import run_histories, timers_fired
from workflows.settlement import MerchantSettlementWorkflow

POLLS_PER_RUN = 2
RUNS = 3  # the payout stays pending through this many runs before the bank pays it
# A run: the start and, in the first, the statement and the ask (about 20 events), then
# per poll a timer and a query (about 6 events), and the payout's record at the end.
EVENTS_PER_RUN_BOUND = 24 + 8 * POLLS_PER_RUN


async def test_a_payout_pending_at_the_bank_continues_as_new_with_bounded_histories(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    held = await sandbox.post(f"/control/payout-behaviour/{merchant_id}", json={"mode": "hold"})
    assert held.status_code == 200, held.text
    fast = PollTimings(payout_first_ms=100, max_interval_ms=100, polls_per_run=POLLS_PER_RUN)
    day = datetime.now(UTC).date()
    handle = await temporal.start_workflow(
        MerchantSettlementWorkflow.run,
        MerchantDay(merchant_id=merchant_id, day=day, polling=fast),
        id=merchant_settlement_workflow_id(merchant_id, day),
        task_queue=system.task_queue,
    )
    assert handle.first_execution_run_id is not None

    async def runs() -> int:
        return len(await run_histories(temporal, handle.id, handle.first_execution_run_id or ""))

    await wait_for(runs, lambda n: n >= RUNS, f"{RUNS} runs of the pending payout")
    latest = temporal.get_workflow_handle(handle.id, result_type=MerchantSettlementView)
    view = await latest.query(MerchantSettlementWorkflow.view)
    [payout_id] = view.pending_payouts
    assert len(view.statement_ids) == 1 and view.payouts == ()

    completed = await sandbox.post(f"/control/payouts/{payout_id}/complete")
    assert completed.status_code == 200, completed.text
    result = await latest.result()
    [outcome] = result.payouts
    assert (outcome.payout_id, outcome.paid, result.pending_payouts) == (payout_id, True, ())
    assert result.statement_ids == view.statement_ids

    histories = await run_histories(temporal, handle.id, handle.first_execution_run_id)
    sizes = [len(events) for events in histories]
    assert all(size <= EVENTS_PER_RUN_BOUND for size in sizes), sizes
    polls = sum(timers_fired(events) for events in histories)
    assert polls >= POLLS_PER_RUN * (RUNS - 1), (polls, sizes)
    with Session(system.engine) as session:
        payout = session.get_one(Payout, payout_id)
        paid_entries = session.exec(
            select(JournalEntry).where(
                JournalEntry.merchant_id == merchant_id, JournalEntry.kind == "payout_paid"
            )
        ).all()
    assert payout.status == "paid" and len(paid_entries) == 1
