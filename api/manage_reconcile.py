"""`make reconcile CHANNEL=alipay DAY=2026-11-29`: an operator's run of one channel-day from a
shell, waiting for its end and printing what it found with both sides' figures.

It starts the same workflow, under the same id, as `POST /v1/reconciliation/runs`
(`reconciliation-{channel}-{day}`: started again, it matches again and records nothing
twice). Unlike the API it also runs a day that has not ended yet, for a demonstration
on `make run` once the sandbox has published that day early
(`POST /control/bills/{channel}/{day}/publish`); the bill is waited for a minute at
most (then the run records bill_not_ready). DAY defaults to the channel's yesterday.
Resolve what it found through the API (`POST /v1/reconciliation/exceptions/{id}/resolve`);
`make books` then shows the trial balance and every ledger problem (none, when they hold).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlmodel import col, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter

from db.engine import make_engine, session_factory
from db.reconcile import ledger_problems, trial_balance
from db.tables import ReconciliationException
from domain.reconciliation import (
    BILL_ZONES,
    BillWait,
    ReconciliationInput,
    RunResult,
    reconciliation_workflow_id,
)
from workflows.reconciliation import ReconciliationWorkflow

# A person waits at the terminal: the bill is asked for every few seconds, for a minute.
SHELL_WAIT = BillWait(first_retry_seconds=2, max_retry_seconds=10, deadline_seconds=60)
_SHOWN = (
    "id", "type", "status", "line_kind", "reference", "order_id", "currency",
    "ours_amount", "theirs_amount", "ours_fee", "theirs_fee", "ours_status", "detail",
)  # fmt: skip


def yesterday(channel: str) -> date:
    """The channel's previous bill day (Beijing for Alipay and WeChat Pay, else UTC)."""
    return datetime.now(BILL_ZONES.get(channel, UTC)).date() - timedelta(days=1)


async def reconcile(
    temporal_address: str,
    namespace: str,
    task_queue: str,
    channel: str,
    day: date,
    workflow_id: str | None = None,  # the product's unless a test gives its own
) -> RunResult:
    client = await Client.connect(
        temporal_address, namespace=namespace, data_converter=pydantic_data_converter
    )
    handle = await client.start_workflow(
        ReconciliationWorkflow.run,
        ReconciliationInput(channel=channel, day=day, wait=SHELL_WAIT),
        id=workflow_id or reconciliation_workflow_id(channel, day),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    result: RunResult = await handle.result()
    return result


def print_exceptions(database_url: str, channel: str, day: date) -> None:
    """Each exception of the channel-day as a JSON line, open ones first."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.exec(
                select(ReconciliationException)
                .where(ReconciliationException.channel == channel)
                .where(ReconciliationException.day == day.isoformat())
                .order_by(col(ReconciliationException.status), col(ReconciliationException.type))
            ).all()
            for row in rows:
                print(json.dumps({name: getattr(row, name) for name in _SHOWN}, default=str))
    finally:
        engine.dispose()


def print_books(database_url: str) -> bool:
    """The trial balance per currency and every problem `db.reconcile.ledger_problems`
    finds (each order's identities, each account's drift, every invariant), as one JSON
    line; whether the books hold (every currency at zero, no problem)."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            totals = trial_balance(session)
            problems = ledger_problems(session)
    finally:
        engine.dispose()
    holds = not problems and all(total == 0 for total in totals.values())
    print(json.dumps({"trial_balance": totals, "ledger_problems": problems, "holds": holds}))
    return holds
