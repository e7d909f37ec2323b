"""Reconciliation end to end: a day of real orders at the sandbox, a bill derived from what
really happened with discrepancies planted in it, the run finding exactly those, the
worker settling what a channel query settles, and an operator resolving the rest.

The run's worker is this module's own (the system's worker has no bill source wired yet:
tests.reconciliation_bills is the double of our bill interface it is given), on its own
task queue, against the system's database, sandbox and Temporal server. Workflow ids are
the test's own, since every backend's system shares the one Temporal server.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from api.services.order_creation import notify_url
from api.services.records import new_id
from db.tables import (
    JournalEntry,
    Order,
    Posting,
    ReconciliationException,
    ReconciliationRun,
    Refund,
)
from db.times import as_utc
from domain.bills import BillLine, BillLineKind
from domain.keys import late_payment_refund_id, order_workflow_id, refund_workflow_id
from domain.order_status import OrderStatus
from domain.polling import PollTimings
from domain.pricing import OrderLine, price_order
from domain.reconciliation import (
    CHINA_STANDARD_TIME,
    BillWait,
    DiscrepancyType,
    ReconciliationDay,
    ReconciliationInput,
    RunResult,
    reconciliation_workflow_id,
)
from domain.refunds import RefundAsk, Requester
from domain.saga import CheckoutRequest, OrderInput
from tests.conftest import System
from tests.reconciliation_bills import JsonLinesBills, lines_from_records, publish_bill
from tests.support import (
    assert_ledger_sound,
    create_merchant,
    create_order,
    ledger_mark,
    pay,
    post_refund,
    settings_from_env,
    wait_for,
    wait_status,
)
from worker import built_worker
from workflows.order import OrderWorkflow
from workflows.reconciliation import ReconciliationDayWorkflow, ReconciliationWorkflow
from workflows.refund import RefundWorkflow
from workflows.search_attributes import (
    MERCHANT_ID,
    ORDER_STATUS,
    RECON_CHANNEL,
    RECON_DAY,
    RECON_EXCEPTIONS,
)

UNPOLLED = PollTimings(payment_first_min_ms=600_000, payment_first_max_ms=600_000)
FAST = BillWait(first_retry_seconds=1, max_retry_seconds=1, deadline_seconds=4, corrupt_attempts=2)


@dataclass(frozen=True)
class Reconciler:
    client: Client
    task_queue: str
    published: Path  # where the bill double finds the channels' bills

    async def run(
        self, channel: str, day: date, wait: BillWait = FAST, workflow_id: str | None = None
    ) -> RunResult:
        result: RunResult = await self.client.execute_workflow(
            ReconciliationWorkflow.run,
            ReconciliationInput(channel=channel, day=day, wait=wait),
            id=workflow_id or f"reconciliation-{channel}-{day}-{secrets.token_hex(4)}",
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            execution_timeout=timedelta(minutes=2),  # a bug retries without end otherwise
        )
        return result


@pytest_asyncio.fixture(scope="module")
async def reconciler(system: System, tmp_path_factory: Any) -> AsyncIterator[Reconciler]:
    root: Path = tmp_path_factory.mktemp("bills")
    settings = settings_from_env(system.env).model_copy(
        update={
            "task_queue": f"reconciliation-{system.backend}-{secrets.token_hex(4)}",
            "reconciliation_work_dir": root / "work",
            "worker_metrics_port": 0,
        }
    )
    published = root / "published"
    published.mkdir()

    def sources(channel: str) -> JsonLinesBills:
        return JsonLinesBills(channel, published)

    async with built_worker(settings, bill_sources=sources) as parts, parts.worker:
        yield Reconciler(parts.client, settings.task_queue, published)


def _exceptions(system: System, channel: str, day: date) -> list[ReconciliationException]:
    with Session(system.engine) as session:
        return list(
            session.exec(
                select(ReconciliationException).where(
                    ReconciliationException.channel == channel,
                    ReconciliationException.day == day.isoformat(),
                )
            ).all()
        )


async def _paid(api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant_id: str) -> str:
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    return str(order["id"])


async def _unpolled_order(
    system: System,
    temporal: Client,
    merchant_id: str,
    polling: PollTimings = UNPOLLED,
    notify: str | None = None,
) -> str:
    """An order whose saga asks the channel only after ten minutes: a lost notification
    stays lost for the length of the test unless reconciliation finds it. `notify`: the
    address the channel notifies of its payment and refunds (ours unless given)."""
    settings = settings_from_env(system.env)
    lines = [OrderLine(sku="tea-001", name="Oolong tea", quantity=2, unit_amount=1999)]
    order = OrderInput(
        order_id=new_id("ord"),
        merchant_id=merchant_id,
        channel="alipay",
        priced=price_order(lines, "CNY", None, datetime.now(UTC)),
        channel_fee_rate=settings.channel_fee_rates["alipay"],
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=3600,
        notify_url=notify or notify_url(settings, "alipay"),
        auto_complete_seconds=0,
        polling=polling,
    )
    handle = await temporal.start_workflow(
        OrderWorkflow.run,
        order,
        id=order_workflow_id(order.order_id),
        task_queue=system.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(ORDER_STATUS, OrderStatus.CREATED.value),
                SearchAttributePair(MERCHANT_ID, merchant_id),
            ]
        ),
    )
    await handle.execute_update(OrderWorkflow.await_checkout, CheckoutRequest())
    return order.order_id


def _line_at_channel(paid: dict[str, Any], fee: int) -> BillLine:
    """The bill's line of a payment the sandbox took (its notification lost)."""
    return BillLine(
        channel="alipay",
        kind=BillLineKind.PAYMENT,
        reference=paid["out_trade_no"],
        channel_id=paid["txn_id"],
        order_reference=paid["out_trade_no"],
        currency=paid["currency"],
        amount=paid["amount"],
        fee=fee,
        at=datetime.now(UTC),
    )


