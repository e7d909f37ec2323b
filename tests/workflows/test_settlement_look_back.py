"""A payout prepared by a run that ended before it started the merchant's settlement
(terminated between its page's commit and the child starts) is in transit with no one
asking the bank for it. The next day's run (the Schedule's, which looks back) finds its
day and runs it again for that payout: it is asked for once and paid, no statement is
made, and a day with nothing unanswered is not run again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError

from activities.settlement_records import SettlementRecords
from db.engine import session_factory
from db.tables import Statement
from domain.keys import merchant_settlement_workflow_id, settlement_run_workflow_id
from domain.settlement import SettlementProgress, SettlementRunInput
from tests.conftest import System
from tests.support import create_merchant, merchant_payout
from tests.workflows.test_settlement_handover import (
    _asked_the_bank,
    _payouts_started,
    completed_order,
    settlement,
)
from workflows.settlement import SettlementRunWorkflow


@dataclass(frozen=True)
class Stranded:
    merchant: str
    day: date  # of its statement


async def stranded_payout(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    days_ago: int = 0,
) -> Stranded:
    """A merchant's page prepared (its payout pending) and no settlement started, as a run
    terminated after its page's commit leaves it: today's, or, its statement moved back
    `days_ago` days, a run of that day's."""
    merchant = await create_merchant(api)
    await completed_order(api, sandbox, merchant)
    today = datetime.now(UTC).date()
    records = SettlementRecords(session_factory(system.engine))
    page = records.prepare_page(SettlementRunInput(day=today, merchant_ids=(merchant,)))
    [prepared] = page.merchants
    assert len(prepared.payouts) == 1
    day = today - timedelta(days=days_ago)
    with Session(system.engine) as session, session.begin():
        [statement] = session.exec(select(Statement).where(Statement.merchant_id == merchant))
        statement.day = day.isoformat()
    assert (await merchant_payout(system.engine, merchant, "pending")).status == "pending"
    try:
        await settlement(temporal, merchant, day).describe()
        raise AssertionError("the stranded payout's settlement must not exist yet")
    except RPCError:
        pass
    return Stranded(merchant, day)


async def looking_back(
    system: System, temporal: Client, run_id: str, scope: SettlementRunInput
) -> SettlementProgress:
    return await temporal.execute_workflow(
        SettlementRunWorkflow.run, scope, id=run_id, task_queue=system.task_queue
    )


def next_day(stranded: Stranded) -> SettlementRunInput:
    """The day after the stranded payout's, looking back two days, for its merchant."""
    return SettlementRunInput(
        day=stranded.day + timedelta(days=1), merchant_ids=(stranded.merchant,), look_back_days=2
    )


async def paid_once(system: System, temporal: Client, stranded: Stranded) -> None:
    """The stranded payout paid, asked of the bank once, by its day's settlement."""
    payout = await merchant_payout(system.engine, stranded.merchant, "paid")
    handle = settlement(temporal, stranded.merchant, stranded.day)
    view = await handle.result()
    assert [(p.payout_id, p.paid) for p in view.payouts] == [(payout.id, True)]
    assert handle.id == merchant_settlement_workflow_id(stranded.merchant, stranded.day)
    assert await _asked_the_bank(temporal, handle) == 1
    assert _payouts_started(system, stranded.merchant) == 1


async def test_the_next_days_run_asks_the_bank_for_a_payout_no_settlement_drove(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    stranded = await stranded_payout(api, sandbox, system, temporal)
    run_id = f"settlement-run-looking-back-{stranded.merchant}"
    progress = await looking_back(system, temporal, run_id, next_day(stranded))
    assert progress.days_run_again == (stranded.day,)
    assert progress.merchants == 0  # the next day has nothing of its own for the merchant
    await paid_once(system, temporal, stranded)

    # Nothing unanswered now: a later look back runs no day again.
    again_id = f"settlement-run-looking-back-again-{stranded.merchant}"
    again = await looking_back(system, temporal, again_id, next_day(stranded))
    assert again.days_run_again == ()
    await paid_once(system, temporal, stranded)


async def test_the_schedules_run_looks_back_a_week_for_unanswered_payouts(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """A run as the Schedule starts it (no day: it settles yesterday) looks back by itself
    and finds a payout its run left unasked three days ago."""
    stranded = await stranded_payout(api, sandbox, system, temporal, days_ago=3)
    as_scheduled = SettlementRunInput(merchant_ids=(stranded.merchant,))
    run_id = f"settlement-run-as-scheduled-{stranded.merchant}"
    progress = await looking_back(system, temporal, run_id, as_scheduled)
    assert progress.day is not None and progress.day < datetime.now(UTC).date()
    assert progress.days_run_again == (stranded.day,)
    await paid_once(system, temporal, stranded)


async def test_another_stacks_run_of_the_day_does_not_make_the_look_back_skip_it(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """Stacks share a Temporal server (workflows/schedule.py: a Schedule per task queue; the
    tests' two backends do): a run of the same day and merchants on another task queue, or
    an operator's, holds the id of the day's run; the look back's run is its own."""
    stranded = await stranded_payout(api, sandbox, system, temporal)
    other_stacks = await temporal.start_workflow(
        SettlementRunWorkflow.run,
        SettlementRunInput(day=stranded.day, merchant_ids=(stranded.merchant,)),
        id=settlement_run_workflow_id(stranded.day, (stranded.merchant,)),
        task_queue=f"another-stack-{secrets.token_hex(4)}",  # its worker is not ours
    )
    try:
        run_id = f"settlement-run-looking-back-past-another-stack-{stranded.merchant}"
        progress = await looking_back(system, temporal, run_id, next_day(stranded))
        assert progress.days_run_again == (stranded.day,)
        await paid_once(system, temporal, stranded)
    finally:
        await other_stacks.terminate("test over")


async def test_a_look_back_that_cannot_read_its_days_leaves_them_to_the_next_run(
    system: System, temporal: Client
) -> None:
    """The look back's read failing for good (here: a window before the first date, which
    every try fails to compute; in production, the database down for the minute of its
    tries) ends the run as settled, its days left to the next day's run, not failed. A
    local activity that fails raises its failure itself (an ApplicationError, not an
    ActivityError: workflows/options.StepFailed)."""
    merchant = f"mch_nothing_{secrets.token_hex(4)}"  # nothing of its own to settle
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    unreadable = SettlementRunInput(
        day=yesterday, merchant_ids=(merchant,), look_back_days=1_000_000
    )
    run_id = f"settlement-run-unreadable-look-back-{merchant}"
    progress = await looking_back(system, temporal, run_id, unreadable)
    assert progress.day == yesterday
    assert progress.days_run_again == ()
