"""A bug in a step after payment is not a reason to give the buyer's money back.

The system's worker is restarted "with a bug": the same worker process, with
tests/workflows/buggy_worker first on its PYTHONPATH, whose sitecustomize makes telling
the parties of the payment raise a ValueError, past the payment's settlement (no switch
in the product's code). The paid order's
saga retries the step and refunds nothing; once the worker is restarted without the
bug (the fix is deployed), the order completes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

import stack
from db.tables import Refund
from domain.keys import order_workflow_id
from tests.conftest import System
from tests.support import (
    assert_ledger_sound,
    create_merchant,
    create_order,
    get_order,
    order_refunds,
    pay,
    wait_for,
    wait_status,
)
from tests.workflows.worker_with import start_worker_with

BUGGY_WORKER = Path(__file__).parent / "buggy_worker"
RETRIES_SEEN = 3  # calls of the buggy step before the fix is deployed


def _start_buggy_worker(system: System, calls: Path) -> stack.Stack:
    """The system's worker process, started with the bug (instead of the system's own)."""
    env = {"BUGGY_WORKER_CALLS": str(calls)}
    return start_worker_with(system, BUGGY_WORKER, env, "buggy-worker.log")


# Restarting the worker is the test; the step's database is not: one backend, named, so the
# suite's sharing-out of end-to-end tests (tests/conftest.py) can never skip it.
@pytest.mark.parametrize("system", ["sqlite"], indirect=True)
async def test_a_bug_after_payment_waits_for_the_fix_and_refunds_nothing(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    tmp_path: Path,
) -> None:
    calls = tmp_path / "settle_order_calls"
    calls.touch()
    order = await create_order(api, await create_merchant(api))
    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    buggy = _start_buggy_worker(system, calls)
    try:
        await pay(sandbox, order["id"])

        async def retried_or_refunded() -> tuple[int, list[Refund]]:
            return calls.read_text().split().count(order["id"]), order_refunds(
                system.engine, order["id"]
            )

        seen = await wait_for(
            retried_or_refunded,
            lambda seen: seen[0] >= RETRIES_SEEN or bool(seen[1]),
            "the buggy step to be retried (or the order refunded for it)",
        )
        assert seen[1] == [], "a bug after payment gave the buyer's money back"
        # The saga waits at the step: paid and captured, nothing given back.
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        waiting = await get_order(api, order["id"])
        assert (waiting["status"], waiting["refunded_amount"]) == ("settled", 0)
        buggy.stop("worker", kill=True)  # the fix is deployed
    finally:
        buggy.stop()
        await asyncio.to_thread(system.restart_worker, kill=False)  # it waits in a loop of its own

    done = await wait_status(api, order["id"], "completed")
    assert done["refunded_amount"] == 0
    assert order_refunds(system.engine, order["id"]) == []
    # The saga ends just after the step that records the order completed.
    await asyncio.wait_for(handle.result(), timeout=30)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert_ledger_sound(system.engine)