def _ghosts(template: BillLine, fine: str) -> list[BillLine]:
    """A payment for an order we never had, and a refund we never asked for."""
    ghost_order = "ord_" + secrets.token_hex(12)
    return [
        replace(template, reference=ghost_order, order_reference=ghost_order, channel_id="g-1"),
        replace(
            template,
            kind=BillLineKind.REFUND,
            reference=f"{fine}-ghost-refund",
            order_reference=fine,
            channel_id="g-2",
            amount=100,
            fee=0,
        ),
    ]


async def test_each_planted_difference_is_found_once_settled_or_left_to_an_operator(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    reconciler: Reconciler,
) -> None:
    day = datetime.now(CHINA_STANDARD_TIME).date()  # Alipay's day: China time
    merchant_id = await create_merchant(api)
    fine, short, fee, unbilled, twice = [await _paid(api, sandbox, merchant_id) for _ in range(5)]
    refund = await post_refund(api, fine, amount=100)
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    await wait_for(
        lambda: api.get(f"/v1/refunds/{refund_id}"),
        lambda r: r.json()["status"] == "succeeded",
        "the refund to succeed",
    )
    lost = await _unpolled_order(system, temporal, merchant_id)
    lost_paid = await pay(sandbox, lost, notify="drop")
    late = (await create_order(api, merchant_id, payment_timeout_seconds=1))["id"]
    await wait_status(api, late, "closed")
    await temporal.get_workflow_handle(order_workflow_id(late)).result()  # the saga ended
    late_paid = await pay(sandbox, late, notify="drop", force=True)
    composed_at = datetime.now(UTC)

    # The bill: what happened, with the differences planted.
    lines = lines_from_records(system.engine, "alipay", day)
    by_reference = {line.reference: line for line in lines}
    lines.remove(by_reference[unbilled])
    lines.remove(by_reference[refund_id])
    lines[lines.index(by_reference[short])] = replace(
        by_reference[short], amount=by_reference[short].amount + 100
    )
    lines[lines.index(by_reference[fee])] = replace(
        by_reference[fee], fee=by_reference[fee].fee + 1
    )
    lines.append(by_reference[twice])
    lines += [_line_at_channel(lost_paid, 45), _line_at_channel(late_paid, 45)]
    lines += _ghosts(by_reference[fine], fine)
    publish_bill(reconciler.published, "alipay", day, lines)
    planted = {
        (short, "amount_mismatch"),
        (fee, "fee_mismatch"),
        (unbilled, "missing_there"),
        (twice, "duplicate_line"),
        (refund_id, "refund_missing"),
        (lines[-2].reference, "missing_here"),
        (f"{fine}-ghost-refund", "missing_here"),
        (lost, "status_mismatch"),
        (late, "status_mismatch"),
    }

    result = await reconciler.run("alipay", day)

    found = _exceptions(system, "alipay", day)
    ours = {(e.reference, e.type) for e in found if (e.reference, e.type) in planted}
    assert ours == planted
    # Exceptions other tests' runs of this channel-day recorded before (on the real
    # bills, tests/workflows/test_reconciliation_bills.py) are theirs; of this run's,
    # only what other tests paid after the bill was composed may differ besides.
    others = [
        e
        for e in found
        if (e.reference, e.type) not in planted and as_utc(e.created_at) >= composed_at
    ]
    assert all(e.type == "missing_there" for e in others), others
    assert result.exceptions == len(found)
    exception = {e.reference: e for e in found if (e.reference, e.type) in planted}
    assert (exception[short].ours_amount, exception[short].theirs_amount) == (
        by_reference[short].amount,
        by_reference[short].amount + 100,
    )
    assert exception[fee].theirs_fee == (exception[fee].ours_fee or 0) + 1

    # Settled by asking the channel: the lost notification pays its order, the late
    # payment to an ended order is given back.
    assert {e.reference for e in found if e.status == "auto_resolved"} == {lost, late}
    await wait_status(api, lost, "completed")
    late_refund = late_payment_refund_id(late, late_paid["txn_id"])
    await wait_for(
        lambda: _refund_status(system, late_refund),
        lambda status: status == "succeeded",
        "the late payment's refund",
    )
    waiting = {e.reference for e in found if e.status == "open"}
    assert waiting >= {short, fee, unbilled, twice, refund_id, f"{fine}-ghost-refund"}
    assert composed_at <= datetime.now(UTC)

    await _an_operator_works_the_queue(api, system, day, exception[short], exception[unbilled])


