"""The run's workflow task fails after its page's commit, again and again, until a fixed
worker runs it: the retried task must start the settlements of the merchants the page
prepared (the removed version's retry listed the next merchants instead, and those just
prepared had nothing left to settle: their payouts were never asked for).

The system's worker is restarted with tests/workflows/failing_run_worker first on its
PYTHONPATH, whose sitecustomize makes the run's first step after the page fail its
workflow task (no switch in the product's code); then restarted as it was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

import stack
from db.tables import Payout
from domain.settlement import SettlementProgress
from tests.conftest import System
from tests.support import create_merchant, wait_for
from tests.workflows.test_settlement_handover import completed_order, run_day
from tests.workflows.worker_with import start_worker_with

FAILING_RUN_WORKER = Path(__file__).parent / "failing_run_worker"
FAILURES_SEEN = 2  # failed workflow tasks before the fix is deployed


def _payouts(system: System, merchants: list[str]) -> list[Payout]:
    with Session(system.engine) as session:
        query = select(Payout).where(col(Payout.merchant_id).in_(merchants))
        return list(session.exec(query).all())


def _start_failing_worker(system: System, calls: Path) -> stack.Stack:
    env = {"FAILING_RUN_CALLS": str(calls)}
    return start_worker_with(system, FAILING_RUN_WORKER, env, "failing-run-worker.log")


# Restarting the worker is the test: one backend, named, so the suite's sharing-out of
# end-to-end tests (tests/conftest.py) can never skip it.
@pytest.mark.parametrize("system", ["sqlite"], indirect=True)
async def test_a_run_task_retried_after_its_page_commit_starts_the_page_it_prepared(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    tmp_path: Path,
) -> None:
    merchants = sorted([await create_merchant(api) for _ in range(2)])
    for merchant in merchants:
        await completed_order(api, sandbox, merchant)
    calls = tmp_path / "begin_page_calls"
    calls.touch()
    failing = _start_failing_worker(system, calls)
    try:
        run_id = await run_day(api, temporal, merchants)

        async def failed_after_commit() -> tuple[int, list[Payout]]:
            return calls.read_text().split().count("begin_page"), _payouts(system, merchants)

        await wait_for(
            failed_after_commit,
            lambda seen: seen[0] >= FAILURES_SEEN and len(seen[1]) == 2,
            "the page committed and the run's task failing after it",
            timeout=60,
        )
        failing.stop("worker", kill=True)  # the fix is deployed
    finally:
        failing.stop()
        await asyncio.to_thread(system.restart_worker, kill=False)

    handle = temporal.get_workflow_handle(run_id, result_type=SettlementProgress)
    progress = await handle.result()
    assert (progress.merchants, progress.settled, progress.already_settled) == (2, 2, 0)
    payouts = await wait_for(
        lambda: asyncio.to_thread(_payouts, system, merchants),
        lambda ps: [p.status for p in ps] == ["paid", "paid"],
        "both payouts paid",
    )
    assert sorted(p.merchant_id for p in payouts) == merchants
    pages = [
        event
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in pages] == [
        "prepare_page"
    ]