async def _refund_status(system: System, refund_id: str) -> str | None:
    with Session(system.engine) as session:
        row = session.get(Refund, refund_id)
        return None if row is None else row.status


async def _an_operator_works_the_queue(
    api: httpx.AsyncClient,
    system: System,
    day: date,
    short: ReconciliationException,
    unbilled: ReconciliationException,
) -> None:
    run = await api.get(f"/v1/reconciliation/runs/alipay/{day}")
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "finished" and run.json()["auto_resolved_count"] >= 2
    queue = await api.get(
        "/v1/reconciliation/exceptions",
        params={"channel": "alipay", "day": str(day), "type": "amount_mismatch", "status": "open"},
    )
    assert queue.status_code == 200, queue.text
    listed = [e for e in queue.json()["data"] if e["id"] == short.id]
    assert listed and listed[0]["theirs_amount"] - listed[0]["ours_amount"] == 100

    mark = ledger_mark(system.engine)
    body = {
        "reason": "Alipay settled 1.00 more than the order: held for the buyer's claim",
        "adjustment": {"account_kind": "channel_clearing", "amount": 100},
    }
    headers = {"Idempotency-Key": f"resolve-{short.id}"}
    path = f"/v1/reconciliation/exceptions/{short.id}/resolve"
    resolved = await api.post(path, json=body, headers=headers)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    entry_id = resolved.json()["adjustment_entry_id"]
    again = await api.post(path, json=body, headers=headers)
    assert again.json() == resolved.json()
    other = await api.post(path, json={"reason": "something else"}, headers=headers)
    assert other.status_code == 409, other.text
    with Session(system.engine) as session:
        entry = session.get(JournalEntry, entry_id)
        assert entry is not None and entry.kind == "adjustment"
        postings = session.exec(select(Posting).where(Posting.entry_id == entry_id)).all()
        assert {(p.account, p.amount) for p in postings} == {
            ("channel_clearing:alipay:CNY", 100),
            ("adjustments:amount_mismatch:CNY", -100),
        }
    assert_ledger_sound(system.engine, since=mark)

    nothing_moves = {"reason": "the channel's bill of the next day lists it"}
    closed = await api.post(
        f"/v1/reconciliation/exceptions/{unbilled.id}/resolve",
        json=nothing_moves,
        headers={"Idempotency-Key": f"resolve-{unbilled.id}"},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["adjustment_entry_id"] is None
    assert closed.json()["resolved_by"] == system.operator_id


async def test_a_bill_never_published_is_an_exception_and_a_day_run_twice_is_one_run(
    system: System, reconciler: Reconciler
) -> None:
    day = date(2020, 1, 1)
    first_id = f"reconciliation-card-{day}-{secrets.token_hex(4)}"
    first = await reconciler.run("card", day, workflow_id=first_id)
    second = await reconciler.run("card", day)
    assert first.counts == second.counts == {"bill_not_ready": 1}
    # The Temporal UI finds the run by its channel, day and exceptions.
    shown = (
        await reconciler.client.get_workflow_handle(first_id).describe()
    ).typed_search_attributes
    assert (shown.get(RECON_CHANNEL), shown.get(RECON_DAY), shown.get(RECON_EXCEPTIONS)) == (
        "card",
        "2020-01-01",
        1,
    )
    with Session(system.engine) as session:
        runs = session.exec(
            select(ReconciliationRun).where(
                ReconciliationRun.channel == "card", ReconciliationRun.day == day.isoformat()
            )
        ).all()
    assert [(r.status, r.exception_count) for r in runs] == [("finished", 1)]
    assert [e.type for e in _exceptions(system, "card", day)] == ["bill_not_ready"]


async def test_a_bill_that_never_adds_up_is_a_corrupt_bill(
    system: System, reconciler: Reconciler
) -> None:
    day = date(2020, 1, 2)
    line = BillLine(
        channel="card",
        kind=BillLineKind.PAYMENT,
        reference="ord_nobody",
        channel_id="ch_1",
        order_reference="ord_nobody",
        currency="EUR",
        amount=1000,
        fee=29,
        at=datetime(2020, 1, 2, 12, tzinfo=UTC),
    )
    publish_bill(reconciler.published, "card", day, [line], summary_lines=2)
    result = await reconciler.run("card", day)
    assert result.counts == {"bill_corrupt": 1}
    found = _exceptions(system, "card", day)
    assert [(e.type, e.status) for e in found] == [("bill_corrupt", "open")]
    with Session(system.engine) as session:
        assert (
            session.exec(
                select(ReconciliationException).where(
                    col(ReconciliationException.reference) == "ord_nobody"
                )
            ).all()
            == []
        )


async def test_the_daily_schedule_starts_a_run_per_channel(
    system: System, reconciler: Reconciler
) -> None:
    # A day of its own: the run ids are the product's, and the Temporal server is shared.
    day = date(1990, 1, 1) + timedelta(days=secrets.randbelow(3000))
    started = await reconciler.client.execute_workflow(
        ReconciliationDayWorkflow.run,
        ReconciliationDay(channels=("card",), day=day, wait=FAST),
        id=f"reconciliation-day-{secrets.token_hex(4)}",
        task_queue=reconciler.task_queue,
        execution_timeout=timedelta(minutes=2),
    )
    assert started == ["card"]
    run = reconciler.client.get_workflow_handle(
        reconciliation_workflow_id("card", day), result_type=RunResult
    )
    assert (await run.result()).counts == {"bill_not_ready": 1}


POLLED_AT_ONCE = PollTimings(payment_first_min_ms=500, payment_first_max_ms=500)
# Nothing listens here: the channel's notifications to it are lost.
NOWHERE = "http://127.0.0.1:9/nobody-listens"


async def test_a_refund_we_think_pending_that_the_channel_paid_is_refreshed(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    reconciler: Reconciler,
) -> None:
    """The channel paid a refund back; its notification was lost and the refund's own
    next check is ten minutes off. The bill shows it paid: the run asks the channel,
    hands the answer to the refund's workflow, which books it, and closes the exception."""
    day = date(1990, 1, 1) + timedelta(days=secrets.randbelow(3000))  # a day of its own
    mark = ledger_mark(system.engine)
    merchant_id = await create_merchant(api)
    order_id = await _unpolled_order(system, temporal, merchant_id, POLLED_AT_ONCE, NOWHERE)
    paid = await pay(sandbox, order_id)  # its saga finds it paid by asking the channel
    behaviour = await sandbox.post(
        f"/control/refund-behaviour/{order_id}", json={"mode": "pending"}
    )
    assert behaviour.status_code == 200, behaviour.text
    await wait_for(
        lambda: _order_status(system, order_id), lambda s: s == "completed", "the order paid"
    )
    refund_id = f"rf_{secrets.token_hex(12)}"
    ask = RefundAsk(
        refund_id=refund_id,
        order_id=order_id,
        requested_by=Requester.MERCHANT,
        amount=100,
        polling=PollTimings(refund_first_ms=600_000),
    )
    handle = await temporal.start_workflow(
        RefundWorkflow.run, ask, id=refund_workflow_id(refund_id), task_queue=system.task_queue
    )

    async def waiting() -> bool:  # the channel said pending: it waits for its next check
        history = await handle.fetch_history()
        return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)

    await wait_for(waiting, bool, "the channel to answer the refund pending")
    completed = await sandbox.post(f"/control/refunds/{refund_id}/complete")
    assert completed.status_code == 200, completed.text
    assert await _refund_status(system, refund_id) == "pending"  # we have not heard

    line = BillLine(
        channel="alipay",
        kind=BillLineKind.REFUND,
        reference=refund_id,
        channel_id=paid["txn_id"],
        order_reference=order_id,
        currency="CNY",
        amount=100,
        fee=0,
        at=datetime.combine(day, datetime.min.time(), CHINA_STANDARD_TIME) + timedelta(hours=12),
    )
    publish_bill(reconciler.published, "alipay", day, [line])
    result = await reconciler.run("alipay", day)

    assert result.bill_lines == 1, result
    [found] = _exceptions(system, "alipay", day)
    assert (found.type, found.reference, found.ours_status) == (
        DiscrepancyType.STATUS_MISMATCH,
        refund_id,
        "pending",
    )
    assert (found.auto_action, found.status) == ("refresh_refund", "auto_resolved")
    assert found.resolution_reason and "succeeded" in found.resolution_reason
    assert (result.exceptions, result.auto_resolved) == (1, 1)
    await wait_for(
        lambda: _refund_status(system, refund_id),
        lambda status: status == "succeeded",
        "the refund booked as the channel says",
    )
    assert_ledger_sound(system.engine, since=mark)

    # Run again: the bill and our records agree now; nothing new, the day one run.
    again = await reconciler.run("alipay", day)
    assert (again.exceptions, again.auto_resolved, again.counts) == (1, 1, result.counts)


async def _order_status(system: System, order_id: str) -> str | None:
    with Session(system.engine) as session:
        row = session.get(Order, order_id)
        return None if row is None else row.status
